#include "common/web/tls_runtime.h"

extern "C" int meshflow_ssl_compat_linked(void);
extern "C" int meshflow_crypto_compat_linked(void);

namespace meshflow::web {

void PrepareCivetwebTls() {
  // The calls keep both compat objects in the binary's DT_NEEDED list even under
  // --as-needed, which is what makes them the answer to civetweb's dlopen().
  static const bool linked = meshflow_ssl_compat_linked() && meshflow_crypto_compat_linked();
  (void)linked;
}

}  // namespace meshflow::web
