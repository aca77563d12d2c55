#pragma once

#include <prometheus/metric_family.h>

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/clock.h"
#include "common/daemon/control_loop.h"

namespace meshflow {

// The standard process_* metrics (as client_golang names them), read from /proc/<pid>.
// `proc_root` is "/proc/self" in production and a fixture directory in tests.
void CollectProcessMetrics(const std::string& proc_root,
                           std::vector<prometheus::MetricFamily>& out);

// What every meshflow daemon reports about itself: meshflow_build_info, the config reload pair
// (meshflow_config_last_reload_successful, ..._success_timestamp_seconds) and the process_*
// metrics of this process.
void CollectDaemonSelfMetrics(bool last_reload_ok, double last_reload_success_time,
                              std::vector<prometheus::MetricFamily>& out);

// The outcome of a daemon's config loads, for its self metrics; safe from any thread.
class ReloadStatus {
 public:
  // Runs `apply`, which loads and applies the config file and returns where it came from, or
  // throws with the located reason; records and logs the outcome ("<what> reloaded from ...").
  ReloadOutcome Reload(std::string_view what, const Clock& clock,
                       const std::function<std::string()>& apply);
  // A config was loaded at `wall_seconds` (seconds since the epoch).
  void Succeeded(double wall_seconds);
  // A reload was refused; the running config stays.
  void Failed();
  // meshflow_build_info, the reload pair and process_* (CollectDaemonSelfMetrics).
  void CollectSelf(std::vector<prometheus::MetricFamily>& out) const;

 private:
  mutable std::mutex mutex_;
  bool last_ok_ = true;
  double last_success_time_ = 0;
};

}  // namespace meshflow
