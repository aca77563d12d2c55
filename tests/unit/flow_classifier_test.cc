#include <gtest/gtest.h>

#include "collectors/flow/classifier.h"

namespace meshflow::flow {
namespace {

Config TestConfig() {
  Config config = ParseConfig(R"(
node_name: ct-serv-jp
nodes:
  - name: ct-serv-jp
    addresses: [100.64.0.1, "fd7a:115c:a1e0::1", 10.42.0.0/24]
  - name: acer-agent
    addresses: [100.64.0.2, 10.42.0.0/16]
roles:
  - {name: analytics-api, proto: tcp, ports: ["8000", "30000-30010"]}
  - {name: redis-any, proto: any, ports: ["6380"]}
)",
                              "test.yaml", "ignored");
  return config;
}

PacketInfo Ports(uint8_t protocol, uint16_t src_port, uint16_t dst_port) {
  PacketInfo p;
  p.l4_protocol = protocol;
  p.has_ports = true;
  p.src_port = src_port;
  p.dst_port = dst_port;
  return p;
}

TEST(FlowClassifier, DestinationPortDecidesFirstThenSource) {
  Classifier c(TestConfig(), {});
  EXPECT_EQ(c.RoleName(c.Role(Ports(6, 41000, 6443))), "k8s-api");
  EXPECT_EQ(c.RoleName(c.Role(Ports(6, 6443, 41000))), "k8s-api");
  // Both ports known: the destination wins (a redis client connecting from port 5432).
  EXPECT_EQ(c.RoleName(c.Role(Ports(6, 5432, 6379))), "redis");
  EXPECT_EQ(c.RoleName(c.Role(Ports(6, 50000, 50001))), "other");
}

TEST(FlowClassifier, ProtocolMattersAndAnyMeansBoth) {
  Classifier c(TestConfig(), {});
  EXPECT_EQ(c.RoleName(c.Role(Ports(17, 1, 6443))), "other");
  EXPECT_EQ(c.RoleName(c.Role(Ports(17, 1, 8472))), "flannel-vxlan");
  EXPECT_EQ(c.RoleName(c.Role(Ports(6, 1, 8472))), "other");
  EXPECT_EQ(c.RoleName(c.Role(Ports(17, 1, 53))), "dns");
  EXPECT_EQ(c.RoleName(c.Role(Ports(6, 1, 53))), "dns");
  EXPECT_EQ(c.RoleName(c.Role(Ports(17, 1, 6380))), "redis-any");
  EXPECT_EQ(c.RoleName(c.Role(Ports(132, 1, 6443))), "other");  // SCTP: no role table
}

TEST(FlowClassifier, UserRolesComeFirstAndRangesWork) {
  Classifier c(TestConfig(), {});
  // The built-in cli-relay also claims 8000; the user's role is listed first and wins.
  EXPECT_EQ(c.RoleName(c.Role(Ports(6, 1, 8000))), "analytics-api");
  EXPECT_EQ(c.RoleName(c.Role(Ports(6, 1, 30000))), "analytics-api");
  EXPECT_EQ(c.RoleName(c.Role(Ports(6, 1, 30010))), "analytics-api");
  EXPECT_EQ(c.RoleName(c.Role(Ports(6, 1, 30011))), "other");
}

TEST(FlowClassifier, IcmpAndPortlessPackets) {
  Classifier c(TestConfig(), {});
  PacketInfo icmp;
  icmp.l4_protocol = 1;
  EXPECT_EQ(c.Role(icmp), Classifier::kIcmp);
  icmp.l4_protocol = 58;
  EXPECT_EQ(c.RoleName(c.Role(icmp)), "icmp");
  PacketInfo esp;
  esp.l4_protocol = 50;
  EXPECT_EQ(c.RoleName(c.Role(esp)), "other");
}

TEST(FlowClassifier, NodesByLongestPrefixSelfAddressesAndExternal) {
  const auto self = *IpAddress::Parse("192.168.20.221");
  Classifier c(TestConfig(), {self});
  auto node = [&](const char* a) { return c.NodeName(c.Node(*IpAddress::Parse(a))); };
  EXPECT_EQ(node("100.64.0.1"), "ct-serv-jp");
  EXPECT_EQ(node("fd7a:115c:a1e0::1"), "ct-serv-jp");
  EXPECT_EQ(node("10.42.0.9"), "ct-serv-jp");  // /24 beats acer's /16
  EXPECT_EQ(node("10.42.7.9"), "acer-agent");
  EXPECT_EQ(node("192.168.20.221"), "ct-serv-jp");  // an interface address of this node
  EXPECT_EQ(node("8.8.8.8"), "external");
  EXPECT_EQ(node("::ffff:100.64.0.2"), "acer-agent");
}

TEST(FlowClassifier, CacheNeverReturnsAnotherAddressesNode) {
  Classifier c(TestConfig(), {});
  // Far more addresses than cache entries, visited twice: every answer must stay right.
  for (int round = 0; round < 2; ++round) {
    for (uint32_t i = 0; i < 20000; ++i) {
      const auto in_pods = IpAddress::FromV4((10u << 24) | (42u << 16) | i);
      const auto outside = IpAddress::FromV4((11u << 24) | i);
      const std::string want = (i >> 8) == 0 ? "ct-serv-jp" : "acer-agent";
      ASSERT_EQ(c.NodeName(c.Node(in_pods)), want) << i;
      ASSERT_EQ(c.NodeName(c.Node(outside)), "external");
    }
  }
}

TEST(FlowClassifier, FindsIdsByName) {
  Classifier c(TestConfig(), {});
  ASSERT_TRUE(c.FindRole("redis").has_value());
  EXPECT_EQ(c.RoleName(*c.FindRole("redis")), "redis");
  EXPECT_FALSE(c.FindRole("nope").has_value());
  EXPECT_EQ(c.FindNode("external"), NodeTable::kExternal);
  EXPECT_EQ(c.NodeName(*c.FindNode("acer-agent")), "acer-agent");
  EXPECT_FALSE(c.FindNode("gone").has_value());
}

TEST(FlowClassifier, InterfaceAddressesIncludeLoopback) {
  const auto all = InterfaceAddresses();
  EXPECT_NE(std::find(all.begin(), all.end(), *IpAddress::Parse("127.0.0.1")), all.end());
}

}  // namespace
}  // namespace meshflow::flow
