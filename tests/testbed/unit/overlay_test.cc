#include "tests/testbed/emulator/overlay.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/core/clock.h"
#include "tests/testbed/emulator/control.h"

namespace meshflow::testbed {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

constexpr const char* kTopology = R"(seed: 5
defaults: {rtt: 2ms}
nodes:
  - {name: a, ipv4: 100.64.0.1, ipv6: "fd7a:115c:a1e0::1"}
  - {name: b, ipv4: 100.64.0.2, ipv6: "fd7a:115c:a1e0::2"}
  - {name: c, ipv4: 100.64.0.3, ipv6: "fd7a:115c:a1e0::3"}
links:
  - {between: [a, b], rtt: 48ms}
)";

std::vector<uint8_t> V4Packet(const char* src, const char* dst) {
  std::vector<uint8_t> p(28, 0);
  p[0] = 0x45;
  const auto s = IpAddress::Parse(src)->bytes();
  const auto d = IpAddress::Parse(dst)->bytes();
  std::copy(s.begin() + 12, s.end(), p.begin() + 12);
  std::copy(d.begin() + 12, d.end(), p.begin() + 16);
  return p;
}

std::vector<uint8_t> V6Packet(const char* src, const char* dst) {
  std::vector<uint8_t> p(48, 0);
  p[0] = 0x60;
  const auto s = IpAddress::Parse(src)->bytes();
  const auto d = IpAddress::Parse(dst)->bytes();
  std::copy(s.begin(), s.end(), p.begin() + 8);
  std::copy(d.begin(), d.end(), p.begin() + 24);
  return p;
}

class OverlayTest : public ::testing::Test {
 protected:
  OverlayTest() : overlay_(ParseTopology(kTopology, "t.yaml")) {}
  RouteDecision Send(size_t from, const std::vector<uint8_t>& p) {
    return overlay_.Route(from, p.data(), p.size(), clock_.Monotonic());
  }
  ControlReply Ctl(std::vector<std::string> argv) { return ExecuteCommand(overlay_, argv); }

  FakeClock clock_;
  Overlay overlay_;
};

TEST_F(OverlayTest, RoutesByDestinationAddressWithThePairsDelay) {
  const auto d = Send(0, V4Packet("100.64.0.1", "100.64.0.2"));
  ASSERT_TRUE(d.delivered());
  EXPECT_EQ(d.to_node, 1u);
  EXPECT_EQ(d.release, clock_.Monotonic() + milliseconds(24));
  const auto d6 = Send(2, V6Packet("fd7a:115c:a1e0::3", "fd7a:115c:a1e0::1"));
  ASSERT_TRUE(d6.delivered());
  EXPECT_EQ(d6.to_node, 0u);
  EXPECT_EQ(d6.release, clock_.Monotonic() + milliseconds(1));
}

TEST_F(OverlayTest, CountsMalformedAndUnroutablePacketsByReason) {
  EXPECT_EQ(Send(0, {}).route_drop, RouteDrop::kMalformed);
  EXPECT_EQ(Send(0, {0x45, 0, 0}).route_drop, RouteDrop::kMalformed);
  EXPECT_EQ(Send(0, std::vector<uint8_t>(30, 0x60)).route_drop, RouteDrop::kMalformed);
  EXPECT_EQ(Send(0, std::vector<uint8_t>(60, 0x20)).route_drop, RouteDrop::kMalformed);
  EXPECT_EQ(Send(0, V6Packet("fd7a:115c:a1e0::1", "ff02::16")).route_drop, RouteDrop::kNoRoute);
  EXPECT_EQ(Send(0, V4Packet("100.64.0.1", "100.64.0.1")).route_drop, RouteDrop::kToSelf);
  EXPECT_EQ(overlay_.malformed(MalformedReason::kEmpty), 1u);
  EXPECT_EQ(overlay_.malformed(MalformedReason::kTruncatedV4), 1u);
  EXPECT_EQ(overlay_.malformed(MalformedReason::kTruncatedV6), 1u);
  EXPECT_EQ(overlay_.malformed(MalformedReason::kUnknownVersion), 1u);
  EXPECT_EQ(overlay_.route_drops(RouteDrop::kNoRoute), 1u);
  const std::string state = FormatState(overlay_);
  EXPECT_THAT(state, HasSubstr("overlay malformed_truncated_ipv4=1"));
  EXPECT_THAT(state, HasSubstr("overlay dropped_no_route=1"));
}

