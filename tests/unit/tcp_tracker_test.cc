// The passive TCP state machine with synthetic decoded packets: handshake RTT on each side,
// timestamp RTT matching and its rate limit, retransmissions across sequence wraparound, SYN
// retries, flows seen mid-stream, and the connection table's bound and expiry; and that
// Submit, which tracks packets a few packets late, reports what tracking each at once does.
#include "collectors/flow/tcp/tcp_tracker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <random>
#include <tuple>
#include <vector>

namespace meshflow::flow::tcp {
namespace {

using tcp_flags::kAck;
using tcp_flags::kFin;
using tcp_flags::kPsh;
using tcp_flags::kRst;
using tcp_flags::kSyn;

constexpr NodeId kClientNode = 1;
constexpr NodeId kServerNode = 2;
constexpr NodeId kOtherNode = 3;
constexpr RoleId kRole = 7;
constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1000 * kMs;

class Recorder final : public ResultSink {
 public:
  void OnRtt(const RttSample& sample) override { rtt.push_back(sample); }
  void OnRetransmission(const Retransmission& r) override { retransmissions.push_back(r); }
  std::vector<RttSample> rtt;
  std::vector<Retransmission> retransmissions;
};

struct Endpoint {
  IpAddress address;
  uint16_t port;
  NodeId node;
};

const Endpoint kClient{IpAddress::FromV4(0x64400002), 40000, kClientNode};  // 100.64.0.2
const Endpoint kServer{IpAddress::FromV4(0x64400001), 5432, kServerNode};   // 100.64.0.1

struct Segment {
  uint8_t flags = kAck;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint32_t payload = 0;
  bool timestamps = false;
  uint32_t ts_val = 0;
  uint32_t ts_ecr = 0;
};

// Segments with the timestamp option: a pure ACK, and 10 bytes of data (ACK|PSH).
Segment TsAck(uint32_t seq, uint32_t ack, uint32_t ts_val, uint32_t ts_ecr) {
  return {.flags = kAck,
          .seq = seq,
          .ack = ack,
          .timestamps = true,
          .ts_val = ts_val,
          .ts_ecr = ts_ecr};
}
Segment TsData(uint32_t seq, uint32_t ack, uint32_t ts_val, uint32_t ts_ecr) {
  return {.flags = kAck | kPsh,
          .seq = seq,
          .ack = ack,
          .payload = 10,
          .timestamps = true,
          .ts_val = ts_val,
          .ts_ecr = ts_ecr};
}

PacketInfo Info(const Endpoint& from, const Endpoint& to, const Segment& s) {
  PacketInfo info;
  info.src = from.address;
  info.dst = to.address;
  info.src_port = from.port;
  info.dst_port = to.port;
  info.ip_version = 4;
  info.l4_protocol = 6;
  info.has_ports = true;
  info.has_tcp_header = true;
  info.tcp_flags = s.flags;
  info.tcp_seq = s.seq;
  info.tcp_ack = s.ack;
  info.tcp_payload_bytes = s.payload;
  info.ip_bytes = 40 + s.payload + (s.timestamps ? 12 : 0);
  info.has_tcp_timestamp = s.timestamps;
  info.ts_val = s.ts_val;
  info.ts_ecr = s.ts_ecr;
  return info;
}

class TrackerTest : public ::testing::Test {
 protected:
  TrackerTest(NodeId self = kClientNode, TcpConfig config = {}) : config_(config) {
    tracker_.Rebind(config_, self);
  }

  void Rebind(NodeId self, TcpConfig config) {
    config_ = config;
    tracker_.Rebind(config_, self);
  }

  void Send(int64_t t, const Endpoint& from, const Endpoint& to, Segment s,
            uint32_t interface_id = 0) {
    tracker_.OnPacket(Info(from, to, s), {t, interface_id, kRole, from.node, to.node});
  }
  // A segment from the client or the server, shortened for the tests.
  void C(int64_t t, Segment s) { Send(t, kClient, kServer, s); }
  void S(int64_t t, Segment s) { Send(t, kServer, kClient, s); }

