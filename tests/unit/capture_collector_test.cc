#include <gtest/gtest.h>
#include <linux/capability.h>
#include <pcap/dlt.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "collectors/flow/flow_collector.h"
#include "common/core/metric_builder.h"

namespace meshflow::flow {
namespace {

// Records what the collector asks of the pipeline.
class RecordingStage final : public FlowStage {
 public:
  uint32_t AddInterface(const std::string& /*name*/, int /*link_type*/) override { return 0; }
  void OnPacket(uint32_t /*id*/, const CapturedPacket& /*packet*/) override {}
  void Reconfigure(const Config& config) override { max_series = config.flows.max_series; }
  void Collect(std::vector<prometheus::MetricFamily>& out) override {
    FamilyBuilder("meshflow_flow_series", "test", prometheus::MetricType::Gauge)
        .Gauge({}, 1)
        .AppendTo(out);
  }
  int64_t max_series = 0;
};

Config NoInterfaces() {
  Config config;
  // Nothing on this host is named so: the loop runs without opening a handle (no root needed).
  config.flows.capture.include = {"^mfcap-none-selected$"};
  return config;
}

std::vector<std::string> Names(const std::vector<prometheus::MetricFamily>& families) {
  std::vector<std::string> names;
  for (const auto& f : families) names.push_back(f.name);
  return names;
}

TEST(FlowCollector, CollectsCaptureAndPipelineFamilies) {
  auto stage = std::make_unique<RecordingStage>();
  FlowCollector collector(NoInterfaces(), std::move(stage));
  collector.Start();
  std::vector<prometheus::MetricFamily> out;
  collector.Collect(out);
  collector.Stop();
  const auto names = Names(out);
  EXPECT_NE(std::find(names.begin(), names.end(), "meshflow_flow_series"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "meshflow_capture_netlink_errors_total"),
            names.end());
  // No interface was selected, so there is no per-interface series to show.
  EXPECT_EQ(std::find(names.begin(), names.end(), "meshflow_capture_up"), names.end());
}

// Live capture and the pipeline each write their own families; none is written twice, and the
// pipeline's packets and kinds are there for an interface before its first packet.
TEST(FlowCollector, EveryFamilyHasOneWriter) {
  const Config config = NoInterfaces();
  auto stage = MakeFlowPipelineStage(config);
  FlowStage& pipeline = *stage;
  FlowCollector collector(config, std::move(stage));
  pipeline.AddInterface("wg0", DLT_RAW);
  std::vector<prometheus::MetricFamily> out;
  collector.Collect(out);

  auto names = Names(out);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
  const auto family = [&](const std::string& name) -> const prometheus::MetricFamily* {
    for (const auto& f : out)
      if (f.name == name) return &f;
    return nullptr;
  };
  const auto* packets = family("meshflow_capture_packets_total");
  ASSERT_NE(packets, nullptr);
  ASSERT_EQ(packets->metric.size(), 1u);
  EXPECT_EQ(packets->metric[0].label[0].value, "wg0");
  EXPECT_EQ(packets->metric[0].counter.value, 0);
  const auto* info = family("meshflow_capture_interface_info");
  ASSERT_NE(info, nullptr);
  ASSERT_EQ(info->metric.size(), 1u);
  EXPECT_EQ(info->metric[0].label[1].value, "overlay");
}

// The daemon keeps what the collector asks for once started, and drops the rest.
TEST(FlowCollector, AsksToKeepNetRawWhileCapturingAndNetAdminForPromiscuous) {
  EXPECT_EQ(
      FlowCollector(NoInterfaces(), std::make_unique<RecordingStage>()).CapabilitiesWhileRunning(),
      std::vector<int>{CAP_NET_RAW});
  Config promiscuous = NoInterfaces();
  promiscuous.flows.capture.promiscuous = true;
  EXPECT_EQ(
      FlowCollector(promiscuous, std::make_unique<RecordingStage>()).CapabilitiesWhileRunning(),
      (std::vector<int>{CAP_NET_RAW, CAP_NET_ADMIN}));
}

TEST(FlowCollector, ReconfigureReachesThePipeline) {
  auto stage = std::make_unique<RecordingStage>();
  RecordingStage* seen = stage.get();
  FlowCollector collector(NoInterfaces(), std::move(stage));
  collector.Start();
  Config next = NoInterfaces();
  next.flows.max_series = 77;
  collector.Reconfigure(next);
  collector.Stop();
  EXPECT_EQ(seen->max_series, 77);
}

TEST(FlowCollector, StopIsIdempotentAndStartIsOptional) {
  {
    FlowCollector never_started(NoInterfaces(), std::make_unique<RecordingStage>());
    std::vector<prometheus::MetricFamily> out;
    never_started.Collect(out);
    never_started.Stop();
  }
  FlowCollector collector(NoInterfaces(), std::make_unique<RecordingStage>());
  collector.Start();
  collector.Stop();
  collector.Stop();
  collector.Start();  // a restart reuses the loop's descriptors
  collector.Stop();
}

}  // namespace
}  // namespace meshflow::flow