TEST_F(OverlayTest, CutAndRestoreBothDirectionsOrOneWay) {
  const auto ab = V4Packet("100.64.0.1", "100.64.0.2");
  const auto ba = V4Packet("100.64.0.2", "100.64.0.1");
  ASSERT_TRUE(Ctl({"cut", "a", "b"}).ok);
  EXPECT_EQ(Send(0, ab).link_drop, DropReason::kLinkDown);
  EXPECT_EQ(Send(1, ba).link_drop, DropReason::kLinkDown);
  EXPECT_TRUE(Send(0, V4Packet("100.64.0.1", "100.64.0.3")).delivered());
  ASSERT_TRUE(Ctl({"restore", "b", "a"}).ok);
  EXPECT_TRUE(Send(0, ab).delivered());
  ASSERT_TRUE(Ctl({"cut", "a", "b", "--one-way"}).ok);
  EXPECT_EQ(Send(0, ab).link_drop, DropReason::kLinkDown);
  EXPECT_TRUE(Send(1, ba).delivered());
  EXPECT_THAT(FormatState(overlay_), HasSubstr("link a b state=cut"));
  EXPECT_THAT(FormatState(overlay_), HasSubstr("link b a state=up"));
}

TEST_F(OverlayTest, NodeDownDropsEverythingToAndFromIt) {
  ASSERT_TRUE(Ctl({"down", "b"}).ok);
  EXPECT_EQ(Send(0, V4Packet("100.64.0.1", "100.64.0.2")).link_drop, DropReason::kNodeDown);
  EXPECT_EQ(Send(1, V4Packet("100.64.0.2", "100.64.0.3")).link_drop, DropReason::kNodeDown);
  EXPECT_TRUE(Send(0, V4Packet("100.64.0.1", "100.64.0.3")).delivered());
  EXPECT_THAT(FormatState(overlay_),
              HasSubstr("node b ipv4=100.64.0.2 ipv6=fd7a:115c:a1e0::2 state=down"));
  ASSERT_TRUE(Ctl({"up", "b"}).ok);
  EXPECT_TRUE(Send(0, V4Packet("100.64.0.1", "100.64.0.2")).delivered());
}

TEST_F(OverlayTest, SetChangesOnlyTheGivenFields) {
  ASSERT_TRUE(Ctl({"set", "a", "b", "--loss", "100%"}).ok);
  EXPECT_EQ(Send(0, V4Packet("100.64.0.1", "100.64.0.2")).link_drop, DropReason::kLoss);
  EXPECT_EQ(overlay_.link(0, 1).params().delay, milliseconds(24));
  ASSERT_TRUE(Ctl({"set", "a", "b", "--loss", "0", "--delay", "5ms", "--one-way"}).ok);
  EXPECT_EQ(overlay_.link(0, 1).params().delay, milliseconds(5));
  EXPECT_EQ(overlay_.link(1, 0).params().delay, milliseconds(24));
  EXPECT_DOUBLE_EQ(overlay_.link(1, 0).params().loss, 1.0);
  ASSERT_TRUE(Ctl({"set", "a", "c", "--rtt", "300ms", "--jitter", "1ms", "--rate", "10mbit"}).ok);
  EXPECT_EQ(overlay_.link(2, 0).params().delay, milliseconds(150));
  EXPECT_EQ(overlay_.link(0, 2).params().jitter, milliseconds(1));
  EXPECT_EQ(overlay_.link(0, 2).params().rate_bps, 10'000'000);
  ASSERT_TRUE(Ctl({"reset"}).ok);
  EXPECT_EQ(overlay_.link(0, 1).params().delay, milliseconds(24));
  EXPECT_EQ(overlay_.link(2, 0).params().delay, milliseconds(1));
  EXPECT_DOUBLE_EQ(overlay_.link(1, 0).params().loss, 0);
}

