#pragma once

#include <string>

#include "common/web/web_config.h"

namespace meshflow::web {

// Configures an OpenSSL SSL_CTX (passed as void* so that callers need no OpenSSL headers, as
// civetweb's init_ssl callback hands it over): certificate chain, key, protocol versions and
// client certificate policy. Returns an empty string on success, else why it failed.
std::string ConfigureTlsContext(void* ssl_ctx, const TlsServerConfig& tls);

// Builds a throw-away context from `tls`, so that a new web config whose certificate or key
// does not load is refused before the listener is touched. Empty string: usable.
std::string ValidateTlsConfig(const TlsServerConfig& tls);

}  // namespace meshflow::web
