#include "collectors/probe/probe_collector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "common/config/config.h"

namespace meshflow::probe {
namespace {

const prometheus::MetricFamily* FindFamily(const std::vector<prometheus::MetricFamily>& f,
                                           const std::string& name) {
  auto it = std::find_if(f.begin(), f.end(), [&](const auto& x) { return x.name == name; });
  return it == f.end() ? nullptr : &*it;
}

std::string Label(const prometheus::ClientMetric& m, const std::string& name) {
  for (const auto& l : m.label)
    if (l.name == name) return l.value;
  return "<none>";
}

TEST(ProbeExposition, EmitsTheContractNamesWithTheirLabels) {
  ProberSnapshot snap;
  snap.node_name = "gce-agent-tw";
  SeriesSnapshot udp;
  udp.peer = "ct-serv-jp";
  udp.method = Method::kUdp;
  udp.stats.sent = 10;
  udp.stats.received = 7;
  udp.stats.lost = 2;
  udp.stats.forward_lost = 1;
  udp.stats.return_lost = 1;
  udp.stats.errors["no_buffer_space"] = 3;
  udp.stats.rtt.Observe(0.048);
  udp.in_flight = 1;
  SeriesSnapshot icmp = udp;
  icmp.method = Method::kIcmp;
  snap.series = {udp, icmp};
  snap.timestamp_fallbacks = {0, 2, 0};
  snap.reflector_running = true;
  snap.reflector.replies = 5;

  const auto families = BuildFamilies(snap);
  for (const char* name :
       {"meshflow_probe_rtt_seconds", "meshflow_probe_sent_total", "meshflow_probe_received_total",
        "meshflow_probe_late_total", "meshflow_probe_duplicates_total",
        "meshflow_probe_reordered_total", "meshflow_probe_forward_lost_total",
        "meshflow_probe_return_lost_total", "meshflow_probe_errors_total",
        "meshflow_probe_jitter_seconds", "meshflow_probe_timestamp_fallbacks_total",
        "meshflow_probe_reflector_replies_total", "meshflow_probe_reflector_rate_limited_total",
        "meshflow_probe_reflector_malformed_total"}) {
    EXPECT_NE(FindFamily(families, name), nullptr) << name;
  }
  const auto* rtt = FindFamily(families, "meshflow_probe_rtt_seconds");
  ASSERT_EQ(rtt->metric.size(), 2u);
  EXPECT_EQ(rtt->type, prometheus::MetricType::Histogram);
  EXPECT_EQ(Label(rtt->metric[0], "src_node"), "gce-agent-tw");
  EXPECT_EQ(Label(rtt->metric[0], "dst_node"), "ct-serv-jp");
  EXPECT_EQ(Label(rtt->metric[0], "method"), "udp");
  EXPECT_EQ(rtt->metric[0].histogram.sample_count, 1u);
  // Forward/return loss only exist for udp.
  const auto* fwd = FindFamily(families, "meshflow_probe_forward_lost_total");
  ASSERT_EQ(fwd->metric.size(), 1u);
  EXPECT_EQ(Label(fwd->metric[0], "method"), "udp");
  const auto* errors = FindFamily(families, "meshflow_probe_errors_total");
  EXPECT_EQ(Label(errors->metric[0], "reason"), "no_buffer_space");
  EXPECT_EQ(errors->metric[0].counter.value, 3);
  const auto* fallbacks = FindFamily(families, "meshflow_probe_timestamp_fallbacks_total");
  ASSERT_EQ(fallbacks->metric.size(), 3u);
  EXPECT_EQ(Label(fallbacks->metric[1], "method"), "udp");
  EXPECT_EQ(fallbacks->metric[1].counter.value, 2);
}

TEST(ProbeExposition, NoReflectorFamiliesWhenItIsNotRunning) {
  ProberSnapshot snap;
  snap.node_name = "a";
  const auto families = BuildFamilies(snap);
  EXPECT_EQ(FindFamily(families, "meshflow_probe_reflector_replies_total"), nullptr);
}

TEST(ProbeOptions, DefaultPeersAreTheOtherNodesAtTheirFirstAddress) {
  const Config config = ParseConfig(R"(
node_name: acer-agent
nodes:
  - {name: ct-serv-jp, addresses: [100.64.0.1, 10.0.0.1/32]}
  - {name: acer-agent, addresses: [100.64.0.2]}
  - {name: lan, addresses: [192.168.20.0/24]}
  - {name: v6-node, addresses: ["fd7a:115c:a1e0::5"]}
probes:
  methods: [icmp, udp, tcp]
  tcp_port: 6443
)",
                                    "test.yaml", "x");
  const ProberOptions o = OptionsFromConfig(config);
  ASSERT_EQ(o.peers.size(), 2u);
  EXPECT_EQ(o.node_name, "acer-agent");
  EXPECT_EQ(o.peers[0].name, "ct-serv-jp");
  EXPECT_EQ(o.peers[0].address, "100.64.0.1");
  EXPECT_EQ(o.peers[0].methods.size(), 3u);
  EXPECT_EQ(o.peers[0].tcp_port, 6443);
  EXPECT_EQ(o.peers[1].name, "v6-node");
  EXPECT_EQ(o.peers[1].address, "fd7a:115c:a1e0::5");
}

TEST(ProbeOptions, ExplicitPeersWithTheirOwnMethodsAndPorts) {
  const Config config = ParseConfig(R"(
node_name: a
nodes:
  - {name: b, addresses: [10.0.0.2]}
probes:
  methods: [udp]
  tcp_port: 22
  udp_port: 9999
  peers:
    - {name: api, address: k3s.example.internal, methods: [tcp], tcp_port: 6443}
    - {name: b, address: 10.0.0.2}
)",
                                    "test.yaml", "x");
  const ProberOptions o = OptionsFromConfig(config);
  ASSERT_EQ(o.peers.size(), 2u);
  EXPECT_EQ(o.peers[0].address, "k3s.example.internal");
  ASSERT_EQ(o.peers[0].methods.size(), 1u);
  EXPECT_EQ(o.peers[0].methods[0], Method::kTcp);
  EXPECT_EQ(o.peers[0].tcp_port, 6443);
  EXPECT_EQ(o.peers[1].methods[0], Method::kUdp);
  EXPECT_EQ(o.peers[1].udp_port, 9999);
  EXPECT_EQ(o.peers[1].tcp_port, 22);
}

}  // namespace
}  // namespace meshflow::probe
