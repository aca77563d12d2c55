#include "common/daemon/process_metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <map>

namespace meshflow {
namespace {

std::map<std::string, double> Collect(const std::string& root) {
  std::vector<prometheus::MetricFamily> families;
  CollectProcessMetrics(root, families);
  std::map<std::string, double> values;
  for (const auto& f : families) {
    const auto& m = f.metric.at(0);
    values[f.name] = f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
  }
  return values;
}

TEST(ProcessMetrics, ReadsFixtureWithParenthesesInCommandName) {
  const auto v = Collect(MESHFLOW_FIXTURES "/proc/self");
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  EXPECT_DOUBLE_EQ(v.at("process_cpu_seconds_total"), 400 / ticks);
  EXPECT_DOUBLE_EQ(v.at("process_resident_memory_bytes"), 2048.0 * sysconf(_SC_PAGESIZE));
  EXPECT_DOUBLE_EQ(v.at("process_virtual_memory_bytes"), 12345678);
  EXPECT_DOUBLE_EQ(v.at("process_open_fds"), 3);
  EXPECT_DOUBLE_EQ(v.at("process_max_fds"), 1024);
  EXPECT_DOUBLE_EQ(v.at("process_start_time_seconds"), 1700000000 + 1000 / ticks);
}

TEST(ProcessMetrics, ReadsThisProcess) {
  const auto v = Collect("/proc/self");
  EXPECT_GT(v.at("process_resident_memory_bytes"), 0);
  EXPECT_GE(v.at("process_open_fds"), 3);
  EXPECT_GT(v.at("process_start_time_seconds"), 1.6e9);
}

TEST(ProcessMetrics, MissingProcIsAnError) {
  std::vector<prometheus::MetricFamily> families;
  EXPECT_THROW(CollectProcessMetrics("/nonexistent/proc/self", families), std::runtime_error);
}

}  // namespace
}  // namespace meshflow
