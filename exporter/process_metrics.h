#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace meshflow {

// The standard process_* metrics (as client_golang names them), read from /proc/<pid>.
// `proc_root` is "/proc/self" in production and a fixture directory in tests.
void CollectProcessMetrics(const std::string& proc_root,
                           std::vector<prometheus::MetricFamily>& out);

}  // namespace meshflow