  void Handshake(int64_t t0, int64_t rtt, uint32_t client_isn = 1000, uint32_t server_isn = 9000) {
    C(t0, {.flags = kSyn, .seq = client_isn});
    S(t0 + rtt, {.flags = kSyn | kAck, .seq = server_isn, .ack = client_isn + 1});
    C(t0 + rtt + kMs / 10, {.flags = kAck, .seq = client_isn + 1, .ack = server_isn + 1});
  }

  TcpConfig config_;
  Recorder sink_;
  TcpTracker tracker_{config_, sink_};
};

TEST_F(TrackerTest, ClientSideTimesSynToSynAck) {
  Handshake(5 * kSecond, 80 * kMs);
  ASSERT_EQ(sink_.rtt.size(), 1u);
  EXPECT_EQ(sink_.rtt[0].kind, RttKind::kHandshake);
  EXPECT_DOUBLE_EQ(sink_.rtt[0].seconds, 0.080);
  EXPECT_EQ(sink_.rtt[0].client, kClientNode);
  EXPECT_EQ(sink_.rtt[0].server, kServerNode);
  EXPECT_EQ(sink_.rtt[0].role, kRole);
  EXPECT_TRUE(sink_.retransmissions.empty());
}

TEST_F(TrackerTest, ServerSideTimesSynAckToAck) {
  Rebind(kServerNode, {});
  C(0, {.flags = kSyn, .seq = 1000});
  S(kMs / 5, {.flags = kSyn | kAck, .seq = 9000, .ack = 1001});
  C(kMs / 5 + 48 * kMs, {.flags = kAck, .seq = 1001, .ack = 9001});
  ASSERT_EQ(sink_.rtt.size(), 1u);
  EXPECT_DOUBLE_EQ(sink_.rtt[0].seconds, 0.048);
  EXPECT_EQ(sink_.rtt[0].client, kClientNode);  // src is the client on either side
  EXPECT_EQ(sink_.rtt[0].server, kServerNode);
}

TEST_F(TrackerTest, PassingTrafficTimesSynToAck) {
  Rebind(kOtherNode, {});
  C(0, {.flags = kSyn, .seq = 1000});
  S(30 * kMs, {.flags = kSyn | kAck, .seq = 9000, .ack = 1001});
  C(50 * kMs, {.flags = kAck, .seq = 1001, .ack = 9001});
  ASSERT_EQ(sink_.rtt.size(), 1u);
  EXPECT_DOUBLE_EQ(sink_.rtt[0].seconds, 0.050);
}

TEST_F(TrackerTest, SynRetryIsTimedFromTheLastSynAndCountedAsRetransmission) {
  C(0, {.flags = kSyn, .seq = 50});
  C(1 * kSecond, {.flags = kSyn, .seq = 50});
  C(3 * kSecond, {.flags = kSyn, .seq = 50});
  S(3 * kSecond + 6 * kMs, {.flags = kSyn | kAck, .seq = 700, .ack = 51});
  C(3 * kSecond + 6 * kMs + 100, {.flags = kAck, .seq = 51, .ack = 701});
  ASSERT_EQ(sink_.rtt.size(), 1u);
  EXPECT_DOUBLE_EQ(sink_.rtt[0].seconds, 0.006);
  ASSERT_EQ(sink_.retransmissions.size(), 2u);
  EXPECT_EQ(sink_.retransmissions[0].src, kClientNode);
  EXPECT_EQ(sink_.retransmissions[0].bytes, 40u);
}

TEST_F(TrackerTest, DuplicateSynAckAfterTheSampleIsNotTimedAgain) {
  Handshake(0, 80 * kMs);
  S(1 * kSecond, {.flags = kSyn | kAck, .seq = 9000, .ack = 1001});
  EXPECT_EQ(sink_.rtt.size(), 1u);
}

TEST_F(TrackerTest, SynAckRetryOnTheServerIsTimedFromTheLastOne) {
  Rebind(kServerNode, {});
  C(0, {.flags = kSyn, .seq = 1000});
  S(kMs, {.flags = kSyn | kAck, .seq = 9000, .ack = 1001});
  S(kMs + kSecond, {.flags = kSyn | kAck, .seq = 9000, .ack = 1001});
  C(kMs + kSecond + 250 * kMs, {.flags = kAck, .seq = 1001, .ack = 9001});
  ASSERT_EQ(sink_.rtt.size(), 1u);
  EXPECT_DOUBLE_EQ(sink_.rtt[0].seconds, 0.250);
}

TEST_F(TrackerTest, TimestampEchoOfOurOwnTsvalIsTimedOnce) {
  C(0, {.flags = kAck | kPsh, .seq = 1, .payload = 10, .timestamps = true, .ts_val = 99});
  // Mid-stream: the first TSval's first-seen time is unknown, so 100 is the first timed.
  C(10 * kMs, {.flags = kAck | kPsh, .seq = 11, .payload = 10, .timestamps = true, .ts_val = 100});
  C(12 * kMs, {.flags = kAck | kPsh, .seq = 21, .payload = 10, .timestamps = true, .ts_val = 100});
  // The peer's own TSval 500 is not timed: its echo would measure this node's ACK delay.
  S(90 * kMs, TsAck(1, 31, 500, 100));
  S(95 * kMs, TsAck(1, 31, 501, 100));
  C(400 * kMs, TsAck(31, 1, 140, 501));
  ASSERT_EQ(sink_.rtt.size(), 1u);
  EXPECT_EQ(sink_.rtt[0].kind, RttKind::kTimestamp);
  EXPECT_DOUBLE_EQ(sink_.rtt[0].seconds, 0.080);
  EXPECT_EQ(sink_.rtt[0].client, kClientNode);  // the higher port is the client mid-stream
  EXPECT_EQ(sink_.rtt[0].server, kServerNode);
}

TEST_F(TrackerTest, PureAckTsvalsAreNotTimedAndASkippedEchoFreesTheSlot) {
  Handshake(0, 80 * kMs);
  sink_.rtt.clear();
  // The client's pure ACK: its TSval would be echoed only when the server next sends.
  C(1 * kSecond, {.flags = kAck, .seq = 1001, .ack = 9001, .timestamps = true, .ts_val = 10});
  S(6 * kSecond, TsData(9001, 1001, 70, 10));
  EXPECT_TRUE(sink_.rtt.empty());
  // Two requests in one tick window: the first is armed, the server acknowledges both at
  // once echoing the second's TSval, so the first is never echoed and must not block.
  C(7 * kSecond, TsData(1001, 9011, 20, 70));
  C(7 * kSecond + 1, TsData(1011, 9011, 21, 70));
  S(7 * kSecond + 80 * kMs, TsAck(9011, 1021, 71, 21));
  EXPECT_TRUE(sink_.rtt.empty());
  C(8 * kSecond, TsData(1021, 9011, 30, 71));
  S(8 * kSecond + 80 * kMs, TsAck(9011, 1031, 72, 30));
  ASSERT_EQ(sink_.rtt.size(), 1u);
  EXPECT_DOUBLE_EQ(sink_.rtt[0].seconds, 0.080);
}

TEST_F(TrackerTest, HandshakeTimestampsAreTimedToo) {
  C(0, {.flags = kSyn, .seq = 1000, .timestamps = true, .ts_val = 100});
  S(80 * kMs, {.flags = kSyn | kAck,
               .seq = 9000,
               .ack = 1001,
               .timestamps = true,
               .ts_val = 500,
               .ts_ecr = 100});
  ASSERT_EQ(sink_.rtt.size(), 2u);
  EXPECT_EQ(sink_.rtt[0].kind, RttKind::kHandshake);
  EXPECT_EQ(sink_.rtt[1].kind, RttKind::kTimestamp);
  EXPECT_DOUBLE_EQ(sink_.rtt[1].seconds, 0.080);
}

TEST_F(TrackerTest, TimestampSamplesAreRateLimitedPerConnection) {
  TcpConfig config;
  config.timestamp_samples_per_second = 4;
  Rebind(kClientNode, config);
  C(0, {.flags = kSyn, .seq = 0, .timestamps = true, .ts_val = 999});
  S(50 * kMs,
    {.flags = kSyn | kAck, .seq = 0, .ack = 1, .timestamps = true, .ts_val = 1, .ts_ecr = 999});
  sink_.rtt.clear();
  // A bulk transfer: a new TSval every 10 ms for 2 s, each echoed 50 ms later.
  struct Event {
    int64_t t;
    bool data;
    uint32_t i;
  };
  std::vector<Event> events;
  for (uint32_t i = 0; i < 200; ++i) {
    events.push_back({100 * kMs + i * 10 * kMs, true, i});
    events.push_back({150 * kMs + i * 10 * kMs + 1, false, i});
  }
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.t < b.t; });
  for (const Event& e : events) {
    if (e.data) {
      C(e.t, {.flags = kAck,
              .seq = 1 + e.i * 1000,
              .ack = 1,
              .payload = 1000,
              .timestamps = true,
              .ts_val = 1000 + e.i,
              .ts_ecr = 1});
    } else {
      S(e.t, TsAck(1, 1001 + e.i * 1000, 2, 1000 + e.i));
    }
  }
  // The SYN's sample set the limit; then armed at 250, 500, ... 2000 ms, each timing 50 ms.
  ASSERT_EQ(sink_.rtt.size(), 8u);
  for (const auto& s : sink_.rtt) EXPECT_NEAR(s.seconds, 0.050, 1e-6);
  EXPECT_TRUE(sink_.retransmissions.empty());
}

