#pragma once

#include <functional>

#include "common/daemon/control_loop.h"
#include "common/http/secured_server.h"

namespace meshflow {

// Routes POST (and PUT) /-/reload to `request_reload` when it is set, as --web.enable-lifecycle
// asks: 200 "config reloaded", or 500 with the located reason the running config was kept.
// `request_reload` hands the reload to the main thread (ControlLoop::RequestReload) and waits.
void RouteLifecycle(SecuredServer& server, std::function<ReloadOutcome()> request_reload);

}  // namespace meshflow