TEST_F(OverlayTest, RefusesBadCommandsWithoutChangingState) {
  const LinkParams before = overlay_.link(0, 1).params();
  for (const std::vector<std::string>& argv :
       std::vector<std::vector<std::string>>{{},
                                             {"frobnicate"},
                                             {"cut", "a"},
                                             {"cut", "a", "zz"},
                                             {"cut", "a", "a"},
                                             {"cut", "a", "b", "--delay", "1ms"},
                                             {"set", "a", "b"},
                                             {"set", "a", "b", "--delay"},
                                             {"set", "a", "b", "--delay", "5ms", "--loss", "200%"},
                                             {"set", "a", "b", "--rtt", "5ms", "--one-way"},
                                             {"set", "a", "b", "--rate", "lots"},
                                             {"set", "a", "b", "--colour", "red"},
                                             {"down"},
                                             {"down", "a", "b"},
                                             {"show", "x"}}) {
    const ControlReply r = Ctl(argv);
    EXPECT_FALSE(r.ok) << r.text;
    EXPECT_THAT(r.text, HasSubstr("error: "));
  }
  EXPECT_EQ(overlay_.link(0, 1).params(), before);
}

}  // namespace
}  // namespace meshflow::testbed

namespace meshflow::testbed {
namespace {

TEST(OverlayWireGuardTest, RoutesTheUnderlayOnly) {
  const Topology t = ParseTopology(kTopology, "t.yaml");
  Overlay overlay(t, OverlayMode::kWireGuard);
  FakeClock clock;
  // wireguard-go's UDP between underlay addresses (198.18.0.N by default).
  auto u = V4Packet("198.18.0.1", "198.18.0.2");
  const auto d = overlay.Route(0, u.data(), u.size(), clock.Monotonic());
  ASSERT_TRUE(d.delivered());
  EXPECT_EQ(d.to_node, 1u);
  EXPECT_EQ(d.release, clock.Monotonic() + milliseconds(24));
  // The overlay's own addresses are wireguard-go's business, never the emulator's.
  auto o = V4Packet("100.64.0.1", "100.64.0.2");
  EXPECT_EQ(overlay.Route(0, o.data(), o.size(), clock.Monotonic()).route_drop,
            RouteDrop::kNoRoute);
  const std::string state = FormatState(overlay);
  EXPECT_THAT(state, HasSubstr("node a ipv4=100.64.0.1 ipv6=fd7a:115c:a1e0::1 state=up "
                               "underlay=198.18.0.1"));
  EXPECT_THAT(state, HasSubstr("overlay mode=wireguard ipv4=100.64.0.0/10"));
}

TEST(OverlayWireGuardTest, SetMtuAndItsErrors) {
  Overlay overlay(ParseTopology(kTopology, "t.yaml"));
  EXPECT_TRUE(ExecuteCommand(overlay, {"set", "a", "b", "--mtu", "1400"}).ok);
  EXPECT_EQ(overlay.link(0, 1).params().mtu, 1400);
  EXPECT_EQ(overlay.link(1, 0).params().mtu, 1400);
  EXPECT_THAT(FormatState(overlay), HasSubstr("link a b state=up delay=24ms jitter=0ms loss=0% "
                                              "rate=unlimited mtu=1400"));
  for (const char* bad : {"-1", "x", "70000", "1400b"}) {
    const ControlReply r = ExecuteCommand(overlay, {"set", "a", "b", "--mtu", bad});
    EXPECT_FALSE(r.ok) << bad;
    EXPECT_THAT(r.text, HasSubstr("--mtu")) << bad;
  }
  EXPECT_EQ(overlay.link(0, 1).params().mtu, 1400);
  EXPECT_TRUE(ExecuteCommand(overlay, {"set", "a", "b", "--mtu", "0"}).ok);
  EXPECT_EQ(overlay.link(0, 1).params().mtu, 0);
}

}  // namespace
}  // namespace meshflow::testbed