TEST_F(TrackerTest, PassingTrafficAddsBothHalfTrips) {
  Rebind(kOtherNode, {});
  C(0, {.flags = kSyn, .seq = 0, .timestamps = true, .ts_val = 10});
  S(30 * kMs,
    {.flags = kSyn | kAck, .seq = 0, .ack = 1, .timestamps = true, .ts_val = 20, .ts_ecr = 10});
  C(50 * kMs, TsAck(1, 1, 11, 20));
  // Handshake 50 ms. The timestamps give the server-side half (30 ms) and the client-side half
  // (20 ms); a sample is taken when the client's TSval is echoed, so none yet.
  ASSERT_EQ(sink_.rtt.size(), 1u);
  EXPECT_EQ(sink_.rtt[0].kind, RttKind::kHandshake);
  EXPECT_DOUBLE_EQ(sink_.rtt[0].seconds, 0.050);
  // Past the rate limit: the client's next TSval is timed by the server's echo (the server-side
  // half, 30 ms) and added to the client-side half (20 ms).
  C(300 * kMs, TsData(1, 1, 12, 20));
  S(330 * kMs, TsAck(1, 1, 21, 12));
  ASSERT_EQ(sink_.rtt.size(), 2u);
  EXPECT_EQ(sink_.rtt[1].kind, RttKind::kTimestamp);
  EXPECT_NEAR(sink_.rtt[1].seconds, 0.050, 1e-9);
}

