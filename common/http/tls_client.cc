#include "common/http/tls_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace meshflow::http {
namespace {

std::string OpenSslError(const std::string& what) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return what;
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return what + ": " + text;
}

}  // namespace

std::shared_ptr<const TlsClient> TlsClient::Create(const TlsClientConfig& config,
                                                   std::string* error) {
  SSL_CTX* context = SSL_CTX_new(TLS_client_method());
  if (context == nullptr) {
    *error = OpenSslError("creating a TLS context");
    return nullptr;
  }
  auto fail = [&](const std::string& what) -> std::shared_ptr<const TlsClient> {
    *error = OpenSslError(what);
    SSL_CTX_free(context);
    return nullptr;
  };
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  // Exporters answer with Connection: close and may skip close_notify; the body's end is known
  // from Content-Length or chunking, so a bare TCP close is an ordinary end of stream.
  SSL_CTX_set_options(context, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (config.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(context) != 1) {
      return fail("loading the system's trust store");
    }
  } else if (SSL_CTX_load_verify_locations(context, config.ca_file.c_str(), nullptr) != 1) {
    return fail("loading ca_file " + config.ca_file);
  }
  if (config.cert_file.empty() != config.key_file.empty()) {
    *error = "cert_file and key_file go together";
    SSL_CTX_free(context);
    return nullptr;
  }
  if (!config.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(context, config.cert_file.c_str()) != 1) {
      return fail("loading cert_file " + config.cert_file);
    }
    if (SSL_CTX_use_PrivateKey_file(context, config.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return fail("loading key_file " + config.key_file);
    }
    if (SSL_CTX_check_private_key(context) != 1) {
      return fail("key_file " + config.key_file + " does not match cert_file " + config.cert_file);
    }
  }
  SSL_CTX_set_verify(context, config.insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
                     nullptr);
  return std::shared_ptr<const TlsClient>(new TlsClient(context, config));
}

std::shared_ptr<const TlsClient> TlsClient::SystemDefault() {
  // Built on first use: a gateway without https:// targets never loads the trust store.
  static const std::shared_ptr<const TlsClient> system = [] {
    std::string ignored;
    return Create(TlsClientConfig{}, &ignored);
  }();
  return system;
}

TlsClient::~TlsClient() { SSL_CTX_free(static_cast<SSL_CTX*>(context_)); }

}  // namespace meshflow::http
