// The committed topologies: they parse, and they say what the users' clusters say.

#include <gtest/gtest.h>

#include <string>

#include "tests/testbed/emulator/topology.h"

namespace meshflow::testbed {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

Topology Load(const std::string& name) {
  return LoadTopologyFile(std::string(MESHFLOW_TOPOLOGY_DIR) + "/" + name);
}

// Round trip of a pair: the sum of both directions' delays.
nanoseconds Rtt(const Topology& t, const std::string& a, const std::string& b) {
  const auto ia = t.FindNode(a);
  const auto ib = t.FindNode(b);
  EXPECT_TRUE(ia && ib) << a << " " << b;
  const TopologyLink* l = t.FindLink(*ia, *ib);
  return l->a_to_b.delay + l->b_to_a.delay;
}

TEST(TopologyFilesTest, ReferenceHasTheFiveNodesAndTheMeasuredRtts) {
  const Topology t = Load("reference.yaml");
  ASSERT_EQ(t.nodes.size(), 5u);
  for (const char* n :
       {"ct-serv-jp", "gce-agent-tw", "acer-agent", "laptop-agent", "desktop-agent"})
    EXPECT_TRUE(t.FindNode(n)) << n;
  EXPECT_EQ(t.device, "ts0");
  // shared/reference-cluster.yaml, hybrid-tailscale rtt_ms.
  EXPECT_EQ(Rtt(t, "gce-agent-tw", "ct-serv-jp"), milliseconds(48));
  EXPECT_EQ(Rtt(t, "gce-agent-tw", "acer-agent"), milliseconds(6));
  EXPECT_EQ(Rtt(t, "ct-serv-jp", "acer-agent"), milliseconds(80));
  EXPECT_EQ(Rtt(t, "laptop-agent", "acer-agent"), milliseconds(1));
  EXPECT_EQ(Rtt(t, "laptop-agent", "desktop-agent"), milliseconds(1));
  EXPECT_EQ(Rtt(t, "acer-agent", "desktop-agent"), milliseconds(1));
  for (const auto& l : t.links) {
    EXPECT_EQ(l.a_to_b.delay, l.b_to_a.delay);  // split evenly
    EXPECT_EQ(l.a_to_b.loss, 0);
    EXPECT_EQ(l.a_to_b.jitter.count(), 0);
  }
}

TEST(TopologyFilesTest, ReferenceDerivedRttsAreConsistentWithTheHomeLan) {
  const Topology t = Load("reference.yaml");
  // A home node is within its LAN round trip of acer-agent, so its path to any outside node
  // differs from acer-agent's by at most that round trip.
  for (const char* home : {"laptop-agent", "desktop-agent"}) {
    for (const char* outside : {"ct-serv-jp", "gce-agent-tw"}) {
      const auto diff = Rtt(t, home, outside) - Rtt(t, "acer-agent", outside);
      EXPECT_LE(std::chrono::abs(diff), Rtt(t, home, "acer-agent")) << home << " " << outside;
    }
  }
}

TEST(TopologyFilesTest, ReferenceHomeLanHasFlannelVxlan) {
  const Topology t = Load("reference.yaml");
  ASSERT_EQ(t.lans.size(), 1u);
  ASSERT_TRUE(t.lans[0].vxlan);
  EXPECT_EQ(t.lans[0].vxlan->device, "flannel.1");
  EXPECT_EQ(t.lans[0].vxlan->port, 8472);
  int members = 0;
  for (const auto& n : t.nodes) members += n.lan.has_value();
  EXPECT_EQ(members, 3);
}

TEST(TopologyFilesTest, WanIsTheWireguardLinkWith250msAnd12PercentLoss) {
  const Topology t = Load("wan.yaml");
  ASSERT_EQ(t.nodes.size(), 2u);
  EXPECT_EQ(t.device, "wg0");
  EXPECT_EQ(Rtt(t, "cloud-cp", "home-worker"), milliseconds(250));
  EXPECT_DOUBLE_EQ(t.links[0].a_to_b.loss, 0.12);
  EXPECT_DOUBLE_EQ(t.links[0].b_to_a.loss, 0.12);
}

TEST(TopologyFilesTest, AccuracyTopologyParses) {
  const Topology t = Load("accuracy.yaml");
  EXPECT_EQ(Rtt(t, "d300a", "d300b"), milliseconds(300));
}

}  // namespace
}  // namespace meshflow::testbed
