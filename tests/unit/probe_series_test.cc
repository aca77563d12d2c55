#include <gtest/gtest.h>

#include <vector>

#include "collectors/probe/series.h"
#include "common/core/clock.h"

namespace meshflow::probe {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr nanoseconds kTimeout = seconds(3);

// Sends one probe at the fake clock's time and returns its sequence number.
uint64_t SendAt(ProbeSeries& s, const FakeClock& clock) {
  return s.OnSent(clock.Monotonic(), clock.Monotonic() + kTimeout);
}

ReplyInfo ReplyAt(uint64_t sequence, const FakeClock& clock,
                  std::optional<uint64_t> count = std::nullopt) {
  ReplyInfo r;
  r.sequence = sequence;
  r.rx_monotonic = clock.Monotonic();
  r.reflector_count = count;
  return r;
}

TEST(ProbeScheduler, SpreadsItemsEvenlyOverTheInterval) {
  FakeClock clock;
  Scheduler s(seconds(1));
  const nanoseconds start = clock.Monotonic();
  s.Reset(4, start);
  std::vector<std::pair<size_t, nanoseconds>> fired;
  for (int step = 0; step < 2000; ++step) {
    s.RunDue(clock.Monotonic(),
             [&](size_t i) { fired.emplace_back(i, clock.Monotonic() - start); });
    clock.Advance(milliseconds(1));
  }
  // Two rounds of 4 items, 250 ms apart, in item order.
  ASSERT_EQ(fired.size(), 8u);
  for (size_t k = 0; k < fired.size(); ++k) {
    EXPECT_EQ(fired[k].first, k % 4);
    EXPECT_EQ(fired[k].second, milliseconds(250 * k));
  }
  EXPECT_EQ(s.skipped(), 0u);
}

TEST(ProbeScheduler, PhasesForManyItemsStayInsideOneInterval) {
  Scheduler s(seconds(1));
  for (size_t n : {1u, 3u, 7u, 1000u}) {
    nanoseconds last{-1};
    for (size_t i = 0; i < n; ++i) {
      const nanoseconds p = s.PhaseOf(i, n);
      EXPECT_GT(p, last);
      EXPECT_LT(p, seconds(1));
      last = p;
    }
  }
  EXPECT_EQ(s.PhaseOf(500, 1000), milliseconds(500));
}

TEST(ProbeScheduler, SkipsRoundsWhenFarBehindInsteadOfBursting) {
  FakeClock clock;
  const nanoseconds start = clock.Monotonic();
  Scheduler s(milliseconds(100));
  s.Reset(1, start);
  int fired = 0;
  s.RunDue(clock.Monotonic(), [&](size_t) { ++fired; });
  clock.Advance(milliseconds(550));  // the loop stalled through five rounds
  s.RunDue(clock.Monotonic(), [&](size_t) { ++fired; });
  // The 100 ms round goes out late, the ones at 200..500 ms are skipped, not sent in a burst.
  EXPECT_EQ(fired, 2);
  EXPECT_EQ(s.skipped(), 4u);
  // Back on the original phase: the next round is at 600 ms.
  EXPECT_EQ(*s.NextDue(), start + milliseconds(600));
}

TEST(ProbeSeries, ReplyBeforeDeadlineIsReceivedWithItsRtt) {
  FakeClock clock;
  ProbeSeries s(16);
  const uint64_t seq = SendAt(s, clock);
  EXPECT_EQ(seq, 1u);
  EXPECT_EQ(s.in_flight(), 1u);
  clock.Advance(milliseconds(48));
  EXPECT_EQ(s.OnReply(ReplyAt(seq, clock)), ReplyKind::kReceived);
  EXPECT_EQ(s.stats().received, 1u);
  EXPECT_EQ(s.stats().rtt.count(), 1u);
  EXPECT_NEAR(s.stats().rtt.sum(), 0.048, 1e-9);
  // No kernel timestamps were given: the monotonic fallback is counted.
  EXPECT_EQ(s.stats().timestamp_fallbacks, 1u);
  EXPECT_EQ(s.in_flight(), 0u);
}

TEST(ProbeSeries, KernelTimestampsAreUsedWhenBothArePresent) {
  FakeClock clock;
  ProbeSeries s(16);
  const uint64_t seq = SendAt(s, clock);
  s.OnTxTimestamp(seq, 1'000'000'000);
  clock.Advance(milliseconds(5));  // scheduling delay in userspace must not count
  ReplyInfo r = ReplyAt(seq, clock);
  r.rx_kernel_ns = 1'000'000'000 + 1'000'000;
  s.OnReply(r);
  EXPECT_NEAR(s.stats().rtt.sum(), 0.001, 1e-12);
  EXPECT_EQ(s.stats().timestamp_fallbacks, 0u);
}

TEST(ProbeSeries, KernelMeasuredRttIsTakenAsIs) {
  FakeClock clock;
  ProbeSeries s(16);
  const uint64_t seq = SendAt(s, clock);
  clock.Advance(milliseconds(9));
  ReplyInfo r = ReplyAt(seq, clock);
  r.kernel_rtt = microseconds(8123);
  s.OnReply(r);
  EXPECT_NEAR(s.stats().rtt.sum(), 0.008123, 1e-12);
  EXPECT_EQ(s.stats().timestamp_fallbacks, 0u);
}

TEST(ProbeSeries, ReflectorTurnaroundLeavesTheRtt) {
  FakeClock clock;
  ProbeSeries s(16, true);
  uint64_t seq = SendAt(s, clock);
  s.OnTxTimestamp(seq, 5'000'000);
  ReplyInfo r = ReplyAt(seq, clock, 1);
  r.rx_kernel_ns = 5'000'000 + 1'100'000;
  r.turnaround = microseconds(100);
  s.OnReply(r);
  EXPECT_NEAR(s.stats().rtt.sum(), 0.001, 1e-12);
  // A turnaround longer than the whole round trip is implausible and ignored.
  seq = SendAt(s, clock);
  r = ReplyAt(seq, clock, 2);
  r.kernel_rtt = milliseconds(1);
  r.turnaround = milliseconds(2);
  s.OnReply(r);
  EXPECT_NEAR(s.stats().rtt.sum(), 0.002, 1e-12);
}

TEST(ProbeSeries, LostOnlyOnceTheDeadlinePasses) {
  FakeClock clock;
  ProbeSeries s(16);
  SendAt(s, clock);
  clock.Advance(kTimeout - nanoseconds(1));
  s.Expire(clock.Monotonic());
  EXPECT_EQ(s.stats().lost, 0u);
  EXPECT_EQ(s.in_flight(), 1u);
  EXPECT_EQ(s.NextDeadline(), clock.Monotonic() + nanoseconds(1));
  clock.Advance(nanoseconds(1));
  s.Expire(clock.Monotonic());
  EXPECT_EQ(s.stats().lost, 1u);
  EXPECT_EQ(s.in_flight(), 0u);
  EXPECT_EQ(s.stats().sent - s.stats().received - s.in_flight(), s.stats().lost);
}

TEST(ProbeSeries, ReplyAfterTheDeadlineIsLateNotReceived) {
  FakeClock clock;
  ProbeSeries s(16);
  const uint64_t a = SendAt(s, clock);
  const uint64_t b = SendAt(s, clock);
  clock.Advance(kTimeout + milliseconds(1));
  // `a` was expired by the loop before its reply came; `b` arrives before any expiry ran.
  s.Expire(clock.Monotonic() - milliseconds(1));
  EXPECT_EQ(s.OnReply(ReplyAt(a, clock)), ReplyKind::kLate);
  EXPECT_EQ(s.OnReply(ReplyAt(b, clock)), ReplyKind::kLate);
  EXPECT_EQ(s.OnReply(ReplyAt(b, clock)), ReplyKind::kDuplicate);
  EXPECT_EQ(s.stats().late, 2u);
  EXPECT_EQ(s.stats().lost, 2u);
  EXPECT_EQ(s.stats().received, 0u);
  EXPECT_EQ(s.stats().duplicates, 1u);
  EXPECT_EQ(s.stats().rtt.count(), 0u);
}

TEST(ProbeSeries, CountsDuplicatesAndReordering) {
  FakeClock clock;
  ProbeSeries s(16);
  const uint64_t a = SendAt(s, clock);
  clock.Advance(milliseconds(10));
  const uint64_t b = SendAt(s, clock);
  clock.Advance(milliseconds(10));
  const uint64_t c = SendAt(s, clock);
  clock.Advance(milliseconds(10));
  EXPECT_EQ(s.OnReply(ReplyAt(b, clock)), ReplyKind::kReceived);
  EXPECT_EQ(s.OnReply(ReplyAt(a, clock)), ReplyKind::kReceived);  // overtaken by b
  EXPECT_EQ(s.OnReply(ReplyAt(c, clock)), ReplyKind::kReceived);
  EXPECT_EQ(s.OnReply(ReplyAt(c, clock)), ReplyKind::kDuplicate);
  EXPECT_EQ(s.stats().reordered, 1u);
  EXPECT_EQ(s.stats().duplicates, 1u);
  EXPECT_EQ(s.stats().received, 3u);
  // Replies to probes never sent are unknown, not counted as received.
  EXPECT_EQ(s.OnReply(ReplyAt(99, clock)), ReplyKind::kUnknown);
  EXPECT_EQ(s.stats().unknown_replies, 1u);
}

TEST(ProbeSeries, JitterFollowsTheRfc3550Estimator) {
  FakeClock clock;
  ProbeSeries s(16);
  const std::vector<int> rtt_ms{10, 14, 10, 10};
  double expected = 0;
  for (size_t i = 0; i < rtt_ms.size(); ++i) {
    const uint64_t seq = SendAt(s, clock);
    ReplyInfo r = ReplyAt(seq, clock);
    r.kernel_rtt = milliseconds(rtt_ms[i]);
    s.OnReply(r);
    if (i > 0) expected += (std::abs(rtt_ms[i] - rtt_ms[i - 1]) * 1e-3 - expected) / 16;
    clock.Advance(milliseconds(100));
  }
  EXPECT_NEAR(s.stats().jitter_seconds, expected, 1e-12);
  // 10->14: 4ms/16; 14->10: += (4ms - J)/16; 10->10: decays by 15/16.
  EXPECT_NEAR(s.stats().jitter_seconds, 0.000484375 * 15 / 16, 1e-12);
}

TEST(ProbeSeries, FailedProbeIsLostAtOnceWithItsReason) {
  FakeClock clock;
  ProbeSeries s(16);
  const uint64_t seq = SendAt(s, clock);
  s.OnFailed(seq, "refused");
  EXPECT_EQ(s.stats().lost, 1u);
  EXPECT_EQ(s.stats().errors.at("refused"), 1u);
  EXPECT_EQ(s.in_flight(), 0u);
}

// Drives a udp series where the reflector sees what the forward path lets through and the
// prober sees what the return path lets through.
struct LossRun {
  uint64_t forward = 0, back = 0, lost = 0, sent = 0, received = 0;
};
LossRun RunLoss(const std::vector<bool>& forward_ok, const std::vector<bool>& return_ok) {
  FakeClock clock;
  ProbeSeries s(64, /*split_loss=*/true);
  uint64_t reflector_count = 0;
  for (size_t i = 0; i < forward_ok.size(); ++i) {
    const uint64_t seq = SendAt(s, clock);
    clock.Advance(milliseconds(20));
    if (forward_ok[i]) {
      ++reflector_count;
      if (return_ok[i]) s.OnReply(ReplyAt(seq, clock, reflector_count));
    }
    clock.Advance(milliseconds(80));
    s.Expire(clock.Monotonic());
  }
  // One last good probe settles the attribution of the ones before it.
  const uint64_t seq = SendAt(s, clock);
  s.OnReply(ReplyAt(seq, clock, ++reflector_count));
  clock.Advance(kTimeout);
  s.Expire(clock.Monotonic());
  return {s.stats().forward_lost, s.stats().return_lost, s.stats().lost, s.stats().sent,
          s.stats().received};
}

TEST(ProbeSeries, SplitsLossIntoForwardAndReturn) {
  std::vector<bool> fwd(200, true), ret(200, true);
  for (size_t i = 0; i < 200; i += 10) fwd[i] = false;  // 20 lost on the way out
  for (size_t i = 5; i < 200; i += 20) ret[i] = false;  // 10 lost on the way back
  const LossRun r = RunLoss(fwd, ret);
  EXPECT_EQ(r.lost, 30u);
  EXPECT_EQ(r.forward, 20u);
  EXPECT_EQ(r.back, 10u);
  EXPECT_EQ(r.sent - r.received, r.lost);
}

TEST(ProbeSeries, OneDirectionLossShowsOnlyOnThatSide) {
  std::vector<bool> ok(100, true), some(100, true);
  for (size_t i = 3; i < 100; i += 7) some[i] = false;
  const LossRun only_return = RunLoss(ok, some);
  EXPECT_EQ(only_return.forward, 0u);
  EXPECT_EQ(only_return.back, only_return.lost);
  EXPECT_GT(only_return.lost, 0u);
  const LossRun only_forward = RunLoss(some, ok);
  EXPECT_EQ(only_forward.back, 0u);
  EXPECT_EQ(only_forward.forward, only_forward.lost);
}

TEST(ProbeSeries, ReflectorRestartDoesNotInventLoss) {
  FakeClock clock;
  ProbeSeries s(64, true);
  uint64_t count = 0;
  for (int i = 0; i < 10; ++i) {
    const uint64_t seq = SendAt(s, clock);
    s.OnReply(ReplyAt(seq, clock, ++count));
    clock.Advance(milliseconds(100));
  }
  count = 0;  // the peer's exporter restarted
  for (int i = 0; i < 10; ++i) {
    const uint64_t seq = SendAt(s, clock);
    s.OnReply(ReplyAt(seq, clock, ++count));
    clock.Advance(milliseconds(100));
  }
  EXPECT_EQ(s.stats().forward_lost, 0u);
  EXPECT_EQ(s.stats().return_lost, 0u);
}

TEST(ProbeSeries, RingOverrunSettlesInsteadOfForgetting) {
  FakeClock clock;
  ProbeSeries s(4);
  for (int i = 0; i < 10; ++i) SendAt(s, clock);  // never expired: the owner fell behind
  EXPECT_EQ(s.stats().sent, 10u);
  EXPECT_EQ(s.stats().lost + s.in_flight(), 10u);
}

}  // namespace
}  // namespace meshflow::probe
