/* Loaded as "libcrypto.so", the other name Debian 12's civetweb dlopen()s. Without it the
 * exporter would need libssl-dev at run time for that one symlink; all functions come from
 * libcrypto.so.3, this object's dependency. See ssl_compat.c. */
#include <openssl/crypto.h>

int meshflow_crypto_compat_linked(void);
/* Calls into libcrypto.so.3 so that the linker keeps it as this object's dependency, which is
 * where dlsym() on this object finds everything. */
int meshflow_crypto_compat_linked(void) { return OpenSSL_version_num() != 0; }
