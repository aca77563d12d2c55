#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

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

}  // namespace meshflow
