#pragma once

#include <prometheus/metric_family.h>

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/http/http_server.h"
#include "common/http/log_limiter.h"
#include "common/web/web_config_watcher.h"

namespace meshflow {

// An HttpServer behind a web config file in the exporter-toolkit format: TLS and basic auth
// applied, the file re-read while serving, the listener restarted when its TLS settings change.
// The exporter and the gateway serve through it, so both protect themselves the same way.
class SecuredServer {
 public:
  // Throws when the web config file is broken: serving without the intended TLS or passwords
  // would be worse than not serving. An empty path is plain HTTP without auth.
  SecuredServer(HttpServerOptions options, const std::string& web_config_file);
  ~SecuredServer();

  // Requests to `path` carry their own credentials (the gateway's bearer-token pushes), which
  // basic auth would claim as its Authorization header.
  void ExemptFromBasicAuth(std::string path) { exempt_.insert(std::move(path)); }
  // Every path under `prefix`, as ExemptFromBasicAuth.
  void ExemptPrefixFromBasicAuth(std::string prefix) {
    exempt_prefixes_.push_back(std::move(prefix));
  }
  void Route(std::string path, std::vector<std::string> methods, HttpHandler handler,
             RouteOptions route_options = {}) {
    server_.Route(std::move(path), std::move(methods), std::move(handler),
                  std::move(route_options));
  }
  void RoutePrefix(std::string prefix, std::vector<std::string> methods, HttpHandler handler,
                   RouteOptions route_options = {}) {
    server_.RoutePrefix(std::move(prefix), std::move(methods), std::move(handler),
                        std::move(route_options));
  }
  // Binds and starts watching the web config file; throws as HttpServer::Start().
  void Start();
  void Stop();

  bool tls() const { return web_.Current()->config.tls.has_value(); }
  // True when basic auth guards the routes: a request a handler sees then came with credentials.
  bool RequiresAuth() const { return !web_.Current()->config.basic_auth_users.empty(); }
  std::vector<std::string> BoundAddresses() const { return server_.BoundAddresses(); }
  // The web config's own metrics (reload success, users, TLS), authentication failures and what
  // the HTTP server refused before routing.
  void Collect(std::vector<prometheus::MetricFamily>& out) const;

 private:
  std::optional<HttpResponse> Authenticate(const HttpRequest& request);
  int ConfigureTls(void* ssl_ctx);
  void OnWebConfigChange(web::WebConfigWatcher::Change change);

  web::WebConfigWatcher web_;
  HttpServer server_;
  std::set<std::string, std::less<>> exempt_;
  LogLimiter auth_failure_log_;
  std::vector<std::string> exempt_prefixes_;
  std::mutex mutex_;  // a TLS restart from the watcher's thread against Start()/Stop()
  bool started_ = false;
};

}  // namespace meshflow
