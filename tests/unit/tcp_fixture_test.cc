// Replays the passive-TCP fixture (tests/fixtures/flow/tcp_passive.pcap, made by generate.py)
// through the flow pipeline and compares the meshflow_tcp_* series with the RTTs and
// retransmissions the generator built into the packets.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>
#include <tuple>

#include "collectors/flow/flow_pipeline.h"
#include "collectors/flow/replay.h"
#include "common/core/histogram.h"
#include "common/text_format/writer.h"

namespace meshflow::flow {
namespace {

const std::string kDir = MESHFLOW_FLOW_FIXTURES;
using Key = std::tuple<std::string, std::string, std::string, std::string>;

std::string Label(const prometheus::ClientMetric& m, const std::string& name) {
  for (const auto& l : m.label) {
    if (l.name == name) return l.value;
  }
  return "<none>";
}

std::vector<prometheus::MetricFamily> Replay(const Config& config, const std::string& file) {
  FlowPipeline pipeline(config, [] { return std::vector<IpAddress>{}; });
  std::string error;
  EXPECT_TRUE(ReplayFile(kDir + "/" + file, pipeline, &error, "if0")) << error;
  std::vector<prometheus::MetricFamily> families;
  pipeline.Collect(families);
  return families;
}

const prometheus::MetricFamily* Find(const std::vector<prometheus::MetricFamily>& all,
                                     const std::string& name) {
  for (const auto& f : all) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

TEST(TcpFixture, RttAndRetransmissionsAreWhatTheGeneratorBuilt) {
  const YAML::Node want = YAML::LoadFile(kDir + "/expected.json")["tcp_passive.pcap"]["tcp"];
  ASSERT_TRUE(want) << "regenerate the fixtures";
  const Config config = LoadConfigFile(kDir + "/config.yaml", "replay");
  ASSERT_TRUE(config.flows.tcp.enabled);
  const auto families = Replay(config, "tcp_passive.pcap");

  // The expected histograms, built from the generator's values with the prober's buckets.
  std::map<Key, LatencyHistogram> expected;
  for (const char* kind : {"handshake", "timestamp"}) {
    for (const auto& s : want[std::string(kind) + "_rtt_seconds"]) {
      const Key key{s["role"].as<std::string>(), s["src"].as<std::string>(),
                    s["dst"].as<std::string>(), kind};
      expected.try_emplace(key).first->second.Observe(s["value"].as<double>());
    }
  }
  const auto* rtt = Find(families, "meshflow_tcp_rtt_seconds");
  ASSERT_NE(rtt, nullptr);
  std::map<Key, const prometheus::ClientMetric*> got;
  for (const auto& m : rtt->metric) {
    got[{Label(m, "role"), Label(m, "src_node"), Label(m, "dst_node"), Label(m, "kind")}] = &m;
  }
  ASSERT_EQ(got.size(), expected.size());
  for (const auto& [key, h] : expected) {
    const auto it = got.find(key);
    const std::string name = std::get<0>(key) + " " + std::get<1>(key) + "->" + std::get<2>(key) +
                             " " + std::get<3>(key);
    ASSERT_NE(it, got.end()) << name;
    const auto& m = it->second->histogram;
    EXPECT_EQ(m.sample_count, h.count()) << name;
    // Capture timestamps are whole nanoseconds of a float the generator rounded.
    EXPECT_NEAR(m.sample_sum, h.sum(), 1e-6) << name;
    uint64_t cumulative = 0;
    for (size_t b = 0; b < h.counts().size(); ++b) {
      cumulative += h.counts()[b];
      EXPECT_EQ(m.bucket[b].cumulative_count, cumulative) << name << " bucket " << b;
    }
  }

  const auto* packets = Find(families, "meshflow_tcp_retransmitted_packets_total");
  const auto* bytes = Find(families, "meshflow_tcp_retransmitted_bytes_total");
  ASSERT_NE(packets, nullptr);
  ASSERT_NE(bytes, nullptr);
  ASSERT_EQ(packets->metric.size(), want["retransmissions"].size());
  for (const auto& r : want["retransmissions"]) {
    bool found = false;
    for (size_t i = 0; i < packets->metric.size(); ++i) {
      const auto& m = packets->metric[i];
      if (Label(m, "iface") != "if0" || Label(m, "role") != r["role"].as<std::string>() ||
          Label(m, "src_node") != r["src"].as<std::string>() ||
          Label(m, "dst_node") != r["dst"].as<std::string>()) {
        continue;
      }
      found = true;
      EXPECT_EQ(m.counter.value, r["packets"].as<double>()) << r["role"];
      EXPECT_EQ(bytes->metric[i].counter.value, r["bytes"].as<double>()) << r["role"];
    }
    EXPECT_TRUE(found) << r["role"] << " " << r["src"] << "->" << r["dst"];
  }

  const auto* entries = Find(families, "meshflow_tcp_connection_table_entries");
  ASSERT_NE(entries, nullptr);
  EXPECT_EQ(entries->metric[0].gauge.value, want["connection_table_entries"].as<double>());
  const auto* evictions = Find(families, "meshflow_tcp_connection_table_evictions_total");
  ASSERT_NE(evictions, nullptr);
  for (const auto& m : evictions->metric) EXPECT_EQ(m.counter.value, 0) << Label(m, "reason");
}

TEST(TcpFixture, DisabledPassiveTcpReportsNothing) {
  Config config = LoadConfigFile(kDir + "/config.yaml", "replay");
  config.flows.tcp.enabled = false;
  const auto families = Replay(config, "tcp_passive.pcap");
  EXPECT_EQ(Find(families, "meshflow_tcp_rtt_seconds"), nullptr);
  EXPECT_EQ(Find(families, "meshflow_tcp_connection_table_entries"), nullptr);
  EXPECT_NE(Find(families, "meshflow_flow_bytes_total"), nullptr);
}

TEST(TcpFixture, ATinyTableEvictsAndCountsIt) {
  Config config = LoadConfigFile(kDir + "/config.yaml", "replay");
  config.flows.tcp.max_connections = 1;
  const auto families = Replay(config, "tcp_passive.pcap");
  const auto* evictions = Find(families, "meshflow_tcp_connection_table_evictions_total");
  ASSERT_NE(evictions, nullptr);
  double full = 0;
  for (const auto& m : evictions->metric) {
    if (Label(m, "reason") == "full") full = m.counter.value;
  }
  // Five connections through one slot; connection A's packets interleave with none, so each
  // new connection evicts the previous one (E's RST removes rather than evicts).
  EXPECT_EQ(full, 4);
  EXPECT_EQ(Find(families, "meshflow_tcp_connection_table_entries")->metric[0].gauge.value, 0);
}

// The pipeline flushed after every packet: passive TCP tracks each packet at once.
class OneAtATime final : public PacketSink {
 public:
  explicit OneAtATime(FlowPipeline& pipeline) : pipeline_(pipeline) {}
  uint32_t AddInterface(const std::string& name, int link_type) override {
    return pipeline_.AddInterface(name, link_type);
  }
  void OnPacket(uint32_t interface_id, const CapturedPacket& packet) override {
    pipeline_.OnPacket(interface_id, packet);
    pipeline_.Flush();
  }

 private:
  FlowPipeline& pipeline_;
};

// The exposition's lines, sorted: TCP packets are classified when tracked, so a flow series
// may be created a few packets later than by tracking each packet at once, and be listed in
// another place within its family.
std::vector<std::string> Exposition(const FlowPipeline& pipeline) {
  std::vector<prometheus::MetricFamily> families;
  pipeline.CollectCaptureFamilies(families);
  pipeline.Collect(families);
  std::ostringstream out;
  out << SerializeExposition(families);
  std::vector<std::string> lines;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

// Passive TCP tracks packets a few TCP packets late (TcpTracker::Submit); after a replay the
// exposition has every line of tracking each at once, with the default table and with one so
// small that every window holds evictions.
TEST(TcpFixture, BatchedTrackingGivesTheExpositionOfOneAtATime) {
  for (const int64_t max_connections : {int64_t{16384}, int64_t{2}}) {
    Config config = LoadConfigFile(kDir + "/config.yaml", "replay");
    config.flows.tcp.max_connections = max_connections;
    for (const auto& entry : std::filesystem::directory_iterator(kDir)) {
      const std::string file = entry.path().string();
      if (entry.path().extension() != ".pcap" && entry.path().extension() != ".pcapng") continue;
      FlowPipeline batched(config, [] { return std::vector<IpAddress>{}; });
      FlowPipeline at_once(config, [] { return std::vector<IpAddress>{}; });
      OneAtATime one_at_a_time(at_once);
      std::string error;
      // Some fixtures are malformed on purpose: both runs must fail alike.
      const bool ok = ReplayFile(file, batched, &error, "if0");
      EXPECT_EQ(ReplayFile(file, one_at_a_time, &error, "if0"), ok) << file;
      EXPECT_EQ(Exposition(batched), Exposition(at_once)) << file << " " << max_connections;
    }
  }
}

}  // namespace
}  // namespace meshflow::flow
