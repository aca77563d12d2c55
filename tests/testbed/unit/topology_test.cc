#include "tests/testbed/emulator/topology.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/core/config_reader.h"

namespace meshflow::testbed {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

constexpr const char* kTopology = R"(name: small
seed: 9
defaults: {rtt: 2ms}
nodes:
  - {name: a, ipv4: 100.64.0.1, ipv6: "fd7a:115c:a1e0::1"}
  - {name: b, ipv4: 100.64.0.2, ipv6: "fd7a:115c:a1e0::2",
     lan: {segment: home, address: 192.168.50.2, vxlan_address: 10.42.2.0}}
  - {name: c, ipv4: 100.64.0.3, ipv6: "fd7a:115c:a1e0::3",
     lan: {segment: home, address: 192.168.50.3, vxlan_address: 10.42.3.0}}
lans:
  - name: home
    prefix: 192.168.50.0/24
    vxlan: {prefix: 10.42.0.0/16}
links:
  - between: [a, b]
    rtt: 80ms
    loss: 1%
  - between: [c, a]
    delay: 10ms
    reverse: {delay: 30ms, loss: 12%, rate: 10mbit}
)";

std::string ParseError(const std::string& text) {
  try {
    ParseTopology(text, "t.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(TopologyTest, ParsesNodesLansAndLinks) {
  const Topology t = ParseTopology(kTopology, "t.yaml");
  EXPECT_EQ(t.name, "small");
  EXPECT_EQ(t.seed, 9u);
  EXPECT_EQ(t.device, "ts0");
  EXPECT_EQ(t.mtu, 1280);
  ASSERT_EQ(t.nodes.size(), 3u);
  EXPECT_EQ(t.nodes[1].ipv4.ToString(), "100.64.0.2");
  EXPECT_EQ(t.nodes[1].ipv6.ToString(), "fd7a:115c:a1e0::2");
  EXPECT_FALSE(t.nodes[0].lan);
  ASSERT_TRUE(t.nodes[2].lan);
  EXPECT_EQ(t.nodes[2].lan->address.ToString(), "192.168.50.3/24");
  EXPECT_EQ(t.nodes[2].lan->vxlan_address->ToString(), "10.42.3.0/16");
  ASSERT_EQ(t.lans.size(), 1u);
  EXPECT_EQ(t.lans[0].vxlan->device, "flannel.1");
  EXPECT_EQ(t.lans[0].vxlan->port, 8472);
  EXPECT_EQ(t.links.size(), 3u);  // every pair
}

TEST(TopologyTest, RttIsSplitAcrossDirectionsAndOverridesApplyPerDirection) {
  const Topology t = ParseTopology(kTopology, "t.yaml");
  const TopologyLink* ab = t.FindLink(0, 1);
  ASSERT_NE(ab, nullptr);
  EXPECT_EQ(ab->a_to_b.delay, milliseconds(40));
  EXPECT_EQ(ab->b_to_a.delay, milliseconds(40));
  EXPECT_DOUBLE_EQ(ab->a_to_b.loss, 0.01);
  // Listed as [c, a]: forward is c -> a, reverse is a -> c.
  const TopologyLink* ac = t.FindLink(2, 0);
  ASSERT_NE(ac, nullptr);
  const LinkParams& a_to_c = ac->a == 0 ? ac->a_to_b : ac->b_to_a;
  const LinkParams& c_to_a = ac->a == 0 ? ac->b_to_a : ac->a_to_b;
  EXPECT_EQ(c_to_a.delay, milliseconds(10));
  EXPECT_EQ(a_to_c.delay, milliseconds(30));
  EXPECT_DOUBLE_EQ(a_to_c.loss, 0.12);
  EXPECT_EQ(a_to_c.rate_bps, 10'000'000);
  EXPECT_EQ(c_to_a.rate_bps, 0);
  // Not listed: the defaults.
  const TopologyLink* bc = t.FindLink(1, 2);
  EXPECT_EQ(bc->a_to_b.delay, milliseconds(1));
}

TEST(TopologyTest, ErrorsNameFileLineAndField) {
  std::string text = kTopology;
  text.replace(text.find("100.64.0.2"), 10, "10.0.0.2");
  const std::string err = ParseError(text);
  EXPECT_THAT(err, HasSubstr("t.yaml:6:"));
  EXPECT_THAT(err, HasSubstr("nodes[1].ipv4"));
  EXPECT_THAT(err, HasSubstr("100.64.0.0/10"));
}

TEST(TopologyTest, RejectsBadInput) {
  std::string t = kTopology;
  EXPECT_THAT(ParseError(std::string(kTopology).replace(t.find("[a, b]"), 6, "[a, x]")),
              HasSubstr("the name of a node"));
  EXPECT_THAT(ParseError(std::string(kTopology).replace(t.find("[a, b]"), 6, "[a, a]")),
              HasSubstr("two different nodes"));
  EXPECT_THAT(ParseError(std::string(kTopology).replace(t.find("loss: 1%"), 8, "loss: 2x")),
              HasSubstr("a loss such as"));
  EXPECT_THAT(ParseError(std::string(kTopology).replace(t.find("rtt: 80ms"), 9, "rtt: fast")),
              HasSubstr("a duration"));
  EXPECT_THAT(ParseError(std::string(kTopology).replace(t.find("name: c"), 7, "name: a")),
              HasSubstr("a node name not used before"));
  EXPECT_THAT(ParseError(std::string(kTopology).replace(
                  t.find("segment: home, address: 192.168.50.3"), 13, "segment: away")),
              HasSubstr("the name of a segment"));
  EXPECT_THAT(ParseError(std::string(kTopology).replace(t.find("rtt: 80ms"), 9, "colour: red")),
              HasSubstr("colour"));
  EXPECT_THAT(ParseError("nodes: [{name: a, ipv4: 100.64.0.1, ipv6: 'fd7a:115c:a1e0::1'}]"),
              HasSubstr("at least two nodes"));
  EXPECT_THAT(ParseError("nodes: [{name: A_b, ipv4: 100.64.0.1, ipv6: 'fd7a:115c:a1e0::1'}]"),
              HasSubstr("lower-case"));
  EXPECT_THAT(ParseError("nodes: {"), HasSubstr("t.yaml"));
}

}  // namespace
}  // namespace meshflow::testbed

