#pragma once

#include <memory>
#include <string>

namespace meshflow::http {

// How the gateway talks TLS to an upstream, in Prometheus' tls_config terms. Empty files: the
// system's trust store and no client certificate.
struct TlsClientConfig {
  std::string ca_file;
  std::string cert_file;  // with key_file: the certificate the gateway presents (mutual TLS)
  std::string key_file;
  // The name the upstream's certificate must carry, and the SNI sent; empty: the URL's host
  // (a DNS target's host is an address, which the certificate then has to list).
  std::string server_name;
  bool insecure_skip_verify = false;
};

// An OpenSSL client context built once from a TlsClientConfig: certificates are read when the
// config is loaded, so a missing or broken file is a config error, not a failed scrape. Shared
// by concurrent fetches (OpenSSL contexts are safe to use from many threads once built).
class TlsClient {
 public:
  // nullptr and `error` set when a file does not load or the key does not match.
  static std::shared_ptr<const TlsClient> Create(const TlsClientConfig& config, std::string* error);
  // Verifies against the system's trust store, for https:// URLs without a tls_config.
  static std::shared_ptr<const TlsClient> SystemDefault();

  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  void* context() const { return context_; }  // SSL_CTX*, kept out of this header
  const TlsClientConfig& config() const { return config_; }

 private:
  TlsClient(void* context, TlsClientConfig config)
      : context_(context), config_(std::move(config)) {}
  void* context_;
  TlsClientConfig config_;
};

}  // namespace meshflow::http