TEST_F(TrackerTest, RetransmissionAcrossSequenceWraparound) {
  const uint32_t isn = 0xFFFFFE00;
  C(0, {.flags = kSyn, .seq = isn});
  S(kMs, {.flags = kSyn | kAck, .seq = 77, .ack = isn + 1});
  C(2 * kMs, {.flags = kAck, .seq = isn + 1, .ack = 78});
  uint32_t seq = isn + 1;
  for (int i = 0; i < 6; ++i, seq += 200) {
    C(3 * kMs + i, {.flags = kAck | kPsh, .seq = seq, .ack = 78, .payload = 200});
  }
  EXPECT_TRUE(sink_.retransmissions.empty()) << "wrapping past 2^32 is not a retransmission";
  C(300 * kMs, {.flags = kAck | kPsh, .seq = seq - 200, .ack = 78, .payload = 200});
  // Partly seen before: resent with new data appended (repacketized) still counts.
  C(301 * kMs, {.flags = kAck | kPsh, .seq = seq - 100, .ack = 78, .payload = 300});
  ASSERT_EQ(sink_.retransmissions.size(), 2u);
  EXPECT_EQ(sink_.retransmissions[0].src, kClientNode);
  EXPECT_EQ(sink_.retransmissions[0].dst, kServerNode);
  EXPECT_EQ(sink_.retransmissions[0].bytes, 240u);
  EXPECT_EQ(sink_.retransmissions[0].role, kRole);
  // New data after the retransmissions is new again.
  C(302 * kMs, {.flags = kAck | kPsh, .seq = seq + 200, .ack = 78, .payload = 100});
  EXPECT_EQ(sink_.retransmissions.size(), 2u);
}

