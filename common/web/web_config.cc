#include "common/web/web_config.h"

#include <re2/re2.h>

#include <fstream>
#include <sstream>

#include "common/core/config_reader.h"

namespace meshflow::web {
namespace {

constexpr std::pair<const char*, ClientAuth> kClientAuthNames[] = {
    {"NoClientCert", ClientAuth::kNoClientCert},
    {"RequestClientCert", ClientAuth::kRequestClientCert},
    {"RequireAnyClientCert", ClientAuth::kRequireAnyClientCert},
    {"VerifyClientCertIfGiven", ClientAuth::kVerifyClientCertIfGiven},
    {"RequireAndVerifyClientCert", ClientAuth::kRequireAndVerifyClientCert},
};

constexpr std::pair<const char*, TlsVersion> kTlsVersionNames[] = {
    {"TLS10", TlsVersion::kTls10},
    {"TLS11", TlsVersion::kTls11},
    {"TLS12", TlsVersion::kTls12},
    {"TLS13", TlsVersion::kTls13},
};

TlsVersion ParseVersion(const ConfigNode& node) {
  const std::string name = node.AsEnum({"TLS10", "TLS11", "TLS12", "TLS13"});
  for (const auto& [n, v] : kTlsVersionNames) {
    if (name == n) return v;
  }
  node.Fail("a TLS version");
}

std::string Resolve(const std::string& path, const std::string& config_file) {
  if (path.empty() || path.front() == '/') return path;
  const auto slash = config_file.rfind('/');
  if (slash == std::string::npos) return path;
  return config_file.substr(0, slash + 1) + path;
}

// A file name; an empty one (a tagged empty scalar such as `!x` is not null in YAML) would only
// fail later, when the file is opened, far from the line that caused it.
std::string PathOf(const ConfigNode& node) {
  std::string path = node.AsString();
  if (path.empty()) node.Fail("a file path");
  return path;
}

TlsServerConfig ParseTls(const ConfigNode& node, const std::string& file_name) {
  // The exporter-toolkit's other keys (cipher_suites, curve_preferences, client_allowed_sans,
  // prefer_server_cipher_suites) are refused rather than silently ignored, so nobody believes
  // a restriction is in force that is not.
  node.ExpectMap({"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version",
                  "max_version"});
  TlsServerConfig tls;
  tls.cert_file = Resolve(PathOf(node.Require("cert_file")), file_name);
  tls.key_file = Resolve(PathOf(node.Require("key_file")), file_name);
  if (auto ca = node.Get("client_ca_file")) tls.client_ca_file = Resolve(PathOf(*ca), file_name);
  if (auto auth = node.Get("client_auth_type")) {
    const std::string name =
        auth->AsEnum({"NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                      "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"});
    for (const auto& [n, v] : kClientAuthNames) {
      if (name == n) tls.client_auth = v;
    }
    const bool verifies = tls.client_auth == ClientAuth::kVerifyClientCertIfGiven ||
                          tls.client_auth == ClientAuth::kRequireAndVerifyClientCert;
    if (verifies && tls.client_ca_file.empty()) {
      auth->Fail("client_ca_file to be set as well for client_auth_type");
    }
  }
  if (auto v = node.Get("min_version")) tls.min_version = ParseVersion(*v);
  if (auto v = node.Get("max_version")) {
    tls.max_version = ParseVersion(*v);
    if (*tls.max_version < tls.min_version) v->Fail("a max_version not below min_version");
  }
  return tls;
}

}  // namespace

WebConfig ParseWebConfig(const std::string& text, const std::string& file_name) {
  // $2a$/$2b$/$2y$, a two-digit cost, then 53 characters of salt and hash.
  static const RE2 kBcrypt(R"(^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$)");
  const ConfigNode root = ConfigNode::Parse(text, file_name);
  WebConfig config;
  // Each section is read on its own, so that one check reports the errors of all of them.
  ConfigErrorList errors;
  errors.Check([&] {
    root.ExpectMap({"tls_server_config", "basic_auth_users", "http_server_config"});
  });
  errors.Check([&] {
    if (auto tls = root.Get("tls_server_config")) config.tls = ParseTls(*tls, file_name);
  });
  errors.Check([&] {
    if (auto http = root.Get("http_server_config")) {
      // HTTP/2 is not served by this server; accepting `http2: false` keeps files written for
      // other exporters usable.
      http->ExpectMap({"http2"});
      if (auto h2 = http->Get("http2"); h2 && h2->AsBool())
        h2->Fail("false (HTTP/2 is not served)");
    }
  });
  errors.Check([&] {
    auto users = root.Get("basic_auth_users");
    if (!users) return;
    // Keys are user names, so walk the YAML mapping itself; ConfigNode gives the located errors.
    const YAML::Node raw = YAML::Load(text)["basic_auth_users"];
    if (!raw.IsMap()) users->Fail("a mapping of user name to bcrypt hash");
    for (const auto& kv : raw)
      errors.Check([&] {
        if (!kv.first.IsScalar()) users->Fail("user names as plain strings");
        const std::string user = kv.first.Scalar();
        const ConfigNode hash = users->Require(user);
        const std::string value = hash.AsString();
        if (user.empty() || user.find(':') != std::string::npos) {
          hash.Fail("a user name without ':' (Basic authentication splits on it)");
        }
        if (!RE2::FullMatch(value, kBcrypt)) hash.Fail("a bcrypt hash ($2b$10$... or $2y$...)");
        config.basic_auth_users[user] = value;
      });
  });
  errors.ThrowIfAny();
  return config;
}

WebConfig LoadWebConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot read the web config file");
  std::stringstream text;
  text << in.rdbuf();
  return ParseWebConfig(text.str(), path);
}

const char* TlsVersionName(TlsVersion version) {
  for (const auto& [n, v] : kTlsVersionNames) {
    if (v == version) return n;
  }
  return "?";
}

const char* ClientAuthName(ClientAuth auth) {
  for (const auto& [n, v] : kClientAuthNames) {
    if (v == auth) return n;
  }
  return "?";
}

}  // namespace meshflow::web
