#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/config/config.h"
#include "common/daemon/control_loop.h"
#include "common/daemon/process_metrics.h"
#include "common/discovery/discovery.h"
#include "common/http/http_server.h"
#include "common/http/secured_server.h"
#include "common/mesh/mesh_history.h"
#include "exporter/collector_set.h"

namespace meshflow {

struct ExporterOptions {
  std::vector<std::string> listen_addresses{":9474"};
  std::string telemetry_path = "/metrics";
  std::string config_file;                        // empty: the built-in default config
  std::string web_config_file;                    // TLS and basic auth; empty: plain HTTP
  int max_requests = 40;                          // scrapes served at once; more get 503
  std::map<std::string, bool> collector_enabled;  // by collector name; absent: its default
  HttpServerOptions http;                         // listen_addresses are taken from above
  // Set (--web.enable-lifecycle): POST /-/reload hands the reload to this, which has the main
  // thread do it (ControlLoop::RequestReload) and answers with its outcome. Unset: no route.
  std::function<ReloadOutcome()> request_reload;
};

// The exporter daemon: config, collectors, HTTP serving and reload, without process concerns
// (signals, flags), so tests drive it in-process.
class Exporter {
 public:
  explicit Exporter(ExporterOptions options);
  ~Exporter();

  // Adds a collector beside the table's, before Start(): benchmarks and embedding programs.
  void AddCollector(std::string name, std::unique_ptr<Collector> collector);
  // Loads the config (throws ConfigError), starts the collectors and the HTTP server.
  void Start();
  // Stops serving and collecting.
  void Stop();
  // Re-reads the config file. On failure keeps the running config and logs why. Called on the
  // main thread only (see ControlLoop): parsing a config needs its stack.
  ReloadOutcome Reload();

  // The whole exposition, as served at the telemetry path.
  std::string Scrape();
  std::vector<std::string> BoundAddresses() const { return server_->BoundAddresses(); }
  const Config& config() const { return config_; }
  // The capabilities the running collectors (Collector::CapabilitiesWhileRunning) and discovery
  // sources still need. Decided once, at start: a reload cannot give back a dropped capability.
  std::vector<int> CapabilitiesWhileRunning() const;

 private:
  HttpResponse ServeMetrics(const HttpRequest& request);
  HttpResponse ServeLandingPage() const;
  void CollectSelf(std::vector<prometheus::MetricFamily>& out);
  // Discovery: the collectors get `nodes:` merged with what the sources found.
  Config Effective(const Config& config) const;
  void StartDiscovery();
  void ApplyDiscovered(const std::vector<NodeSpec>& nodes);

  ExporterOptions options_;
  Config config_;
  // The mesh view's history of this node's own row, fed by scrapes.
  mesh::MeshHistory mesh_;
  std::atomic<double> mesh_observed_at_{0};
  void ObserveMesh(const std::vector<prometheus::MetricFamily>& families);
  std::unique_ptr<SecuredServer> server_;  // made by Start(): the web config may be broken
  CollectorSet collectors_;
  std::shared_mutex collect_mutex_;  // shared by scrapes, exclusive for reload
  std::mutex reload_mutex_;
  std::atomic<int> scrapes_in_flight_{0};
  std::atomic<bool> ready_{false};
  ReloadStatus reload_status_;
  std::unique_ptr<discovery::Discovery> discovery_;  // null when discovery is off
  std::vector<NodeSpec> discovered_;                 // guarded by reload_mutex_
};

}  // namespace meshflow