TEST_F(TrackerTest, RetransmissionSenderIsTheServerWhenItResends) {
  Handshake(0, 10 * kMs);
  S(20 * kMs, {.flags = kAck | kPsh, .seq = 9001, .ack = 1001, .payload = 500});
  S(220 * kMs, {.flags = kAck | kPsh, .seq = 9001, .ack = 1001, .payload = 500});
  ASSERT_EQ(sink_.retransmissions.size(), 1u);
  EXPECT_EQ(sink_.retransmissions[0].src, kServerNode);
  EXPECT_EQ(sink_.retransmissions[0].dst, kClientNode);
  EXPECT_EQ(sink_.retransmissions[0].bytes, 540u);
}

TEST_F(TrackerTest, MidStreamFlowStartsClean) {
  // Segments already in flight when capture started arrive in order: none is a retransmission.
  for (uint32_t i = 0; i < 5; ++i) {
    S(i * kMs, {.flags = kAck | kPsh, .seq = 123456 + i * 100, .ack = 1, .payload = 100});
    C(i * kMs + 1, {.flags = kAck, .seq = 1, .ack = 123556 + i * 100});
  }
  EXPECT_TRUE(sink_.retransmissions.empty());
  EXPECT_TRUE(sink_.rtt.empty());
  S(10 * kMs, {.flags = kAck | kPsh, .seq = 123456 + 300, .ack = 1, .payload = 100});
  EXPECT_EQ(sink_.retransmissions.size(), 1u);
}

TEST_F(TrackerTest, PureAcksKeepAlivesAndRstsDoNotCreateEntries) {
  C(0, {.flags = kAck, .seq = 1, .ack = 1});
  C(1, {.flags = kRst, .seq = 1});
  C(2, {.flags = kAck | kFin, .seq = 1, .ack = 1});
  EXPECT_EQ(tracker_.entries(), 0u);
  C(3, {.flags = kAck | kPsh, .seq = 1, .ack = 1, .payload = 1});
  EXPECT_EQ(tracker_.entries(), 1u);
  // A zero-length keepalive at seq - 1 carries no sequence space: not a retransmission.
  C(kSecond, {.flags = kAck, .seq = 1, .ack = 1});
  EXPECT_TRUE(sink_.retransmissions.empty());
}

TEST_F(TrackerTest, FinFromBothSidesOrRstRemovesTheConnection) {
  Handshake(0, kMs);
  EXPECT_EQ(tracker_.entries(), 1u);
  C(10 * kMs, {.flags = kAck | kFin, .seq = 1001, .ack = 9001});
  EXPECT_EQ(tracker_.entries(), 1u);  // half-closed: the server may still send
  S(11 * kMs, {.flags = kAck | kFin, .seq = 9001, .ack = 1002});
  EXPECT_EQ(tracker_.entries(), 0u);
  C(12 * kMs, {.flags = kAck, .seq = 1002, .ack = 9002});
  EXPECT_EQ(tracker_.entries(), 0u);

  Handshake(20 * kMs, kMs, 5000, 6000);
  EXPECT_EQ(tracker_.entries(), 1u);
  S(30 * kMs, {.flags = kRst, .seq = 6001});
  EXPECT_EQ(tracker_.entries(), 0u);
  EXPECT_EQ(tracker_.evictions(), 0u);
  EXPECT_EQ(tracker_.expired(), 0u);
}

TEST_F(TrackerTest, PortReuseWithANewIsnStartsAFreshConnection) {
  Handshake(0, kMs, 1000, 9000);
  C(2 * kMs, {.flags = kAck | kPsh, .seq = 1001, .ack = 9001, .payload = 100});
  // The old connection vanished without FIN (timed out elsewhere); the tuple is reused.
  Handshake(10 * kSecond, 2 * kMs, 500, 8000);
  C(10 * kSecond + 5 * kMs, {.flags = kAck | kPsh, .seq = 501, .ack = 8001, .payload = 100});
  EXPECT_TRUE(sink_.retransmissions.empty());
  ASSERT_EQ(sink_.rtt.size(), 2u);
  EXPECT_DOUBLE_EQ(sink_.rtt[1].seconds, 0.002);
}

