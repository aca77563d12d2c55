#include <gtest/gtest.h>

#include <vector>

#include "collectors/probe/reflector_core.h"

namespace meshflow::probe {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

IpAddress Addr(const char* text) { return *IpAddress::Parse(text); }

std::vector<uint8_t> RequestBytes(uint64_t session, uint64_t sequence) {
  ProbePacket p;
  p.session = session;
  p.sequence = sequence;
  p.send_time_ns = 123;
  const ProbeBytes b = Encode(p);
  return {b.begin(), b.end()};
}

TEST(ProbeReflector, RepliesWithTheCountOfThatSenderAndSession) {
  ReflectorCore r(1000);
  const nanoseconds t = seconds(1);
  auto reply = r.Handle(Addr("10.0.0.1"), RequestBytes(7, 1), t);
  ASSERT_TRUE(reply);
  auto decoded = Decode(*reply);
  ASSERT_TRUE(decoded.packet);
  EXPECT_EQ(decoded.packet->type, ProbeType::kReply);
  EXPECT_EQ(decoded.packet->sequence, 1u);
  EXPECT_EQ(decoded.packet->session, 7u);
  EXPECT_EQ(decoded.packet->send_time_ns, 123u);
  EXPECT_EQ(decoded.packet->receive_count, 1u);

  // Sequence 2 was lost on the way: the count says 2 received when 3 arrives.
  reply = r.Handle(Addr("10.0.0.1"), RequestBytes(7, 3), t);
  EXPECT_EQ(Decode(*reply).packet->receive_count, 2u);
  // Another session and another source count on their own.
  EXPECT_EQ(Decode(*r.Handle(Addr("10.0.0.1"), RequestBytes(8, 1), t)).packet->receive_count, 1u);
  EXPECT_EQ(Decode(*r.Handle(Addr("10.0.0.2"), RequestBytes(7, 1), t)).packet->receive_count, 1u);
  EXPECT_EQ(r.counters().requests, 4u);
  EXPECT_EQ(r.counters().replies, 4u);
}

TEST(ProbeReflector, ReplyIsNeverBiggerThanTheRequest) {
  ReflectorCore r(1000);
  const auto request = RequestBytes(1, 1);
  auto reply = r.Handle(Addr("::1"), request, seconds(1));
  ASSERT_TRUE(reply);
  EXPECT_LE(reply->size(), request.size());
}

TEST(ProbeReflector, NeverAnswersMalformedOrUnexpectedDatagrams) {
  ReflectorCore r(1000);
  const IpAddress src = Addr("192.0.2.1");
  EXPECT_FALSE(r.Handle(src, std::vector<uint8_t>{}, seconds(1)));
  EXPECT_FALSE(r.Handle(src, std::vector<uint8_t>(1400, 0xAB), seconds(1)));
  auto bad_magic = RequestBytes(1, 1);
  bad_magic[1] = 'X';
  EXPECT_FALSE(r.Handle(src, bad_magic, seconds(1)));
  // A reply sent to the reflector (a loop, or a spoofed reply) is not answered either.
  ProbePacket reply;
  reply.type = ProbeType::kReply;
  reply.receive_count = 3;
  const ProbeBytes reply_bytes = Encode(reply);
  EXPECT_FALSE(r.Handle(src, reply_bytes, seconds(1)));

  const auto& c = r.counters();
  EXPECT_EQ(c.malformed[static_cast<size_t>(DecodeError::kTooShort)], 1u);
  EXPECT_EQ(c.malformed[static_cast<size_t>(DecodeError::kTooLong)], 1u);
  EXPECT_EQ(c.malformed[static_cast<size_t>(DecodeError::kBadMagic)], 1u);
  EXPECT_EQ(c.not_request, 1u);
  EXPECT_EQ(c.replies, 0u);
  EXPECT_EQ(c.requests, 0u);
}

TEST(ProbeReflector, RateLimitsPerSourceAndRefills) {
  ReflectorCore r(/*per second=*/10);
  const IpAddress noisy = Addr("10.0.0.9");
  const IpAddress quiet = Addr("10.0.0.10");
  nanoseconds t = seconds(5);
  int answered = 0;
  for (int i = 1; i <= 25; ++i) answered += r.Handle(noisy, RequestBytes(1, i), t).has_value();
  EXPECT_EQ(answered, 10);  // the burst is one second's worth
  EXPECT_EQ(r.counters().rate_limited, 15u);
  // Other sources are not affected.
  EXPECT_TRUE(r.Handle(quiet, RequestBytes(2, 1), t));
  // 100 ms later one token is back.
  t += milliseconds(100);
  EXPECT_TRUE(r.Handle(noisy, RequestBytes(1, 26), t));
  EXPECT_FALSE(r.Handle(noisy, RequestBytes(1, 27), t));
  // Rate-limited requests still count as received: they crossed the forward path.
  t += seconds(1);
  EXPECT_EQ(Decode(*r.Handle(noisy, RequestBytes(1, 28), t)).packet->receive_count, 28u);
}

// Rotating over more sources than the per-source table holds gives each datagram a fresh
// allowance; the cap over all sources still holds.
TEST(ProbeReflector, GlobalCapHoldsWhateverTheNumberOfSources) {
  ReflectorCore r(/*per second=*/50, /*max_sources=*/4096, /*max_sessions=*/4096,
                  /*max_replies_per_second=*/200);
  nanoseconds t = seconds(5);
  int answered = 0;
  // 3 seconds at 10,000 requests per second from 8,192 rotating sources.
  for (int i = 0; i < 30'000; ++i) {
    t += std::chrono::microseconds(100);
    answered += r.Handle(IpAddress::FromV4(0x0A000000 + static_cast<uint32_t>(i % 8192)),
                         RequestBytes(1, static_cast<uint64_t>(i) + 1), t)
                    .has_value();
  }
  // One second's burst plus 200 per second for the 3 seconds.
  EXPECT_LE(answered, 200 + 3 * 200 + 1);
  EXPECT_GE(answered, 3 * 200);
  EXPECT_GT(r.counters().global_rate_limited, 29'000u - 1'000u);
}

TEST(ProbeReflector, SourceTableIsBounded) {
  SourceRateLimiter limiter(1, /*max_sources=*/4);
  const nanoseconds t = seconds(1);
  for (uint32_t i = 0; i < 100; ++i)
    EXPECT_TRUE(limiter.Allow(IpAddress::FromV4(0x0A000000 + i), t));
  EXPECT_EQ(limiter.size(), 4u);
  EXPECT_EQ(limiter.evictions(), 96u);
  // The most recent source is still remembered and limited.
  EXPECT_FALSE(limiter.Allow(IpAddress::FromV4(0x0A000000 + 99), t));
}

TEST(ProbeReflector, SessionTableIsBounded) {
  ReflectorCore r(1e5, 16, /*max_sessions=*/8);
  for (uint64_t s = 0; s < 50; ++s)
    r.Handle(Addr("10.0.0.1"), RequestBytes(s, 1), std::chrono::seconds(1));
  EXPECT_EQ(r.sessions(), 8u);
  EXPECT_EQ(r.counters().session_evictions, 42u);
}

}  // namespace
}  // namespace meshflow::probe
