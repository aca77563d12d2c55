#pragma once

namespace meshflow::web {

// Makes sure the OpenSSL names civetweb dlopen()s resolve to the compat objects linked into
// this binary (see compat/ssl_compat.c). Call before the first TLS listener starts.
void PrepareCivetwebTls();

}  // namespace meshflow::web