TEST_F(TrackerTest, SameConnectionOnTwoInterfacesIsTrackedApart) {
  // A packet crossing a veth and the uplink is captured twice: that is no retransmission.
  for (uint32_t iface : {0u, 1u}) {
    Send(0, kClient, kServer, {.flags = kAck | kPsh, .seq = 1, .ack = 1, .payload = 100}, iface);
  }
  EXPECT_TRUE(sink_.retransmissions.empty());
  EXPECT_EQ(tracker_.entries(), 2u);
}

TEST_F(TrackerTest, FullTableEvictsTheLeastRecentlySeen) {
  TcpConfig config;
  config.max_connections = 16;
  config.idle_timeout = std::chrono::seconds(3600);
  Rebind(kClientNode, config);
  auto client = [](uint16_t port) { return Endpoint{kClient.address, port, kClientNode}; };
  for (uint16_t i = 0; i < 16; ++i) {
    Send(i * kSecond, client(40000 + i), kServer, {.flags = kAck | kPsh, .seq = 1, .payload = 10});
  }
  // Touch the first one so the second becomes the oldest (the order is kept to the second).
  Send(100 * kSecond, client(40000), kServer, {.flags = kAck | kPsh, .seq = 11, .payload = 10});
  EXPECT_EQ(tracker_.entries(), 16u);
  Send(200 * kSecond, client(50000), kServer, {.flags = kAck | kPsh, .seq = 1, .payload = 10});
  EXPECT_EQ(tracker_.entries(), 16u);
  EXPECT_EQ(tracker_.evictions(), 1u);
  // The first connection kept its state: a resend is still recognised.
  Send(201 * kSecond, client(40000), kServer, {.flags = kAck | kPsh, .seq = 11, .payload = 10});
  EXPECT_EQ(sink_.retransmissions.size(), 1u);
  // The evicted second one starts again mid-stream: its resend is not recognised.
  Send(202 * kSecond, client(40001), kServer, {.flags = kAck | kPsh, .seq = 1, .payload = 10});
  EXPECT_EQ(sink_.retransmissions.size(), 1u);
  EXPECT_EQ(tracker_.evictions(), 2u);
}

TEST_F(TrackerTest, IdleConnectionsExpire) {
  TcpConfig config;
  config.idle_timeout = std::chrono::seconds(300);
  Rebind(kClientNode, config);
  Handshake(0, kMs);
  auto client = [](uint16_t port) { return Endpoint{kClient.address, port, kClientNode}; };
  Send(200 * kSecond, client(41000), kServer, {.flags = kAck | kPsh, .seq = 1, .payload = 10});
  EXPECT_EQ(tracker_.entries(), 2u);
  EXPECT_EQ(tracker_.expired(), 0u);
  Send(301 * kSecond, client(41000), kServer, {.flags = kAck | kPsh, .seq = 11, .payload = 10});
  EXPECT_EQ(tracker_.entries(), 1u);
  EXPECT_EQ(tracker_.expired(), 1u);
  EXPECT_EQ(tracker_.evictions(), 0u);
}

TEST_F(TrackerTest, BackwardsCaptureClockGivesNoSample) {
  C(10 * kMs, {.flags = kSyn, .seq = 1});
  S(5 * kMs, {.flags = kSyn | kAck, .seq = 1, .ack = 2});
  EXPECT_TRUE(sink_.rtt.empty());
  EXPECT_EQ(tracker_.negative_samples(), 1u);
}

