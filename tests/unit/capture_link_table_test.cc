#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "collectors/flow/capture/link_table.h"

namespace meshflow::flow {
namespace {

using std::chrono::seconds;
using Type = LinkEvent::Type;

CaptureConfig TestCapture() {
  CaptureConfig c;
  c.include = {"^mfcap-", "^eth"};
  c.exclude = {"^mfcap-skip"};
  return c;
}

LinkEvent New(const std::string& name, int index, bool up = true) {
  return {Type::kNew, false, {name, index, up}};
}
LinkEvent Del(const std::string& name, int index) {
  return {Type::kDel, false, {name, index, false}};
}

std::vector<std::string> Names(const std::vector<LinkState>& links) {
  std::vector<std::string> out;
  for (const auto& l : links) out.push_back(l.name);
  return out;
}

class LinkTableTest : public ::testing::Test {
 protected:
  InterfaceSelector selector_{TestCapture()};
  LinkTable table_{seconds(2)};
  std::chrono::nanoseconds now_ = seconds(100);
};

TEST_F(LinkTableTest, OpensSelectedUpInterfacesOnly) {
  table_.Apply(New("mfcap-a", 5));
  table_.Apply(New("mfcap-b", 6, /*up=*/false));
  table_.Apply(New("mfcap-skip0", 7));
  table_.Apply(New("lo", 1));
  const LinkPlan plan = table_.Plan(selector_, {}, now_);
  EXPECT_EQ(Names(plan.open), std::vector<std::string>{"mfcap-a"});
  EXPECT_TRUE(plan.close.empty());
}

TEST_F(LinkTableTest, NothingToDoWhenAllOpen) {
  table_.Apply(New("mfcap-a", 5));
  const LinkPlan plan = table_.Plan(selector_, {{"mfcap-a", 5}}, now_);
  EXPECT_TRUE(plan.open.empty());
  EXPECT_TRUE(plan.close.empty());
}

TEST_F(LinkTableTest, DeletedInterfaceIsClosedAndRecreatedOneReopened) {
  table_.Apply(New("mfcap-a", 5));
  table_.Apply(Del("mfcap-a", 5));
  LinkPlan plan = table_.Plan(selector_, {{"mfcap-a", 5}}, now_);
  EXPECT_EQ(plan.close, std::vector<std::string>{"mfcap-a"});
  EXPECT_TRUE(plan.open.empty());

  table_.Apply(New("mfcap-a", 9));
  plan = table_.Plan(selector_, {}, now_);
  ASSERT_EQ(plan.open.size(), 1u);
  EXPECT_EQ(plan.open[0].index, 9);
}

TEST_F(LinkTableTest, RecreatedWithoutSeeingTheDeleteReopensOnNewIndex) {
  // The delete event was lost (socket overrun); the new ifindex alone tells the story.
  table_.Apply(New("mfcap-a", 9));
  const LinkPlan plan = table_.Plan(selector_, {{"mfcap-a", 5}}, now_);
  EXPECT_EQ(plan.close, std::vector<std::string>{"mfcap-a"});
  ASSERT_EQ(plan.open.size(), 1u);
  EXPECT_EQ(plan.open[0].index, 9);
}

TEST_F(LinkTableTest, InterfaceGoingDownIsClosedAndReopenedWhenUp) {
  table_.Apply(New("mfcap-a", 5));
  table_.Apply(New("mfcap-a", 5, /*up=*/false));
  EXPECT_EQ(table_.Plan(selector_, {{"mfcap-a", 5}}, now_).close,
            std::vector<std::string>{"mfcap-a"});
  table_.Apply(New("mfcap-a", 5, /*up=*/true));
  EXPECT_EQ(Names(table_.Plan(selector_, {}, now_).open), std::vector<std::string>{"mfcap-a"});
}

TEST_F(LinkTableTest, DeleteOfAnOlderIndexKeepsTheNewLink) {
  table_.Apply(New("mfcap-a", 9));
  table_.Apply(Del("mfcap-a", 5));  // late news about the previous incarnation
  EXPECT_EQ(Names(table_.Plan(selector_, {}, now_).open), std::vector<std::string>{"mfcap-a"});
}

TEST_F(LinkTableTest, RenameDropsTheOldName) {
  table_.Apply(New("eth0", 3));
  table_.Apply(New("mfcap-x", 3));
  const LinkPlan plan = table_.Plan(selector_, {{"eth0", 3}}, now_);
  EXPECT_EQ(plan.close, std::vector<std::string>{"eth0"});
  EXPECT_EQ(Names(plan.open), std::vector<std::string>{"mfcap-x"});
}

TEST_F(LinkTableTest, DeselectedByNewPatternsIsClosed) {
  table_.Apply(New("eth0", 3));
  CaptureConfig c = TestCapture();
  c.include = {"^mfcap-"};
  const InterfaceSelector narrower{c};
  EXPECT_EQ(table_.Plan(narrower, {{"eth0", 3}}, now_).close, std::vector<std::string>{"eth0"});
}

TEST_F(LinkTableTest, FailedOpenIsRetriedAfterTheInterval) {
  table_.Apply(New("mfcap-a", 5));
  table_.OpenFailed("mfcap-a", now_);
  EXPECT_TRUE(table_.Plan(selector_, {}, now_ + seconds(1)).open.empty());
  EXPECT_EQ(table_.Plan(selector_, {}, now_ + seconds(2)).open.size(), 1u);
}

TEST_F(LinkTableTest, ReappearingInterfaceIsRetriedAtOnce) {
  table_.Apply(New("mfcap-a", 5));
  table_.OpenFailed("mfcap-a", now_);
  table_.Apply(Del("mfcap-a", 5));
  table_.Apply(New("mfcap-a", 6));
  EXPECT_EQ(table_.Plan(selector_, {}, now_).open.size(), 1u);
}

TEST_F(LinkTableTest, DumpReplacesEverything) {
  table_.Apply(New("mfcap-a", 5));
  table_.Apply(New("mfcap-b", 6));
  table_.ReplaceAll({{"mfcap-b", 6, true}, {"mfcap-c", 8, true}});
  const LinkPlan plan = table_.Plan(selector_, {{"mfcap-a", 5}, {"mfcap-b", 6}}, now_);
  EXPECT_EQ(plan.close, std::vector<std::string>{"mfcap-a"});
  EXPECT_EQ(Names(plan.open), std::vector<std::string>{"mfcap-c"});
}

// Builds one rtnetlink link message as the kernel sends it.
std::vector<uint8_t> LinkMessage(uint16_t type, uint16_t flags, int index, unsigned ifi_flags,
                                 const std::string& name) {
  const size_t attr_len = RTA_LENGTH(name.size() + 1);
  const size_t len = NLMSG_LENGTH(sizeof(ifinfomsg)) + RTA_ALIGN(attr_len);
  std::vector<uint8_t> buf(NLMSG_ALIGN(len));
  nlmsghdr hdr{};
  hdr.nlmsg_len = static_cast<uint32_t>(len);
  hdr.nlmsg_type = type;
  hdr.nlmsg_flags = flags;
  std::memcpy(buf.data(), &hdr, sizeof hdr);
  ifinfomsg info{};
  info.ifi_index = index;
  info.ifi_flags = ifi_flags;
  std::memcpy(buf.data() + NLMSG_HDRLEN, &info, sizeof info);
  rtattr attr{};
  attr.rta_len = static_cast<unsigned short>(attr_len);
  attr.rta_type = IFLA_IFNAME;
  const size_t attr_off = NLMSG_LENGTH(sizeof(ifinfomsg));
  std::memcpy(buf.data() + attr_off, &attr, sizeof attr);
  std::memcpy(buf.data() + attr_off + RTA_LENGTH(0), name.c_str(), name.size() + 1);
  return buf;
}

TEST(ParseLinkMessages, NewAndDelEvents) {
  auto buf = LinkMessage(RTM_NEWLINK, 0, 4, IFF_UP, "mfcap-a");
  const auto del = LinkMessage(RTM_DELLINK, 0, 5, 0, "mfcap-b");
  buf.insert(buf.end(), del.begin(), del.end());
  const ParsedLinkMessages parsed = ParseLinkMessages(buf.data(), buf.size());
  ASSERT_EQ(parsed.events.size(), 2u);
  EXPECT_EQ(parsed.events[0].type, Type::kNew);
  EXPECT_EQ(parsed.events[0].link.name, "mfcap-a");
  EXPECT_EQ(parsed.events[0].link.index, 4);
  EXPECT_TRUE(parsed.events[0].link.up);
  EXPECT_FALSE(parsed.events[0].from_dump);
  EXPECT_EQ(parsed.events[1].type, Type::kDel);
  EXPECT_EQ(parsed.events[1].link.name, "mfcap-b");
  EXPECT_FALSE(parsed.events[1].link.up);
  EXPECT_FALSE(parsed.dump_done);
  EXPECT_EQ(parsed.malformed, 0u);
}

TEST(ParseLinkMessages, DumpEntriesAndDone) {
  auto buf = LinkMessage(RTM_NEWLINK, NLM_F_MULTI, 4, IFF_UP, "eth0");
  nlmsghdr done{};
  done.nlmsg_len = NLMSG_LENGTH(sizeof(int));
  done.nlmsg_type = NLMSG_DONE;
  done.nlmsg_flags = NLM_F_MULTI;
  std::vector<uint8_t> tail(done.nlmsg_len);
  std::memcpy(tail.data(), &done, sizeof done);
  buf.insert(buf.end(), tail.begin(), tail.end());
  const ParsedLinkMessages parsed = ParseLinkMessages(buf.data(), buf.size());
  ASSERT_EQ(parsed.events.size(), 1u);
  EXPECT_TRUE(parsed.events[0].from_dump);
  EXPECT_TRUE(parsed.dump_done);
}

TEST(ParseLinkMessages, TruncatedInputIsCountedNotRead) {
  const auto buf = LinkMessage(RTM_NEWLINK, 0, 4, IFF_UP, "mfcap-a");
  for (size_t cut = 0; cut < buf.size(); ++cut) {
    const std::vector<uint8_t> part(buf.begin(), buf.begin() + static_cast<long>(cut));
    const ParsedLinkMessages parsed = ParseLinkMessages(part.data(), part.size());
    EXPECT_TRUE(parsed.events.empty()) << cut;
  }
}

TEST(ParseLinkMessages, AttributeLongerThanMessageIsMalformed) {
  auto buf = LinkMessage(RTM_NEWLINK, 0, 4, IFF_UP, "mfcap-a");
  rtattr attr{};
  attr.rta_len = 200;
  attr.rta_type = IFLA_IFNAME;
  std::memcpy(buf.data() + NLMSG_LENGTH(sizeof(ifinfomsg)), &attr, sizeof attr);
  const ParsedLinkMessages parsed = ParseLinkMessages(buf.data(), buf.size());
  EXPECT_TRUE(parsed.events.empty());
  EXPECT_EQ(parsed.malformed, 1u);
}

TEST(ParseLinkMessages, NameWithoutTerminatorStopsAtTheAttribute) {
  auto buf = LinkMessage(RTM_NEWLINK, 0, 4, IFF_UP, "abcd");
  // Overwrite the terminating NUL: the name must still end at the attribute's end.
  buf[NLMSG_LENGTH(sizeof(ifinfomsg)) + RTA_LENGTH(0) + 4] = 'e';
  const ParsedLinkMessages parsed = ParseLinkMessages(buf.data(), buf.size());
  ASSERT_EQ(parsed.events.size(), 1u);
  EXPECT_EQ(parsed.events[0].link.name, "abcde");
}

TEST(ParseLinkMessages, AddressMessagesFlagAChange) {
  nlmsghdr hdr{};
  hdr.nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  hdr.nlmsg_type = RTM_NEWADDR;
  std::vector<uint8_t> buf(hdr.nlmsg_len);
  std::memcpy(buf.data(), &hdr, sizeof hdr);
  const ParsedLinkMessages parsed = ParseLinkMessages(buf.data(), buf.size());
  EXPECT_TRUE(parsed.addresses_changed);
  EXPECT_TRUE(parsed.events.empty());
  EXPECT_FALSE(ParseLinkMessages(buf.data(), 0).addresses_changed);
}

}  // namespace
}  // namespace meshflow::flow
