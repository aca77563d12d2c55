#pragma once

#include <prometheus/metric_family.h>

#include <vector>

namespace meshflow {

struct Config;

// One source of metrics, asked at every scrape. Collectors that measure continuously (capture,
// probing) do their work on their own threads between Start() and Stop() and only snapshot here.
class Collector {
 public:
  virtual ~Collector() = default;

  // Starts background work. Called once, after construction and before the first Collect().
  virtual void Start() {}
  // Stops background work; returns within a second.
  virtual void Stop() {}
  // Applies a new, already validated config. Counters must survive it.
  virtual void Reconfigure(const Config& /*config*/) {}
  // Appends this collector's families. Throwing marks the collector failed for this scrape only.
  virtual void Collect(std::vector<prometheus::MetricFamily>& out) = 0;
  // Capabilities (CAP_* of linux/capability.h) the collector still needs once started, while it
  // runs: the daemon keeps these and drops the rest. Sockets opened in Start() need none.
  virtual std::vector<int> CapabilitiesWhileRunning() const { return {}; }
};

}  // namespace meshflow
