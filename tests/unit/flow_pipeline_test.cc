#include "collectors/flow/flow_pipeline.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include "tests/unit/flow_packets.h"
#include "tests/unit/flow_test_util.h"

namespace meshflow::flow {
namespace {

using namespace test_packets;  // NOLINT: the packet builders

constexpr int kRaw = 101;

Config TestConfig(int64_t max_series = 2000) {
  Config config = ParseConfig(R"(
node_name: ct-serv-jp
nodes:
  - name: ct-serv-jp
    addresses: [100.64.0.1]
  - name: acer-agent
    addresses: [100.64.0.2, 10.42.1.0/24]
)",
                              "test.yaml", "ignored");
  config.flows.max_series = max_series;
  return config;
}

AddressSource NoAddresses() {
  return [] { return std::vector<IpAddress>{}; };
}

void Feed(FlowPipeline& p, uint32_t iface, const Bytes& bytes, int64_t ts_ns = 0,
          uint32_t wire = 0) {
  CapturedPacket packet;
  packet.timestamp_ns = ts_ns;
  packet.data = bytes.data();
  packet.captured_length = static_cast<uint32_t>(bytes.size());
  packet.wire_length = wire ? wire : static_cast<uint32_t>(bytes.size());
  p.OnPacket(iface, packet);
  p.Flush();  // TCP packets are counted when tracked
}

std::map<std::string, double> Scrape(const FlowPipeline& p) {
  std::vector<prometheus::MetricFamily> families;
  p.CollectCaptureFamilies(families);
  p.Collect(families);
  return Flatten(families);
}

Bytes V4Tcp(V4 src, V4 dst, uint16_t sport, uint16_t dport, uint8_t flags, size_t payload = 0) {
  const Bytes tcp = Tcp(sport, dport, flags);
  return Cat({Ipv4Header(6, src, dst, tcp.size() + payload), tcp, Zeros(payload)});
}

TEST(FlowPipeline, CountsBytesPacketsAndConnectionAttempts) {
  FlowPipeline p(TestConfig(), NoAddresses());
  const uint32_t ts0 = p.AddInterface("tailscale0", kRaw);
  Feed(p, ts0, V4Tcp({100, 64, 0, 2}, {100, 64, 0, 1}, 41000, 6443, tcp_flags::kSyn));
  Feed(p, ts0,
       V4Tcp({100, 64, 0, 1}, {100, 64, 0, 2}, 6443, 41000, tcp_flags::kSyn | tcp_flags::kAck));
  Feed(p, ts0, V4Tcp({100, 64, 0, 2}, {100, 64, 0, 1}, 41000, 6443, tcp_flags::kAck, 100));
  const auto m = Scrape(p);
  const auto k = [](const char* name, const char* src, const char* dst) {
    return FlowKey(name, "tailscale0", "k8s-api", src, dst);
  };
  EXPECT_EQ(m.at(k("meshflow_flow_bytes_total", "acer-agent", "ct-serv-jp")), 180);
  EXPECT_EQ(m.at(k("meshflow_flow_packets_total", "acer-agent", "ct-serv-jp")), 2);
  EXPECT_EQ(m.at(k("meshflow_flow_connections_total", "acer-agent", "ct-serv-jp")), 1);
  EXPECT_EQ(m.at(k("meshflow_flow_connections_total", "ct-serv-jp", "acer-agent")), 0);
  EXPECT_EQ(m.at("meshflow_capture_packets_total{iface=tailscale0}"), 3);
  EXPECT_EQ(m.at("meshflow_capture_interface_info{iface=tailscale0,kind=overlay}"), 1);
}

TEST(FlowPipeline, SameInterfaceNameKeepsItsId) {
  FlowPipeline p(TestConfig(), NoAddresses());
  const uint32_t a = p.AddInterface("tailscale0", kRaw);
  const uint32_t b = p.AddInterface("eth0", 1);
  EXPECT_NE(a, b);
  EXPECT_EQ(p.AddInterface("tailscale0", kRaw), a);
  const auto m = Scrape(p);
  EXPECT_EQ(m.at("meshflow_capture_interface_info{iface=eth0,kind=underlay}"), 1);
}

TEST(FlowPipeline, DecodeErrorsAreCountedByReasonAndNotInFlows) {
  FlowPipeline p(TestConfig(), NoAddresses());
  const uint32_t i = p.AddInterface("wg0", kRaw);
  Bytes bad = V4Tcp({100, 64, 0, 2}, {100, 64, 0, 1}, 1, 2, 0);
  bad[0] = 0x43;
  Feed(p, i, bad);
  Feed(p, i, Bytes{0x45});
  const auto m = Scrape(p);
  EXPECT_EQ(m.at("meshflow_capture_decode_errors_total{iface=wg0,reason=bad_ip_header_length}"), 1);
  EXPECT_EQ(m.at("meshflow_capture_decode_errors_total{iface=wg0,reason=truncated_ip_header}"), 1);
  EXPECT_EQ(m.at("meshflow_flow_series{}"), 0);
}

TEST(FlowPipeline, UnknownInterfaceIdAndUnsupportedLinkType) {
  FlowPipeline p(TestConfig(), NoAddresses());
  const uint32_t i = p.AddInterface("odd0", 147);
  Feed(p, i, V4Tcp({1, 1, 1, 1}, {2, 2, 2, 2}, 1, 2, 0));
  Feed(p, 999, V4Tcp({1, 1, 1, 1}, {2, 2, 2, 2}, 1, 2, 0));  // never announced: ignored
  const auto m = Scrape(p);
  EXPECT_EQ(m.at("meshflow_capture_decode_errors_total{iface=odd0,reason=unsupported_link_type}"),
            1);
  EXPECT_EQ(m.at("meshflow_flow_unknown_interface_packets_total{}"), 1);
  EXPECT_EQ(m.at("meshflow_flow_series{}"), 0);
}

TEST(FlowPipeline, PortScanAndAddressFloodStayWithinTheBound) {
  FlowPipeline p(TestConfig(/*max_series=*/10), NoAddresses());
  const uint32_t i = p.AddInterface("eth0", kRaw);
  // Every port of one host, then 20000 random-looking sources: roles collapse to "other" and
  // addresses to "external", so few series exist in the first place.
  for (uint32_t port = 1; port <= 65535; ++port) {
    Feed(p, i,
         V4Tcp({203, 0, 113, 9}, {100, 64, 0, 1}, 40000, static_cast<uint16_t>(port),
               tcp_flags::kSyn));
  }
  for (uint32_t n = 0; n < 20000; ++n) {
    const uint32_t a = n * 2654435761u;
    Feed(p, i,
         V4Tcp({static_cast<uint8_t>(a >> 24), static_cast<uint8_t>(a >> 16),
                static_cast<uint8_t>(a >> 8), static_cast<uint8_t>(a)},
               {100, 64, 0, 2}, 1234, 80, tcp_flags::kSyn));
  }
  const auto m = Scrape(p);
  EXPECT_LE(m.at("meshflow_flow_series{}"), 10 + 1);
  double packets = 0;
  for (const auto& [k, v] : m) {
    if (k.rfind("meshflow_flow_packets_total{", 0) == 0) packets += v;
  }
  EXPECT_EQ(packets, 65535 + 20000);  // nothing lost, whatever the folding
}

TEST(FlowPipeline, PastTheBoundNewCombinationsFoldIntoOverflow) {
  Config config = TestConfig(/*max_series=*/3);
  FlowPipeline p(config, NoAddresses());
  const uint32_t i = p.AddInterface("eth0", kRaw);
  const std::vector<uint16_t> ports = {6443, 6379, 5432, 80, 443, 53};
  for (uint16_t port : ports) {
    Feed(p, i, V4Tcp({100, 64, 0, 2}, {100, 64, 0, 1}, 40000, port, 0, 10));
  }
  // An existing series keeps counting after the bound is reached.
  Feed(p, i, V4Tcp({100, 64, 0, 2}, {100, 64, 0, 1}, 40000, 6443, 0, 10));
  const auto m = Scrape(p);
  EXPECT_EQ(m.at("meshflow_flow_series{}"), 4);  // 3 + the interface's overflow series
  EXPECT_EQ(m.at(FlowKey("meshflow_flow_packets_total", "eth0", "other", "overflow", "overflow")),
            3);
  EXPECT_EQ(m.at(FlowKey("meshflow_flow_bytes_total", "eth0", "other", "overflow", "overflow")),
            150);
  EXPECT_EQ(m.at("meshflow_flow_series_overflow_total{}"), 3);
  EXPECT_EQ(
      m.at(FlowKey("meshflow_flow_packets_total", "eth0", "k8s-api", "acer-agent", "ct-serv-jp")),
      2);
}

// With passive TCP on, the tracker classifies and counts TCP packets, through the flow series
// each connection direction remembers; the flow families must be those of passive TCP off,
// packet for packet. The traffic opens, reuses, resets and closes connections in a table so
// small that most are evicted, over both IP versions and two interfaces, and a reconfiguration
// midway gives a port another role. Near the series bound the tracker is flushed after every
// packet, so series are created in the same order and the same keys get the last ones.
TEST(FlowPipeline, PassiveTcpCountsFlowsAsWithoutIt) {
  for (const bool near_bound : {false, true}) {
    SCOPED_TRACE(near_bound ? "near the series bound" : "far from it");
    Config on = TestConfig(near_bound ? 6 : 2000);
    on.flows.tcp.enabled = true;
    on.flows.tcp.max_connections = 8;
    Config off = on;
    off.flows.tcp.enabled = false;
    FlowPipeline with(on, NoAddresses());
    FlowPipeline without(off, NoAddresses());
    for (FlowPipeline* p : {&with, &without}) {
      p->AddInterface("eth0", kRaw);
      p->AddInterface("tailscale0", kRaw);
    }
    std::mt19937 rng(near_bound ? 11 : 7);
    const auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    const std::vector<V4> hosts = {
        {100, 64, 0, 1}, {100, 64, 0, 2}, {10, 42, 1, 7}, {203, 0, 113, 5}};
    const std::vector<uint16_t> ports = {40000, 40001, 40002, 6443, 6379, 5432, 8001, 9999};
    const std::vector<uint8_t> flags = {tcp_flags::kSyn,
                                        tcp_flags::kSyn | tcp_flags::kAck,
                                        tcp_flags::kAck,
                                        tcp_flags::kAck | tcp_flags::kPsh,
                                        tcp_flags::kAck,
                                        tcp_flags::kAck | tcp_flags::kPsh,
                                        tcp_flags::kFin | tcp_flags::kAck,
                                        tcp_flags::kRst};
    for (int n = 0; n < 20000; ++n) {
      if (n == 10000) {
        for (auto [p, config] : {std::pair{&with, on}, std::pair{&without, off}}) {
          config.roles.insert(config.roles.begin(),
                              RoleSpec{"analytics", RoleProto::kTcp, {{8001, 8001}}});
          p->Reconfigure(config);
        }
      }
      const auto sport = ports[pick(ports.size())];
      const auto dport = ports[pick(ports.size())];
      const size_t payload = pick(3) == 0 ? 0 : pick(200);
      Bytes l4 = pick(8) == 0 ? Udp(sport, dport, payload)
                              : Tcp(sport, dport, flags[pick(flags.size())], 1 + pick(3));
      const uint8_t protocol = l4.size() == 8 ? 17 : 6;
      if (protocol == 17) Put16(l4, 4, static_cast<uint16_t>(8 + payload));
      const Bytes ip = pick(5) == 0
                           ? Ipv6Header(protocol, static_cast<uint8_t>(1 + pick(3)),
                                        static_cast<uint8_t>(1 + pick(3)), l4.size() + payload)
                           : Ipv4Header(protocol, hosts[pick(hosts.size())],
                                        hosts[pick(hosts.size())], l4.size() + payload);
      const Bytes packet = Cat({ip, l4, Zeros(payload)});
      const uint32_t iface = pick(4) == 0 ? 1 : 0;
      const int64_t ts = int64_t{n} * 1'000'000;
      for (FlowPipeline* p : {&with, &without}) {
        CapturedPacket captured;
        captured.timestamp_ns = ts;
        captured.data = packet.data();
        captured.captured_length = captured.wire_length = static_cast<uint32_t>(packet.size());
        p->OnPacket(iface, captured);
      }
      if (near_bound || pick(50) == 0) with.Flush();
    }
    with.Flush();
    auto m = Scrape(with);
    // The tracker's own families come on top; the rest must be equal.
    EXPECT_GT(m.at("meshflow_tcp_connection_table_evictions_total{reason=full}"), 1000);
    std::erase_if(m, [](const auto& kv) { return kv.first.starts_with("meshflow_tcp_"); });
    const auto expected = Scrape(without);
    EXPECT_EQ(m, expected);
    EXPECT_EQ(m.at("meshflow_flow_series_overflow_total{}") > 0, near_bound);
  }
}

TEST(FlowPipeline, ReconfigureKeepsCountersAndReclassifiesNewPackets) {
  FlowPipeline p(TestConfig(), NoAddresses());
  const uint32_t i = p.AddInterface("eth0", kRaw);
  const Bytes to_8001 = V4Tcp({100, 64, 0, 2}, {100, 64, 0, 1}, 40000, 8001, 0);
  const Bytes to_6443 = V4Tcp({100, 64, 0, 2}, {100, 64, 0, 1}, 40000, 6443, 0);
  Feed(p, i, to_8001);
  Feed(p, i, to_6443);

  Config next = TestConfig();
  next.roles.insert(next.roles.begin(), RoleSpec{"analytics", RoleProto::kTcp, {{8001, 8001}}});
  next.flows.capture.kinds.insert(next.flows.capture.kinds.begin(), {"^eth", "pod"});
  p.Reconfigure(next);
  Feed(p, i, to_8001);
  Feed(p, i, to_6443);

  const auto m = Scrape(p);
  const auto packets = [&](const char* role) {
    return m.at(FlowKey("meshflow_flow_packets_total", "eth0", role, "acer-agent", "ct-serv-jp"));
  };
  EXPECT_EQ(packets("other"), 1);      // before: kept
  EXPECT_EQ(packets("analytics"), 1);  // after: the new role
  EXPECT_EQ(packets("k8s-api"), 2);    // same labels before and after: one series goes on
  EXPECT_EQ(m.at("meshflow_capture_interface_info{iface=eth0,kind=pod}"), 1);
}

// Feeds the same k8s-api packet from src to dst on eth0 before and after change(); the scrape.
std::map<std::string, double> ScrapeAroundChange(FlowPipeline& p, V4 src, V4 dst,
                                                 const std::function<void()>& change) {
  const uint32_t i = p.AddInterface("eth0", kRaw);
  const Bytes pkt = V4Tcp(src, dst, 40000, 6443, 0);
  Feed(p, i, pkt);
  change();
  Feed(p, i, pkt);
  return Scrape(p);
}

// The packets of the k8s-api series on eth0 from src_node to dst_node (0 when there is none).
double K8sApiPackets(const std::map<std::string, double>& m, const char* src_node,
                     const char* dst_node) {
  const auto it =
      m.find(FlowKey("meshflow_flow_packets_total", "eth0", "k8s-api", src_node, dst_node));
  return it == m.end() ? 0 : it->second;
}

TEST(FlowPipeline, ReconfigureRemovingANodeKeepsItsSeriesExported) {
  FlowPipeline p(TestConfig(), NoAddresses());
  const auto m = ScrapeAroundChange(p, {100, 64, 0, 2}, {100, 64, 0, 1}, [&] {
    Config next = TestConfig();
    next.nodes.pop_back();  // acer-agent leaves the cluster
    p.Reconfigure(next);
  });
  EXPECT_EQ(K8sApiPackets(m, "acer-agent", "ct-serv-jp"), 1);  // before
  EXPECT_EQ(K8sApiPackets(m, "external", "ct-serv-jp"), 1);    // after
}

TEST(FlowPipeline, SelfAddressesMapToNodeNameAndRefresh) {
  std::vector<IpAddress> mine = {*IpAddress::Parse("192.168.20.221")};
  FlowPipeline p(TestConfig(), [&] { return mine; });
  const auto m = ScrapeAroundChange(p, {100, 64, 0, 2}, {192, 168, 20, 221}, [&] {
    mine.clear();
    p.RefreshLocalAddresses();
  });
  EXPECT_EQ(K8sApiPackets(m, "acer-agent", "ct-serv-jp"), 1);  // before
  EXPECT_EQ(K8sApiPackets(m, "acer-agent", "external"), 1);    // after
}

TEST(FlowPipeline, LaterFragmentsFollowTheFirstAndExpire) {
  FlowPipeline p(TestConfig(), NoAddresses());
  const uint32_t i = p.AddInterface("eth0", kRaw);
  const V4 src{10, 42, 1, 5}, dst{100, 64, 0, 1};
  const Bytes first =
      Cat({Ipv4Header(17, src, dst, 1480, {}, 0x2000, 7), Udp(40000, 53, 2000), Zeros(1472)});
  const Bytes second = Cat({Ipv4Header(17, src, dst, 528, {}, 185, 7), Zeros(528)});
  Feed(p, i, first, 1'000'000'000);
  Feed(p, i, second, 1'001'000'000);
  Feed(p, i, second, 40'000'000'000);  // 39 s later: the first fragment's entry expired
  const auto m = Scrape(p);
  EXPECT_EQ(m.at(FlowKey("meshflow_flow_bytes_total", "eth0", "dns", "acer-agent", "ct-serv-jp")),
            1500 + 548);
  EXPECT_EQ(m.at(FlowKey("meshflow_flow_bytes_total", "eth0", "other", "acer-agent", "ct-serv-jp")),
            548);
  EXPECT_EQ(m.at("meshflow_flow_fragments_unmatched_total{}"), 1);
}

TEST(FlowPipeline, FragmentFloodEvictsInsteadOfGrowing) {
  FlowPipeline p(TestConfig(), NoAddresses());
  const uint32_t i = p.AddInterface("eth0", kRaw);
  for (uint16_t id = 0; id < 5000; ++id) {
    Feed(p, i,
         Cat({Ipv4Header(17, {10, 42, 1, 5}, {100, 64, 0, 1}, 16, {}, 0x2000, id), Udp(1, 53, 8),
              Zeros(8)}),
         1'000'000'000 + id);
  }
  const auto m = Scrape(p);
  EXPECT_GE(m.at("meshflow_flow_fragment_table_evictions_total{}"),
            5000 - FragmentTable::kSets * FragmentTable::kWays);
}

TEST(FlowPipeline, EncapOverheadIsCountedApart) {
  FlowPipeline p(TestConfig(), NoAddresses());
  const uint32_t i = p.AddInterface("eth0", kRaw);
  const Bytes inner = V4Tcp({10, 42, 1, 5}, {100, 64, 0, 1}, 40000, 5432, 0, 60);
  const Bytes payload = Cat({Bytes{0x08, 0, 0, 0, 0, 0, 1, 0}, Ethernet(0x0800), inner});
  Feed(p, i,
       Cat({Ipv4Header(17, {1, 1, 1, 1}, {2, 2, 2, 2}, 8 + payload.size()),
            Udp(40000, 8472, payload.size()), payload}));
  const auto m = Scrape(p);
  EXPECT_EQ(m.at("meshflow_encap_overhead_bytes_total{iface=eth0,encap=vxlan}"), 50);
  EXPECT_EQ(
      m.at(FlowKey("meshflow_flow_bytes_total", "eth0", "postgresql", "acer-agent", "ct-serv-jp")),
      100);
}

TEST(FlowPipeline, ScrapesBesideTheCaptureThreadSeeConsistentGrowingCounters) {
  FlowPipeline p(TestConfig(/*max_series=*/50), NoAddresses());
  const uint32_t i = p.AddInterface("eth0", kRaw);
  constexpr int kPackets = 200000;
  std::atomic<bool> done{false};
  std::thread capture([&] {
    for (int n = 0; n < kPackets; ++n) {
      Feed(p, i,
           V4Tcp({100, 64, 0, 2}, {100, 64, 0, 1}, 40000, static_cast<uint16_t>(n % 97 + 1), 0));
    }
    done = true;
  });
  double last = 0;
  int scrapes = 0;
  while (!done || scrapes == 0) {
    double total = 0;
    for (const auto& [k, v] : Scrape(p)) {
      if (k.rfind("meshflow_flow_packets_total{", 0) == 0) total += v;
    }
    EXPECT_GE(total, last);  // counters never go backwards
    last = total;
    ++scrapes;
  }
  capture.join();
  double total = 0;
  for (const auto& [k, v] : Scrape(p)) {
    if (k.rfind("meshflow_flow_packets_total{", 0) == 0) total += v;
  }
  EXPECT_EQ(total, kPackets);
}

}  // namespace
}  // namespace meshflow::flow
