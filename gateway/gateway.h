#pragma once

#include <prometheus/metric_family.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/core/clock.h"
#include "common/http/http_server.h"
#include "common/http/secured_server.h"
#include "gateway/gateway_config.h"
#include "gateway/push_store.h"
#include "gateway/scraper.h"
#include "gateway/targets.h"

namespace meshflow::gateway {

struct GatewayOptions {
  std::vector<std::string> listen_addresses{":9475"};
  std::string telemetry_path = "/metrics";
  std::string config_file;      // empty: no targets until a config names some
  std::string web_config_file;  // TLS and basic auth, as the exporter's; empty: plain HTTP
  // Each /proxy request holds a server thread while its node answers, so the gateway needs
  // about as many as Prometheus has nodes scraping at once.
  HttpServerOptions http = [] {
    HttpServerOptions o;
    o.threads = 128;
    return o;
  }();
};

// The gateway daemon without process concerns (flags, signals), so tests drive it in-process.
// Handlers are public and take plain requests, so they are tested without sockets.
class Gateway {
 public:
  explicit Gateway(GatewayOptions options, const Clock& clock = SystemClock::Instance(),
                   std::unique_ptr<Resolver> resolver = nullptr);
  ~Gateway();

  // Loads the config and the web config (both throw ConfigError) and starts serving.
  void Start();
  void Stop();
  // Re-reads the config file; on failure keeps the running config and returns false.
  bool Reload(std::string* error = nullptr);
  std::vector<std::string> BoundAddresses() const { return server_->BoundAddresses(); }

  HttpResponse HandleTargets(const HttpRequest& request) const;
  HttpResponse HandleProxy(const HttpRequest& request);
  HttpResponse HandlePush(const HttpRequest& request);
  // The Pushgateway's form, PUT or POST /metrics/job/<job>/instance/<node>: a push for <node>,
  // handled as /push?node=<node>; <job> is not kept (Prometheus sets its own).
  HttpResponse HandlePushgatewayPush(const HttpRequest& request);
  HttpResponse HandleFederate(const HttpRequest& request);
  HttpResponse HandleMetrics(const HttpRequest& request);

  TargetRegistry& registry() { return registry_; }
  PushStore& push_store() { return push_store_; }

 private:
  struct NodeState {
    bool has_result = false;
    bool up = false;
    double duration_seconds = 0;
  };
  void Apply(const GatewayConfig& config);
  std::chrono::nanoseconds ScrapeTimeout(const HttpRequest& request) const;
  void Record(const std::string& node, bool up, std::chrono::nanoseconds duration);
  void CollectSelf(std::vector<prometheus::MetricFamily>& out);
  void RefreshLoop();

  GatewayOptions options_;
  const Clock& clock_;
  std::unique_ptr<Resolver> resolver_;
  TargetRegistry registry_;
  PushStore push_store_;
  std::unique_ptr<Scraper> scraper_;
  std::unique_ptr<SecuredServer> server_;

  mutable std::mutex config_mutex_;
  GatewayConfig config_;
  bool last_reload_ok_ = true;
  double last_reload_success_time_ = 0;

  std::mutex state_mutex_;
  std::map<std::string, NodeState> node_state_;
  uint64_t type_conflicts_ = 0;

  std::mutex refresh_mutex_;
  std::condition_variable refresh_cv_;
  bool stopping_ = false;
  std::thread refresh_thread_;
  std::atomic<bool> started_{false};
};

}  // namespace meshflow::gateway
