#include "common/daemon/lifecycle.h"

namespace meshflow {

void RouteLifecycle(SecuredServer& server, std::function<ReloadOutcome()> request_reload) {
  if (!request_reload) return;
  server.Route("/-/reload", {"POST", "PUT"},
               [request = std::move(request_reload)](const HttpRequest&) {
                 const ReloadOutcome outcome = request();
                 if (outcome.ok) return HttpResponse::Text(200, "config reloaded\n");
                 return HttpResponse::Text(500, "failed to reload config: " + outcome.error + "\n");
               });
}

}  // namespace meshflow
