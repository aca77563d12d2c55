#pragma once

#include <prometheus/metric_family.h>

#include <memory>
#include <string>
#include <vector>

#include "common/core/clock.h"
#include "common/core/collector.h"

namespace meshflow {

// The enabled collectors of one exporter. Asks each at every scrape, times it, and reports
// meshflow_collector_duration_seconds and meshflow_collector_success; a collector that throws
// fails alone, never the scrape.
class CollectorSet {
 public:
  explicit CollectorSet(const Clock& clock = SystemClock::Instance()) : clock_(clock) {}

  void Add(std::string name, std::unique_ptr<Collector> collector);
  void StartAll();
  void StopAll();
  void ReconfigureAll(const Config& config);
  void Collect(std::vector<prometheus::MetricFamily>& out);
  std::vector<std::string> Names() const;
  // What the collectors ask to keep once started, each capability once, in ascending order.
  std::vector<int> CapabilitiesWhileRunning() const;

 private:
  struct Entry {
    std::string name;
    std::unique_ptr<Collector> collector;
    std::string last_error;
  };
  const Clock& clock_;
  std::vector<Entry> entries_;
};

}  // namespace meshflow