// Two trackers on one config: one tracks every packet at once, the other through Submit.
struct AtOnceAndBatched {
  explicit AtOnceAndBatched(const TcpConfig& config, NodeId self) {
    at_once.Rebind(config, self);
    batched.Rebind(config, self);
  }
  void Feed(const PacketInfo& info, const PacketContext& context) {
    at_once.OnPacket(info, context);
    batched.Submit(info, context);
  }
  // Everything either reported, in order, and the table's counters, after a flush.
  void ExpectSameResults() {
    batched.Flush();
    ASSERT_EQ(batched_sink.rtt.size(), at_once_sink.rtt.size());
    for (size_t i = 0; i < at_once_sink.rtt.size(); ++i) {
      const RttSample &a = at_once_sink.rtt[i], &b = batched_sink.rtt[i];
      EXPECT_EQ(std::tie(a.role, a.client, a.server, a.kind, a.seconds),
                std::tie(b.role, b.client, b.server, b.kind, b.seconds))
          << "sample " << i;
    }
    ASSERT_EQ(batched_sink.retransmissions.size(), at_once_sink.retransmissions.size());
    for (size_t i = 0; i < at_once_sink.retransmissions.size(); ++i) {
      const Retransmission &a = at_once_sink.retransmissions[i],
                           &b = batched_sink.retransmissions[i];
      EXPECT_EQ(std::tie(a.interface_id, a.role, a.src, a.dst, a.bytes),
                std::tie(b.interface_id, b.role, b.src, b.dst, b.bytes))
          << "retransmission " << i;
    }
    EXPECT_EQ(batched.entries(), at_once.entries());
    EXPECT_EQ(batched.evictions(), at_once.evictions());
    EXPECT_EQ(batched.expired(), at_once.expired());
    EXPECT_EQ(batched.negative_samples(), at_once.negative_samples());
  }
  Recorder at_once_sink, batched_sink;
  TcpTracker at_once{TcpConfig{}, at_once_sink};
  TcpTracker batched{TcpConfig{}, batched_sink};
};

TEST(TrackerSubmit, HoldsPacketsUntilTheWindowFillsOrAFlush) {
  AtOnceAndBatched t({}, kClientNode);
  t.Feed(Info(kClient, kServer, {.flags = kSyn, .seq = 1}),
         {0, 0, kRole, kClientNode, kServerNode});
  t.Feed(Info(kServer, kClient, {.flags = kSyn | kAck, .seq = 1, .ack = 2}),
         {5 * kMs, 0, kRole, kServerNode, kClientNode});
  EXPECT_EQ(t.at_once_sink.rtt.size(), 1u);
  EXPECT_TRUE(t.batched_sink.rtt.empty());
  EXPECT_EQ(t.batched.entries(), 0u);
  t.ExpectSameResults();
  EXPECT_EQ(t.batched_sink.rtt.size(), 1u);
  EXPECT_EQ(t.batched.entries(), 1u);
}

// A new connection in a full table evicts within the window, so packets behind it that were
// already looked up must see the table as it is when their turn comes.
TEST(TrackerSubmit, EvictionsInsideOneWindowAreSeenByThePacketsBehind) {
  TcpConfig config;
  config.max_connections = 2;
  AtOnceAndBatched t(config, kClientNode);
  auto client = [](uint16_t port) { return Endpoint{kClient.address, port, kClientNode}; };
  auto to_server = [&](int64_t t_ns, uint16_t port, Segment s) {
    t.Feed(Info(client(port), kServer, s), {t_ns, 0, kRole, kClientNode, kServerNode});
  };
  auto to_client = [&](int64_t t_ns, uint16_t port, Segment s) {
    t.Feed(Info(kServer, client(port), s), {t_ns, 0, kRole, kServerNode, kClientNode});
  };
  static_assert(TcpTracker::kWindow >= 7, "the sequence below should fit one window");
  to_server(0, 1, {.flags = kSyn, .seq = 10});                            // A
  to_server(1 * kMs, 2, {.flags = kSyn, .seq = 20});                      // B
  to_server(2 * kMs, 3, {.flags = kSyn, .seq = 30});                      // C evicts A
  to_client(3 * kMs, 1, {.flags = kSyn | kAck, .seq = 5, .ack = 11});     // A again evicts B
  to_client(4 * kMs, 2, {.flags = kSyn | kAck, .seq = 6, .ack = 21});     // B again evicts C
  to_client(5 * kMs, 3, {.flags = kAck, .seq = 7, .ack = 31});            // C is gone: ignored
  to_client(6 * kMs, 1, {.flags = kAck | kPsh, .seq = 5, .payload = 1});  // overlaps A's SYN
  EXPECT_EQ(t.batched.evictions(), 0u);                                   // all still held
  t.ExpectSameResults();
  EXPECT_EQ(t.batched.evictions(), 3u);
  EXPECT_EQ(t.batched.entries(), 2u);
  EXPECT_EQ(t.batched_sink.retransmissions.size(), 1u);
}

