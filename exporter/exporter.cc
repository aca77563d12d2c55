#include "exporter/exporter.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <thread>

#include "common/core/config_reader.h"
#include "common/core/metric_builder.h"
#include "common/daemon/lifecycle.h"
#include "common/daemon/process_metrics.h"
#include "common/daemon/version.h"
#include "common/mesh/mesh_api.h"
#include "common/text_format/writer.h"
#include "exporter/collector_table.h"
#include "exporter/privileges.h"

namespace meshflow {
namespace {

constexpr std::string_view kExpositionContentType = "text/plain; version=0.0.4; charset=utf-8";

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Stands in for a collector whose creation failed, so the failure shows at every scrape as
// meshflow_collector_success 0 instead of taking the exporter down.
class BrokenCollector final : public Collector {
 public:
  explicit BrokenCollector(std::string why) : why_(std::move(why)) {}
  void Collect(std::vector<prometheus::MetricFamily>&) override { throw std::runtime_error(why_); }

 private:
  std::string why_;
};

std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace

Exporter::Exporter(ExporterOptions options) : options_(std::move(options)) {
  options_.http.listen_addresses = options_.listen_addresses;
}

Exporter::~Exporter() { Stop(); }

std::vector<int> Exporter::CapabilitiesWhileRunning() const {
  std::vector<int> caps = collectors_.CapabilitiesWhileRunning();
  for (const int cap : discovery::CapabilitiesWhileRunning(config_.discovery)) {
    if (std::find(caps.begin(), caps.end(), cap) == caps.end()) caps.push_back(cap);
  }
  return caps;
}

void Exporter::Start() {
  config_ = options_.config_file.empty() ? DefaultConfig() : LoadConfigFile(options_.config_file);
  reload_status_.Succeeded(NowSeconds());
  spdlog::info("config loaded from {}: node_name={} nodes={} roles={}", config_.source,
               config_.node_name, config_.nodes.size(), config_.roles.size());

  collectors_.StartAll();  // those given by AddCollector(); the table's start below
  for (const auto& entry : CollectorTable()) {
    const auto flag = options_.collector_enabled.find(std::string(entry.name));
    const bool enabled =
        flag == options_.collector_enabled.end() ? entry.enabled_by_default : flag->second;
    if (!enabled) continue;
    std::unique_ptr<Collector> collector;
    try {
      collector = entry.create(config_);
      collector->Start();
    } catch (const std::exception& e) {
      spdlog::error("collector {} cannot start: {}", entry.name, e.what());
      collector = std::make_unique<BrokenCollector>(std::string("cannot start: ") + e.what());
    }
    collectors_.Add(std::string(entry.name), std::move(collector));
  }
  spdlog::info("collectors enabled: [{}]", fmt::join(collectors_.Names(), ", "));
  StartDiscovery();

  server_ = std::make_unique<SecuredServer>(options_.http, options_.web_config_file);

  const std::string path = options_.telemetry_path;
  server_->Route(path, {"GET", "HEAD"}, [this](const HttpRequest& r) { return ServeMetrics(r); });
  server_->Route("/", {"GET", "HEAD"}, [this](const HttpRequest&) { return ServeLandingPage(); });
  // The mesh view of this node's own row; with no scrape lately, the API collects first.
  for (auto& [mesh_path, handler] : mesh::MeshRoutes(mesh_, SystemClock::Instance(), [this] {
         if (NowSeconds() - mesh_observed_at_ >= 10) Scrape();
       }))
    server_->Route(mesh_path, {"GET", "HEAD"}, std::move(handler));
  server_->Route("/-/healthy", {"GET", "HEAD"},
                 [](const HttpRequest&) { return HttpResponse::Text(200, "OK\n"); });
  server_->Route("/-/ready", {"GET", "HEAD"}, [this](const HttpRequest&) {
    return ready_ ? HttpResponse::Text(200, "OK\n") : HttpResponse::Text(503, "starting\n");
  });
  RouteLifecycle(*server_, options_.request_reload);
  server_->Start();
  ready_ = true;
  const char* scheme = server_->tls() ? "https" : "http";
  for (const auto& a : server_->BoundAddresses()) {
    spdlog::info("listening on {}, metrics at {}://{}{}", a, scheme, a, path);
  }
}

void Exporter::AddCollector(std::string name, std::unique_ptr<Collector> collector) {
  collectors_.Add(std::move(name), std::move(collector));
}

void Exporter::Stop() {
  ready_ = false;
  if (discovery_) discovery_->Stop();
  if (server_) server_->Stop();
  collectors_.StopAll();
}

ReloadOutcome Exporter::Reload() {
  std::unique_lock reload_lock(reload_mutex_);
  bool rediscover = false;
  ReloadOutcome outcome = reload_status_.Reload("config", SystemClock::Instance(), [&] {
    Config fresh =
        options_.config_file.empty() ? DefaultConfig() : LoadConfigFile(options_.config_file);
    rediscover = fresh.discovery != config_.discovery || fresh.node_name != config_.node_name ||
                 fresh.probes.udp_port != config_.probes.udp_port;
    if (rediscover) discovered_.clear();
    std::unique_lock lock(collect_mutex_);
    collectors_.ReconfigureAll(Effective(fresh));
    config_ = std::move(fresh);
    return config_.source;
  });
  if (rediscover) {
    // Its callback takes reload_mutex_: stop it without holding that lock.
    std::unique_ptr<discovery::Discovery> old;
    {
      std::unique_lock lock(collect_mutex_);  // scrapes read discovery_
      old = std::move(discovery_);
    }
    reload_lock.unlock();
    if (old) old->Stop();
    old.reset();
    reload_lock.lock();
    StartDiscovery();
  }
  return outcome;
}

Config Exporter::Effective(const Config& config) const {
  if (discovered_.empty()) return config;
  Config effective = config;
  discovery::MergeReport report;
  effective.nodes = discovery::MergeWithStatic(config.nodes, discovered_, &report);
  for (const auto& c : report.conflicts) spdlog::debug("discovery: static nodes win: {}", c);
  return effective;
}

void Exporter::StartDiscovery() {
  if (!config_.discovery.enabled) return;
  auto fresh = std::make_unique<discovery::Discovery>(
      config_, [this](const std::vector<NodeSpec>& nodes) { ApplyDiscovered(nodes); });
  discovery::Discovery* started = fresh.get();
  {
    std::unique_lock lock(collect_mutex_);  // scrapes read discovery_
    discovery_ = std::move(fresh);
  }
  started->Start();
}

void Exporter::ApplyDiscovered(const std::vector<NodeSpec>& nodes) {
  std::lock_guard reload_lock(reload_mutex_);
  discovered_ = nodes;
  Config effective = Effective(config_);
  spdlog::info("discovery: node table now {} nodes ({} discovered, {} from nodes:)",
               effective.nodes.size(), nodes.size(), config_.nodes.size());
  std::unique_lock lock(collect_mutex_);
  collectors_.ReconfigureAll(effective);
}

void Exporter::CollectSelf(std::vector<prometheus::MetricFamily>& out) {
  reload_status_.CollectSelf(out);
  if (discovery_) discovery_->Collect(out);
  if (server_) server_->Collect(out);
  try {
    CollectPrivilegeMetrics(ReadOwnPrivileges(), out);
  } catch (const std::exception& e) {
    spdlog::debug("privilege metrics unavailable: {}", e.what());
  }
}

std::string Exporter::Scrape() {
  std::vector<prometheus::MetricFamily> families;
  {
    std::shared_lock lock(collect_mutex_);
    collectors_.Collect(families);
    CollectSelf(families);
  }
  ObserveMesh(families);
  return SerializeExposition(families);
}

void Exporter::ObserveMesh(const std::vector<prometheus::MetricFamily>& families) {
  const double now = NowSeconds();
  mesh_observed_at_ = now;
  std::string node;
  {
    std::shared_lock lock(collect_mutex_);
    node = config_.node_name;
  }
  mesh_.Observe(node, mesh::ReadFamilies(node, families), now);
}

HttpResponse Exporter::ServeMetrics(const HttpRequest& request) {
  // Bound the work a burst of scrapes can cause; Prometheus retries on the next interval.
  struct InFlight {
    std::atomic<int>& n;
    ~InFlight() { --n; }
  } in_flight{scrapes_in_flight_};
  if (++scrapes_in_flight_ > options_.max_requests) {
    return HttpResponse::Text(503, "too many concurrent scrapes\n");
  }
  HttpResponse response;
  response.content_type = std::string(kExpositionContentType);
  response.body = Scrape();
  if (AcceptsGzip(request.Header("Accept-Encoding"))) {
    response.body = GzipCompress(response.body);
    response.headers.emplace_back("Content-Encoding", "gzip");
  }
  response.headers.emplace_back("Vary", "Accept-Encoding");
  // A scrape builds every series as strings and frees them again; glibc keeps the freed pages,
  // so resident memory would settle at the peak of the largest scrape. Handing them back costs
  // well under a millisecond once per scrape interval.
  malloc_trim(0);
  return response;
}

HttpResponse Exporter::ServeLandingPage() const {
  std::ostringstream html;
  const std::string path = HtmlEscape(options_.telemetry_path);
  html << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>meshflow exporter</title>"
       << "</head>\n<body>\n<h1>meshflow exporter</h1>\n"
       << "<p>Overlay round-trip time, loss and per-role traffic between the nodes of a "
          "cluster.</p>\n"
       << "<p>Version " << HtmlEscape(kVersion) << " (revision " << HtmlEscape(kRevision)
       << "), node <b>" << HtmlEscape(config_.node_name) << "</b></p>\n<ul>\n"
       << "<li><a href=\"" << path << "\">Metrics</a></li>\n"
       << "<li><a href=\"/mesh\">Mesh: this node's RTT, loss and role traffic</a></li>\n"
       << "<li><a href=\"/-/healthy\">Health</a></li>\n"
       << "<li><a href=\"/-/ready\">Readiness</a></li>\n</ul>\n"
       << "<p>Collectors: " << HtmlEscape(fmt::format("{}", fmt::join(collectors_.Names(), ", ")))
       << "</p>\n</body></html>\n";
  HttpResponse r;
  r.content_type = "text/html; charset=utf-8";
  r.body = html.str();
  return r;
}

}  // namespace meshflow
