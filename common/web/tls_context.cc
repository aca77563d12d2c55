#include "common/web/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>

namespace meshflow::web {
namespace {

std::string OpenSslError(const std::string& what) {
  std::string out = what;
  unsigned long code = 0;
  const char* sep = ": ";
  while ((code = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    out += sep;
    out += buf;
    sep = "; ";
  }
  return out;
}

int ProtocolVersion(TlsVersion v) {
  switch (v) {
    case TlsVersion::kTls10:
      return TLS1_VERSION;
    case TlsVersion::kTls11:
      return TLS1_1_VERSION;
    case TlsVersion::kTls12:
      return TLS1_2_VERSION;
    case TlsVersion::kTls13:
      return TLS1_3_VERSION;
  }
  return TLS1_2_VERSION;
}

constexpr uint64_t kOptions =
    SSL_OP_ALL | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE;

// Debian 12's civetweb sets option bits on its contexts and connections with OpenSSL 1.1's
// numbering, which mean other things in OpenSSL 3: kernel TLS, and no CA names in a TLS 1.3
// CertificateRequest (an empty certificate_authorities extension, which Go clients such as
// Prometheus reject as "unexpected message"). Every connection gets our options back here,
// at its ClientHello, before any of them matters.
int ResetConnectionOptions(SSL* ssl, int* /*alert*/, void* /*arg*/) {
  SSL_clear_options(ssl, SSL_get_options(ssl));
  SSL_set_options(ssl, kOptions);
  return SSL_CLIENT_HELLO_SUCCESS;
}

// RequestClientCert and RequireAnyClientCert take any certificate, as Go's crypto/tls does:
// the chain is not checked, only its presence.
int AcceptAnyCertificate(int /*preverify_ok*/, X509_STORE_CTX* /*store*/) { return 1; }

}  // namespace

std::string ConfigureTlsContext(void* ssl_ctx, const TlsServerConfig& tls) {
  auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
  ERR_clear_error();
  SSL_CTX_clear_options(ctx, SSL_CTX_get_options(ctx));
  SSL_CTX_set_options(ctx, kOptions);
  SSL_CTX_set_client_hello_cb(ctx, ResetConnectionOptions, nullptr);
  if (SSL_CTX_set_min_proto_version(ctx, ProtocolVersion(tls.min_version)) != 1) {
    return OpenSslError("min_version not supported by this OpenSSL");
  }
  if (tls.max_version &&
      SSL_CTX_set_max_proto_version(ctx, ProtocolVersion(*tls.max_version)) != 1) {
    return OpenSslError("max_version not supported by this OpenSSL");
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, tls.cert_file.c_str()) != 1) {
    return OpenSslError("cannot load cert_file " + tls.cert_file);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      return OpenSslError("key_file " + tls.key_file + " does not match cert_file " +
                          tls.cert_file);
    }
    return OpenSslError("cannot load key_file " + tls.key_file);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return OpenSslError("key_file " + tls.key_file + " does not match cert_file " + tls.cert_file);
  }
  if (!tls.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, tls.client_ca_file.c_str(), nullptr) != 1) {
      return OpenSslError("cannot load client_ca_file " + tls.client_ca_file);
    }
    // Tells clients which CAs are accepted, so they pick the right certificate.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str());
    if (names == nullptr)
      return OpenSslError("no CA names in client_ca_file " + tls.client_ca_file);
    SSL_CTX_set_client_CA_list(ctx, names);
  }
  switch (tls.client_auth) {
    case ClientAuth::kNoClientCert:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
      break;
    case ClientAuth::kRequestClientCert:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, AcceptAnyCertificate);
      break;
    case ClientAuth::kRequireAnyClientCert:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                         AcceptAnyCertificate);
      break;
    case ClientAuth::kVerifyClientCertIfGiven:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
      break;
    case ClientAuth::kRequireAndVerifyClientCert:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }
  // Session resumption with client certificates fails without a session id context.
  static const unsigned char kSessionContext[] = "meshflow";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  return {};
}

std::string ValidateTlsConfig(const TlsServerConfig& tls) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()),
                                                        SSL_CTX_free);
  if (!ctx) return OpenSslError("cannot create a TLS context");
  return ConfigureTlsContext(ctx.get(), tls);
}

}  // namespace meshflow::web