// Random traffic over more connections than the table holds, with retransmissions, echoed
// timestamps, handshakes, FINs, RSTs, idle gaps and a clock that sometimes steps back: every
// eviction, expiry and removal happens with other packets in the window.
TEST(TrackerSubmit, RandomTrafficGivesTheResultsOfTrackingEachPacketAtOnce) {
  for (const NodeId self : {kClientNode, kServerNode, kOtherNode}) {
    TcpConfig config;
    config.max_connections = 8;
    config.idle_timeout = std::chrono::seconds(2);
    config.timestamp_samples_per_second = 50;
    AtOnceAndBatched t(config, self);
    std::mt19937 rng(1234 + self);
    auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    constexpr int kConnections = 20;
    struct Half {
      uint32_t seq = 0;
      uint32_t ts = 0;
    };
    std::vector<std::array<Half, 2>> halves(kConnections);
    int64_t now = 0;
    for (int i = 0; i < 100000; ++i) {
      now += pick(4) == 0 ? pick(400) * kMs : pick(2000) * 1000;
      if (pick(3000) == 0) now += 3 * kSecond;  // past the idle timeout
      const uint32_t c = pick(kConnections);
      const Endpoint client{IpAddress::FromV4(0x64400002 + c % 3), static_cast<uint16_t>(40000 + c),
                            kClientNode};
      const bool from_client = pick(2) == 0;
      Half& h = halves[c][from_client ? 0 : 1];
      const Half& other = halves[c][from_client ? 1 : 0];
      static constexpr uint8_t kFlags[] = {kSyn,        kSyn | kAck, kAck,        kAck, kAck | kPsh,
                                           kAck | kPsh, kAck | kPsh, kFin | kAck, kRst};
      Segment s;
      s.flags = kFlags[pick(sizeof kFlags)];
      if (s.flags == kSyn || s.flags == (kSyn | kAck)) {
        if (pick(3) == 0) h.seq = static_cast<uint32_t>(rng());  // a new ISN: port reuse
      }
      s.payload = (s.flags & kPsh) != 0 ? 1 + pick(1400) : 0;
      s.seq = pick(10) == 0 ? h.seq - pick(3000) : h.seq;  // sometimes a retransmission
      s.ack = other.seq;
      if (pick(10) != 0) {
        s.timestamps = true;
        if (pick(3) != 0) h.ts += 1 + pick(5);
        s.ts_val = h.ts;
        s.ts_ecr = other.ts - (pick(4) == 0 ? pick(3) : 0);
      }
      h.seq = s.seq + s.payload + ((s.flags & (kSyn | kFin)) != 0 ? 1 : 0);
      const int64_t at = pick(500) == 0 ? now - 50 * kMs : now;  // a step back now and then
      const Endpoint& from = from_client ? client : kServer;
      const Endpoint& to = from_client ? kServer : client;
      t.Feed(Info(from, to, s), {at, c % 2, kRole, from.node, to.node});
      if (pick(5000) == 0) t.batched.Flush();  // a flush anywhere changes nothing
    }
    t.ExpectSameResults();
    // The traffic did exercise what the window must get right.
    EXPECT_GT(t.at_once.evictions(), 100u);
    EXPECT_GT(t.at_once.expired(), 10u);
    EXPECT_GT(t.at_once_sink.retransmissions.size(), 100u);
    EXPECT_GT(t.at_once_sink.rtt.size(), 100u);
  }
}

TEST(SeqLess, IsWraparoundSafe) {
  EXPECT_TRUE(SeqLess(1, 2));
  EXPECT_FALSE(SeqLess(2, 1));
  EXPECT_FALSE(SeqLess(5, 5));
  EXPECT_TRUE(SeqLess(0xFFFFFFF0u, 0x10u));
  EXPECT_FALSE(SeqLess(0x10u, 0xFFFFFFF0u));
}

}  // namespace
}  // namespace meshflow::flow::tcp
