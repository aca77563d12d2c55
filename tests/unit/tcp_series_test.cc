// The passive TCP series: names from the classifier, the histogram layout, the series bound.
#include "collectors/flow/tcp/tcp_series.h"

#include <gtest/gtest.h>

#include "common/core/histogram.h"

namespace meshflow::flow::tcp {
namespace {

Config TestConfig() {
  return ParseConfig(R"(
node_name: ct-serv-jp
nodes:
  - name: ct-serv-jp
    addresses: [100.64.0.1]
  - name: acer-agent
    addresses: [100.64.0.2]
)",
                     "test.yaml", "ignored");
}

const prometheus::MetricFamily* Family(const std::vector<prometheus::MetricFamily>& all,
                                       const std::string& name) {
  for (const auto& f : all) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string Label(const prometheus::ClientMetric& m, const std::string& name) {
  for (const auto& l : m.label) {
    if (l.name == name) return l.value;
  }
  return "<none>";
}

class SeriesTest : public ::testing::Test {
 protected:
  SeriesTest() : classifier_(config_, {}) {
    series_.Rebind(classifier_, 2000);
    role_ = *classifier_.FindRole("postgresql");
    ct_ = *classifier_.FindNode("ct-serv-jp");
    acer_ = *classifier_.FindNode("acer-agent");
  }
  Config config_ = TestConfig();
  Classifier classifier_;
  TcpSeries series_{2000, [](uint32_t id) { return "if" + std::to_string(id); }};
  RoleId role_;
  NodeId ct_, acer_;
};

TEST_F(SeriesTest, RttHistogramHasTheProberBucketsAndClientAsSource) {
  series_.OnRtt({role_, acer_, ct_, RttKind::kHandshake, 0.080});
  series_.OnRtt({role_, acer_, ct_, RttKind::kHandshake, 0.081});
  series_.OnRtt({role_, acer_, ct_, RttKind::kTimestamp, 0.079});
  std::vector<prometheus::MetricFamily> out;
  series_.Collect(out);
  const auto* rtt = Family(out, "meshflow_tcp_rtt_seconds");
  ASSERT_NE(rtt, nullptr);
  EXPECT_EQ(rtt->type, prometheus::MetricType::Histogram);
  ASSERT_EQ(rtt->metric.size(), 2u);
  const auto& h = rtt->metric[0];
  EXPECT_EQ(Label(h, "role"), "postgresql");
  EXPECT_EQ(Label(h, "src_node"), "acer-agent");
  EXPECT_EQ(Label(h, "dst_node"), "ct-serv-jp");
  EXPECT_EQ(Label(h, "kind"), "handshake");
  EXPECT_EQ(Label(rtt->metric[1], "kind"), "timestamp");
  EXPECT_EQ(h.histogram.sample_count, 2u);
  EXPECT_NEAR(h.histogram.sample_sum, 0.161, 1e-12);
  EXPECT_EQ(h.histogram.bucket.size(), RttBucketBounds().size() + 1);
}

TEST_F(SeriesTest, RetransmissionsCountPacketsAndBytesPerSender) {
  series_.OnRetransmission({3, role_, acer_, ct_, 1500});
  series_.OnRetransmission({3, role_, acer_, ct_, 100});
  series_.OnRetransmission({3, role_, ct_, acer_, 40});
  std::vector<prometheus::MetricFamily> out;
  series_.Collect(out);
  const auto* packets = Family(out, "meshflow_tcp_retransmitted_packets_total");
  const auto* bytes = Family(out, "meshflow_tcp_retransmitted_bytes_total");
  ASSERT_NE(packets, nullptr);
  ASSERT_NE(bytes, nullptr);
  ASSERT_EQ(packets->metric.size(), 2u);
  EXPECT_EQ(Label(packets->metric[0], "iface"), "if3");
  EXPECT_EQ(Label(packets->metric[0], "src_node"), "acer-agent");
  EXPECT_EQ(packets->metric[0].counter.value, 2);
  EXPECT_EQ(bytes->metric[0].counter.value, 1600);
  EXPECT_EQ(Label(packets->metric[1], "src_node"), "ct-serv-jp");
  EXPECT_EQ(bytes->metric[1].counter.value, 40);
}

TEST_F(SeriesTest, PastTheBoundResultsFoldIntoOverflowAndAreCounted) {
  series_.Rebind(classifier_, 2);
  series_.OnRtt({role_, acer_, ct_, RttKind::kHandshake, 0.08});
  series_.OnRetransmission({0, role_, acer_, ct_, 100});
  // A third distinct label set, twice, and a fourth.
  series_.OnRtt({role_, ct_, acer_, RttKind::kHandshake, 0.05});
  series_.OnRtt({role_, ct_, acer_, RttKind::kHandshake, 0.05});
  series_.OnRetransmission({0, role_, ct_, acer_, 60});
  std::vector<prometheus::MetricFamily> out;
  series_.Collect(out);
  const auto* overflow = Family(out, "meshflow_tcp_series_overflow_total");
  ASSERT_NE(overflow, nullptr);
  EXPECT_EQ(overflow->metric[0].counter.value, 3);
  const auto* rtt = Family(out, "meshflow_tcp_rtt_seconds");
  ASSERT_EQ(rtt->metric.size(), 2u);
  EXPECT_EQ(Label(rtt->metric[1], "src_node"), "overflow");
  EXPECT_EQ(Label(rtt->metric[1], "role"), "other");
  EXPECT_EQ(rtt->metric[1].histogram.sample_count, 2u);
  const auto* packets = Family(out, "meshflow_tcp_retransmitted_packets_total");
  ASSERT_EQ(packets->metric.size(), 2u);
  EXPECT_EQ(Label(packets->metric[1], "dst_node"), "overflow");
  EXPECT_EQ(packets->metric[1].counter.value, 1);
}

TEST_F(SeriesTest, SeriesSurviveARebindToANewClassifier) {
  series_.OnRtt({role_, acer_, ct_, RttKind::kHandshake, 0.08});
  Config changed = TestConfig();
  changed.nodes.insert(changed.nodes.begin(), NodeSpec{"new-node", {}});
  Classifier other(changed, {});
  series_.Rebind(other, 2000);
  series_.OnRtt({*other.FindRole("postgresql"), *other.FindNode("acer-agent"),
                 *other.FindNode("ct-serv-jp"), RttKind::kHandshake, 0.09});
  std::vector<prometheus::MetricFamily> out;
  series_.Collect(out);
  const auto* rtt = Family(out, "meshflow_tcp_rtt_seconds");
  ASSERT_EQ(rtt->metric.size(), 1u);
  EXPECT_EQ(rtt->metric[0].histogram.sample_count, 2u);
}

}  // namespace
}  // namespace meshflow::flow::tcp
