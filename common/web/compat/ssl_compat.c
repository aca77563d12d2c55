/* Loaded as "libssl.so" so that Debian 12's civetweb 1.15 can serve TLS at all.
 *
 * That civetweb dlopen()s "libssl.so" and looks its functions up by name. OpenSSL 3 no longer
 * exports SSL_get_peer_certificate (it became a macro over SSL_get1_peer_certificate), so the
 * lookup leaves a null pointer that civetweb calls after every TLS handshake: each HTTPS
 * request crashes the process. This object carries the SONAME "libssl.so" and is linked into
 * the exporter, so civetweb's dlopen("libssl.so") finds it already loaded; dlsym() on it finds
 * the missing function here and every other one in libssl.so.3, its dependency. */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate
X509* SSL_get_peer_certificate(const SSL* ssl);
X509* SSL_get_peer_certificate(const SSL* ssl) { return SSL_get1_peer_certificate(ssl); }

int meshflow_ssl_compat_linked(void);
int meshflow_ssl_compat_linked(void) { return 1; }
