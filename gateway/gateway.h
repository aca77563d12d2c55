#pragma once

#include <prometheus/metric_family.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/core/clock.h"
#include "common/daemon/control_loop.h"
#include "common/daemon/process_metrics.h"
#include "common/http/http_server.h"
#include "common/http/log_limiter.h"
#include "common/http/secured_server.h"
#include "common/mesh/mesh_history.h"
#include "gateway/gateway_config.h"
#include "gateway/memory_budget.h"
#include "gateway/push_store.h"
#include "gateway/remote_write/remote_writer.h"
#include "gateway/scrape_loop.h"
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
  // Set (--web.enable-lifecycle): POST /-/reload hands the reload to this, which has the main
  // thread do it (ControlLoop::RequestReload) and answers with its outcome. Unset: no route.
  std::function<ReloadOutcome()> request_reload;
};

// Sets glibc's allocator up for the gateway's pattern (megabyte buffers built and freed each
// scrape round, by several threads). Its main calls it first; a test harness that measures the
// gateway calls it too.
void SetMallocPolicy();

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
  // Re-reads the config file; on failure keeps the running config. Called on the main thread
  // only (see ControlLoop): parsing a config needs its stack.
  ReloadOutcome Reload();
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
  // Everything that grows with what nodes send reserves its bytes here (memory.budget_bytes).
  MemoryBudget& memory_budget() { return memory_budget_; }
  const mesh::MeshHistory& mesh_history() const { return *mesh_; }

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
  void LogPushRejection(const HttpRequest& request, const std::string& node,
                        const PushOutcome& outcome);
  void ApplyRemoteWrite(const GatewayConfig& config);
  // Hands a node's exposition to the mesh view's history (pushes, scrapes).
  void ObserveMesh(const std::string& node, const text_format::Exposition& exposition);

  GatewayOptions options_;
  const Clock& clock_;
  std::unique_ptr<Resolver> resolver_;
  TargetRegistry registry_;
  MemoryBudget memory_budget_;
  PushStore push_store_;
  LogLimiter push_reject_log_;
  std::unique_ptr<Scraper> scraper_;
  std::unique_ptr<SecuredServer> server_;
  // The gateway's own scrapes, always running (the mesh view's history), and remote_write, which
  // sends only while the config names endpoints.
  std::unique_ptr<remote_write::RemoteWriter> remote_writer_;
  std::unique_ptr<ScrapeLoop> scrape_loop_;
  std::atomic<bool> scrape_loop_running_{false};
  std::mutex remote_write_mutex_;  // reloads from SIGHUP and /-/reload apply one at a time
  std::unique_ptr<mesh::MeshHistory> mesh_ = std::make_unique<mesh::MeshHistory>();

  mutable std::mutex config_mutex_;
  GatewayConfig config_;
  ReloadStatus reload_status_;

  std::mutex state_mutex_;
  std::map<std::string, NodeState> node_state_;
  uint64_t type_conflicts_ = 0;
  uint64_t federate_refused_ = 0;  // over the selector, query or time limits

  std::mutex refresh_mutex_;
  std::condition_variable refresh_cv_;
  bool stopping_ = false;
  std::thread refresh_thread_;
  std::atomic<bool> started_{false};
};

}  // namespace meshflow::gateway
