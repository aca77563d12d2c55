#pragma once

#include <map>
#include <optional>
#include <string>

namespace meshflow::web {

// How a client certificate is asked for, named as in the Prometheus exporter-toolkit.
enum class ClientAuth {
  kNoClientCert,
  kRequestClientCert,
  kRequireAnyClientCert,
  kVerifyClientCertIfGiven,
  kRequireAndVerifyClientCert,
};

enum class TlsVersion { kTls10, kTls11, kTls12, kTls13 };

// tls_server_config. Paths are absolute: relative ones are resolved against the web config
// file's directory, as the exporter-toolkit does.
struct TlsServerConfig {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // empty unless client certificates are verified
  ClientAuth client_auth = ClientAuth::kNoClientCert;
  TlsVersion min_version = TlsVersion::kTls12;
  std::optional<TlsVersion> max_version;

  bool operator==(const TlsServerConfig&) const = default;
};

// The web config file (--web.config.file) in the exporter-toolkit format.
struct WebConfig {
  std::optional<TlsServerConfig> tls;  // nullopt: plain HTTP
  // user -> bcrypt hash ($2a$, $2b$ or $2y$); empty: no authentication.
  std::map<std::string, std::string> basic_auth_users;

  bool operator==(const WebConfig&) const = default;
};

// Parses the text of a web config; `file_name` labels errors and anchors relative paths.
// Throws ConfigError naming file, line and field. Does not touch the certificate files.
WebConfig ParseWebConfig(const std::string& text, const std::string& file_name);

// Reads and parses a file. Throws ConfigError, also when it cannot be read.
WebConfig LoadWebConfigFile(const std::string& path);

// "TLS12" etc., for logs.
const char* TlsVersionName(TlsVersion version);
const char* ClientAuthName(ClientAuth auth);

}  // namespace meshflow::web
