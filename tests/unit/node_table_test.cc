#include "common/core/node_table.h"

#include <gtest/gtest.h>

namespace meshflow {
namespace {

NodeTable ReferenceTable() {
  return NodeTable(
      {
          {"ct-serv-jp",
           {*IpPrefix::Parse("100.64.0.1/32"), *IpPrefix::Parse("fd7a:115c:a1e0::1")}},
          {"home-lan", {*IpPrefix::Parse("192.168.20.0/24")}},
          {"polynode-1", {*IpPrefix::Parse("192.168.20.221/32")}},
      },
      "acer-agent", {*IpAddress::Parse("100.64.0.3")});
}

TEST(NodeTable, LongestPrefixWins) {
  const auto t = ReferenceTable();
  EXPECT_EQ(t.Name(t.Lookup(*IpAddress::Parse("192.168.20.221"))), "polynode-1");
  EXPECT_EQ(t.Name(t.Lookup(*IpAddress::Parse("192.168.20.7"))), "home-lan");
}

TEST(NodeTable, OwnAddressesMapToSelf) {
  const auto t = ReferenceTable();
  EXPECT_EQ(t.Name(t.Lookup(*IpAddress::Parse("100.64.0.3"))), "acer-agent");
  EXPECT_EQ(t.Lookup(*IpAddress::Parse("100.64.0.3")), t.self());
}

TEST(NodeTable, UnknownIsExternal) {
  const auto t = ReferenceTable();
  EXPECT_EQ(t.Lookup(*IpAddress::Parse("8.8.8.8")), NodeTable::kExternal);
  EXPECT_EQ(t.Name(NodeTable::kExternal), "external");
  EXPECT_EQ(t.Name(t.Lookup(*IpAddress::Parse("fd7a:115c:a1e0::1"))), "ct-serv-jp");
}

TEST(NodeTable, SelfListedInNodesKeepsOneId) {
  NodeTable t({{"a", {*IpPrefix::Parse("10.0.0.1")}}, {"b", {*IpPrefix::Parse("10.0.0.2")}}}, "b",
              {});
  EXPECT_EQ(t.size(), 3u);  // external, a, b
  EXPECT_EQ(t.self(), t.Find("b"));
}

}  // namespace
}  // namespace meshflow