namespace meshflow::testbed {
namespace {

TEST(TopologyUnderlayTest, DefaultsAndAddressesInListingOrder) {
  const Topology t = ParseTopology(kTopology, "t.yaml");
  EXPECT_EQ(t.underlay.ipv4.ToString(), "198.18.0.0/24");
  EXPECT_EQ(t.underlay.device, "eth1");
  EXPECT_EQ(t.underlay.mtu, 1500);
  EXPECT_EQ(t.nodes[0].underlay_ipv4.ToString(), "198.18.0.1");
  EXPECT_EQ(t.nodes[2].underlay_ipv4.ToString(), "198.18.0.3");
}

TEST(TopologyUnderlayTest, ExplicitValuesAndLocatedErrors) {
  const std::string base = kTopology;
  const Topology t =
      ParseTopology(base + "underlay: {ipv4: 10.9.0.0/29, device: ens5, mtu: 1492}\n", "t.yaml");
  EXPECT_EQ(t.nodes[1].underlay_ipv4.ToString(), "10.9.0.2");
  EXPECT_EQ(t.underlay.device, "ens5");
  EXPECT_EQ(t.underlay.mtu, 1492);
  EXPECT_EQ(t.links[0].a_to_b.mtu, 0);
  EXPECT_THAT(ParseError(base + "underlay: {ipv4: 10.9.0.0/31}\n"), HasSubstr("t.yaml:21:"));
  EXPECT_THAT(ParseError(base + "underlay: {ipv4: 10.9.0.0/31}\n"),
              HasSubstr("field underlay.ipv4"));
  EXPECT_THAT(ParseError(base + "underlay: {ipv4: 10.9.0.0/30}\n"),
              HasSubstr("a host address for every node"));
  EXPECT_THAT(ParseError(base + "underlay: {mtu: 100}\n"), HasSubstr("underlay.mtu"));
  EXPECT_THAT(ParseError(base + "underlay: {ipv4: 100.64.0.0/24}\n"),
              HasSubstr("no overlay or LAN address inside the underlay prefix"));
  EXPECT_THAT(ParseError(base + "underlay: {speed: 1}\n"), HasSubstr("underlay.speed"));
}

}  // namespace
}  // namespace meshflow::testbed
