#include "common/http/secured_server.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "common/core/metric_builder.h"
#include "common/web/tls_context.h"
#include "common/web/tls_runtime.h"

namespace meshflow {

SecuredServer::SecuredServer(HttpServerOptions options, const std::string& web_config_file)
    : web_(web_config_file), server_(std::move(options)) {
  web::PrepareCivetwebTls();
  server_.SetTls(tls(), [this](void* ssl_ctx) { return ConfigureTls(ssl_ctx); });
  server_.SetGuard([this](const HttpRequest& r) { return Authenticate(r); });
}

SecuredServer::~SecuredServer() { Stop(); }

void SecuredServer::Start() {
  {
    std::lock_guard lock(mutex_);
    server_.Start();
    started_ = true;
  }
  web_.StartPolling(std::chrono::seconds(3),
                    [this](web::WebConfigWatcher::Change change) { OnWebConfigChange(change); });
}

void SecuredServer::Stop() {
  web_.StopPolling();
  std::lock_guard lock(mutex_);
  started_ = false;
  server_.Stop();
}

std::optional<HttpResponse> SecuredServer::Authenticate(const HttpRequest& request) {
  if (exempt_.contains(request.path)) return std::nullopt;
  for (const auto& prefix : exempt_prefixes_) {
    if (request.path.starts_with(prefix)) return std::nullopt;
  }
  const std::string header = request.Header("Authorization");
  const auto authorization =
      header.empty() ? std::nullopt : std::optional<std::string_view>(header);
  if (web_.Authorize(authorization)) return std::nullopt;
  uint64_t suppressed = 0;
  if (auth_failure_log_.Allow(request.remote_address, &suppressed)) {
    spdlog::warn(
        "unauthorized request from {} for {} ({} more from it in the last minute not "
        "logged)",
        request.remote_address, request.path, suppressed);
  }
  HttpResponse refused = HttpResponse::Text(401, "Unauthorized\n");
  refused.headers.emplace_back("WWW-Authenticate", "Basic");
  return refused;
}

void SecuredServer::Collect(std::vector<prometheus::MetricFamily>& out) const {
  web_.Collect(out);
  FamilyBuilder("meshflow_http_auth_failures_total",
                "Requests refused for missing or wrong basic auth credentials; logged at most "
                "once a minute per client address.",
                prometheus::MetricType::Counter)
      .Counter({}, static_cast<double>(auth_failure_log_.events()))
      .AppendTo(out);
  const HttpServerStats s = server_.Stats();
  FamilyBuilder refused("meshflow_http_requests_refused_total",
                        "Requests and connections the HTTP server refused before any handler ran, "
                        "by reason.",
                        prometheus::MetricType::Counter);
  refused.Counter({{"reason", "source_connection_limit"}},
                  static_cast<double>(s.connections_over_source_limit));
  refused.Counter({{"reason", "too_many_headers"}}, static_cast<double>(s.too_many_headers));
  refused.Counter({{"reason", "bad_path"}}, static_cast<double>(s.bad_path));
  refused.Counter({{"reason", "body_too_large"}}, static_cast<double>(s.body_too_large));
  refused.Counter({{"reason", "body_budget"}}, static_cast<double>(s.body_budget_exhausted));
  refused.Counter({{"reason", "incomplete_body"}}, static_cast<double>(s.incomplete_body));
  refused.AppendTo(out);
}

int SecuredServer::ConfigureTls(void* ssl_ctx) {
  const auto state = web_.Current();
  if (!state->config.tls) return -1;
  const std::string why = web::ConfigureTlsContext(ssl_ctx, *state->config.tls);
  if (!why.empty()) {
    spdlog::error("TLS setup failed: {}", why);
    return -1;
  }
  return 1;
}

void SecuredServer::OnWebConfigChange(web::WebConfigWatcher::Change change) {
  if (change != web::WebConfigWatcher::Change::kTls) return;
  std::lock_guard lock(mutex_);
  if (!started_) return;
  const bool on = tls();
  server_.SetTls(on, [this](void* ssl_ctx) { return ConfigureTls(ssl_ctx); });
  // The new settings were checked by the watcher, so a failure here is the port being taken
  // in the short gap; try a few times rather than stay deaf.
  for (int attempt = 1; attempt <= 5; ++attempt) {
    try {
      server_.Restart();
      spdlog::info("listener restarted for new TLS settings: tls={}", on ? "on" : "off");
      return;
    } catch (const std::exception& e) {
      spdlog::error("listener restart failed (attempt {} of 5): {}", attempt, e.what());
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
}

}  // namespace meshflow
