#include "exporter/collector_set.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/core/metric_builder.h"

namespace meshflow {

void CollectorSet::Add(std::string name, std::unique_ptr<Collector> collector) {
  entries_.push_back({std::move(name), std::move(collector), {}});
}

void CollectorSet::StartAll() {
  for (auto& e : entries_) e.collector->Start();
}

void CollectorSet::StopAll() {
  for (auto& e : entries_) e.collector->Stop();
}

void CollectorSet::ReconfigureAll(const Config& config) {
  for (auto& e : entries_) e.collector->Reconfigure(config);
}

std::vector<std::string> CollectorSet::Names() const {
  std::vector<std::string> names;
  for (const auto& e : entries_) names.push_back(e.name);
  return names;
}

void CollectorSet::Collect(std::vector<prometheus::MetricFamily>& out) {
  using prometheus::MetricType;
  FamilyBuilder duration("meshflow_collector_duration_seconds",
                         "Time a collector took to answer the last scrape.", MetricType::Gauge);
  FamilyBuilder success(
      "meshflow_collector_success",
      "Whether a collector answered the last scrape without error (1) or not (0).",
      MetricType::Gauge);
  for (auto& e : entries_) {
    const auto start = clock_.Monotonic();
    const size_t families_before = out.size();
    bool ok = true;
    try {
      e.collector->Collect(out);
      if (!e.last_error.empty()) spdlog::info("collector {} works again", e.name);
      e.last_error.clear();
    } catch (const std::exception& ex) {
      ok = false;
      // A half-written answer is worse than none: drop what this collector added.
      out.resize(families_before);
      // Scrapes come every few seconds: say it once, not every time.
      if (e.last_error != ex.what()) spdlog::warn("collector {} failed: {}", e.name, ex.what());
      e.last_error = ex.what();
    }
    const double seconds = std::chrono::duration<double>(clock_.Monotonic() - start).count();
    duration.Gauge({{"collector", e.name}}, seconds);
    success.Gauge({{"collector", e.name}}, ok ? 1 : 0);
  }
  duration.AppendTo(out);
  success.AppendTo(out);
}

std::vector<int> CollectorSet::CapabilitiesWhileRunning() const {
  std::vector<int> caps;
  for (const auto& e : entries_) {
    for (const int cap : e.collector->CapabilitiesWhileRunning()) caps.push_back(cap);
  }
  std::sort(caps.begin(), caps.end());
  caps.erase(std::unique(caps.begin(), caps.end()), caps.end());
  return caps;
}

}  // namespace meshflow
