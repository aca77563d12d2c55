#include "tests/testbed/emulator/link_model.h"

#include <gtest/gtest.h>

#include "common/core/clock.h"

namespace meshflow::testbed {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

TEST(LinkModelTest, FixedDelayReleasesAfterExactlyTheDelay) {
  FakeClock clock;
  LinkModel link(LinkParams{.delay = milliseconds(24)}, 1);
  const auto v = link.Offer(100, clock.Monotonic());
  EXPECT_EQ(v.drop, DropReason::kNone);
  EXPECT_EQ(v.release, clock.Monotonic() + milliseconds(24));
  EXPECT_EQ(link.counters().packets, 1u);
  EXPECT_EQ(link.counters().bytes, 100u);
}

TEST(LinkModelTest, CutLinkDropsEverythingAndRestoreCarriesAgain) {
  FakeClock clock;
  LinkModel link(LinkParams{.delay = milliseconds(1)}, 1);
  LinkParams cut = link.params();
  cut.up = false;
  link.SetParams(cut);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(link.Offer(60, clock.Monotonic()).drop, DropReason::kLinkDown);
  EXPECT_EQ(link.counters().dropped[static_cast<int>(DropReason::kLinkDown)], 100u);
  cut.up = true;
  link.SetParams(cut);
  EXPECT_EQ(link.Offer(60, clock.Monotonic()).drop, DropReason::kNone);
}

TEST(LinkModelTest, LossRateMatchesProbability) {
  FakeClock clock;
  LinkModel link(LinkParams{.loss = 0.12}, 7);
  int lost = 0;
  constexpr int kPackets = 100000;
  for (int i = 0; i < kPackets; ++i)
    if (link.Offer(60, clock.Monotonic()).drop == DropReason::kLoss) ++lost;
  // 100k draws: the standard deviation is 0.1 points, so 0.5 points is five of them.
  EXPECT_NEAR(static_cast<double>(lost) / kPackets, 0.12, 0.005);
}

TEST(LinkModelTest, SameSeedSameDecisions) {
  FakeClock clock;
  LinkParams p{.delay = milliseconds(10), .jitter = milliseconds(2), .loss = 0.3};
  LinkModel a(p, 42), b(p, 42), c(p, 43);
  int differ = 0;
  for (int i = 0; i < 1000; ++i) {
    clock.Advance(milliseconds(1));
    const auto va = a.Offer(100, clock.Monotonic());
    const auto vb = b.Offer(100, clock.Monotonic());
    const auto vc = c.Offer(100, clock.Monotonic());
    EXPECT_EQ(va.drop, vb.drop);
    EXPECT_EQ(va.release, vb.release);
    differ += va.drop != vc.drop;
  }
  EXPECT_GT(differ, 0);
}

TEST(LinkModelTest, JitterStaysInBoundsAndKeepsOrder) {
  FakeClock clock;
  LinkModel link(LinkParams{.delay = milliseconds(10), .jitter = milliseconds(3)}, 3);
  std::chrono::nanoseconds last{0};
  std::chrono::nanoseconds min_delay = milliseconds(100), max_delay{0};
  for (int i = 0; i < 5000; ++i) {
    clock.Advance(milliseconds(5));  // further apart than the jitter: no reordering pressure
    const auto v = link.Offer(100, clock.Monotonic());
    const auto d = v.release - clock.Monotonic();
    min_delay = std::min(min_delay, d);
    max_delay = std::max(max_delay, d);
    EXPECT_GE(v.release, last);
    last = v.release;
  }
  EXPECT_GE(min_delay, milliseconds(7));
  EXPECT_LE(max_delay, milliseconds(13));
  EXPECT_LT(min_delay, milliseconds(8));  // the draws really spread over the range
  EXPECT_GT(max_delay, milliseconds(12));
}

TEST(LinkModelTest, JitterNeverReleasesBeforeThePreviousPacket) {
  FakeClock clock;
  LinkModel link(LinkParams{.delay = milliseconds(10), .jitter = milliseconds(5)}, 3);
  std::chrono::nanoseconds last{0};
  for (int i = 0; i < 1000; ++i) {
    clock.Advance(microseconds(100));
    const auto v = link.Offer(100, clock.Monotonic());
    EXPECT_GE(v.release, last);
    last = v.release;
  }
}

TEST(LinkModelTest, RateLimitSpacesPacketsBySerializationTime) {
  FakeClock clock;
  // 1 Mbit/s: a 1250-byte packet takes 10 ms; the bucket holds 1600 bytes.
  LinkModel link(LinkParams{.rate_bps = 1'000'000, .burst_bytes = 1600, .queue_bytes = 100000}, 1);
  const auto t0 = clock.Monotonic();
  EXPECT_EQ(link.Offer(1250, t0).release, t0);  // fits the full bucket
  // 350 tokens left: the next packet waits for 900 more bytes, 7.2 ms.
  EXPECT_EQ(link.Offer(1250, t0).release, t0 + microseconds(7200));
  // Then every packet waits a further 10 ms.
  EXPECT_EQ(link.Offer(1250, t0).release, t0 + microseconds(17200));
  // After a long idle period the bucket is full again.
  clock.Advance(std::chrono::seconds(1));
  EXPECT_EQ(link.Offer(1250, clock.Monotonic()).release, clock.Monotonic());
}

TEST(LinkModelTest, RateLimitTailDropsBeyondTheQueue) {
  FakeClock clock;
  LinkModel link(LinkParams{.rate_bps = 1'000'000, .burst_bytes = 1500, .queue_bytes = 3000}, 1);
  int sent = 0, dropped = 0;
  for (int i = 0; i < 10; ++i) {
    const auto v = link.Offer(1500, clock.Monotonic());
    if (v.drop == DropReason::kRateQueueFull)
      ++dropped;
    else
      ++sent;
  }
  EXPECT_EQ(sent, 3);  // one from the bucket, two queued
  EXPECT_EQ(dropped, 7);
  EXPECT_EQ(link.counters().dropped[static_cast<int>(DropReason::kRateQueueFull)], 7u);
}

TEST(LinkModelTest, ThroughputOverTimeMatchesRate) {
  FakeClock clock;
  LinkModel link(LinkParams{.rate_bps = 8'000'000}, 1);  // 1 MB/s
  std::chrono::nanoseconds last{0};
  int64_t bytes = 0;
  // Offer 2 MB/s for one simulated second, packets every 500 us.
  for (int i = 0; i < 2000; ++i) {
    const auto v = link.Offer(1000, clock.Monotonic());
    if (v.drop == DropReason::kNone) {
      bytes += 1000;
      last = v.release;
    }
    clock.Advance(microseconds(500));
  }
  const double seconds = static_cast<double>(last.count() - 1'000'000'000) / 1e9;
  EXPECT_NEAR(static_cast<double>(bytes) / seconds, 1e6, 0.03e6);
}

TEST(ParseTest, LossRateAndFormats) {
  double loss = 0;
  EXPECT_TRUE(ParseLoss("12%", &loss));
  EXPECT_DOUBLE_EQ(loss, 0.12);
  EXPECT_TRUE(ParseLoss("0.05", &loss));
  EXPECT_DOUBLE_EQ(loss, 0.05);
  EXPECT_FALSE(ParseLoss("101%", &loss));
  EXPECT_FALSE(ParseLoss("-1%", &loss));
  EXPECT_FALSE(ParseLoss("abc", &loss));
  EXPECT_FALSE(ParseLoss("", &loss));
  int64_t rate = 0;
  EXPECT_TRUE(ParseRate("10mbit", &rate));
  EXPECT_EQ(rate, 10'000'000);
  EXPECT_TRUE(ParseRate("512kbit", &rate));
  EXPECT_EQ(rate, 512'000);
  EXPECT_TRUE(ParseRate("0", &rate));
  EXPECT_EQ(rate, 0);
  EXPECT_FALSE(ParseRate("fast", &rate));
  EXPECT_FALSE(ParseRate("10mb", &rate));
  EXPECT_EQ(FormatRate(10'000'000), "10mbit");
  EXPECT_EQ(FormatRate(0), "unlimited");
  EXPECT_EQ(FormatDelay(milliseconds(40)), "40ms");
  EXPECT_EQ(FormatDelay(microseconds(500)), "0.5ms");
}

}  // namespace
}  // namespace meshflow::testbed

namespace meshflow::testbed {
namespace {

TEST(LinkModelTest, MtuDropsOnlyLargerPacketsSilently) {
  FakeClock clock;
  LinkModel link(LinkParams{.delay = std::chrono::milliseconds(1), .mtu = 1400}, 1);
  EXPECT_EQ(link.Offer(1400, clock.Monotonic()).drop, DropReason::kNone);
  EXPECT_EQ(link.Offer(1401, clock.Monotonic()).drop, DropReason::kTooBig);
  EXPECT_EQ(link.counters().dropped[static_cast<int>(DropReason::kTooBig)], 1u);
  EXPECT_EQ(link.counters().packets, 1u);
}

}  // namespace
}  // namespace meshflow::testbed
