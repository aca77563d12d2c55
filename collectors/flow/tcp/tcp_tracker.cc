#include "collectors/flow/tcp/tcp_tracker.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace meshflow::flow::tcp {
namespace {

using tcp_flags::kAck;
using tcp_flags::kFin;
using tcp_flags::kRst;
using tcp_flags::kSyn;

// An armed TSval whose echo never came (the segment and all its retransmissions were lost, or
// the peer stopped echoing) is given up after this long, above the histogram's 10 s top bucket.
constexpr int64_t kArmedTimeoutNs = 20'000'000'000;

// How stale the table's recency order may be: eviction picks the least recently seen
// connection to the second, and a busy connection moves in the list once a second, not on
// every packet.
constexpr int64_t kMoveGranularityNs = 1'000'000'000;

int64_t ArmInterval(const TcpConfig& config) {
  return static_cast<int64_t>(std::llround(1e9 / config.timestamp_samples_per_second));
}

uint64_t RandomOddSeed() {
  std::random_device random;
  return (uint64_t{random()} << 32 | random()) | 1;
}

}  // namespace

static_assert(sizeof(ConnectionTable<TcpTracker::State>::Entry) == 128,
              "a connection's entry should stay two cache lines");

TcpTracker::TcpTracker(const TcpConfig& config, ResultSink& sink, FlowAccounts* flows)
    : sink_(sink),
      flows_(flows),
      table_(static_cast<size_t>(config.max_connections), kMoveGranularityNs),
      endpoint_seed_(RandomOddSeed()),
      idle_ns_(config.idle_timeout.count()),
      arm_interval_ns_(ArmInterval(config)) {}

void TcpTracker::Rebind(const TcpConfig& config, NodeId self) {
  Flush();
  self_ = self;
  idle_ns_ = config.idle_timeout.count();
  arm_interval_ns_ = ArmInterval(config);
  table_.Resize(static_cast<size_t>(config.max_connections));
  entries_.store(0, std::memory_order_relaxed);
}

void TcpTracker::Submit(const PacketInfo& info, const PacketContext& context) {
  if (!info.has_tcp_header) return;
  if (submitted_ - processed_ == kWindow) Process(pending_[processed_++ % kWindow]);
  // Step 1: hash the connection's key and fetch the index cells it starts probing at.
  Pending& p = pending_[submitted_ % kWindow];
  Segment& seg = p.segment;
  seg.context = context;
  seg.src = info.src;
  seg.dst = info.dst;
  seg.ip_bytes = info.ip_bytes;
  seg.seq = info.tcp_seq;
  seg.payload_bytes = info.tcp_payload_bytes;
  seg.ts_val = info.ts_val;
  seg.ts_ecr = info.ts_ecr;
  seg.src_port = info.src_port;
  seg.dst_port = info.dst_port;
  seg.flags = info.tcp_flags;
  seg.has_timestamp = info.has_tcp_timestamp;
  p.at = Table::At(MakeKey(info.src, info.src_port, info.dst, info.dst_port, context.interface_id,
                           p.dir, endpoint_seed_));
  table_.PrefetchIndex(p.at);
  ++submitted_;
  // Step 2, kProbeAhead packets later: probe the index (now in cache) and fetch the entry.
  if (submitted_ - processed_ > kProbeAhead) {
    Pending& q = pending_[(submitted_ - 1 - kProbeAhead) % kWindow];
    table_.Probe(q.at);
    table_.Prefetch(q.at);
    // And what the eviction a new connection in a full table makes will touch.
    if (table_.full()) table_.PrefetchOldest();
  }
}

// Step 3: the state machine, in submission order. Only this step changes the table. Flattened:
// calls to the steps cost more than the steps on the common path.
[[gnu::flatten]] void TcpTracker::Process(Pending& p) {
  Segment& seg = p.segment;
  const int64_t now = seg.context.timestamp_ns;
  // Expiry first, as it would have run before this packet's lookup.
  if (const size_t expired = table_.ExpireBefore(now - idle_ns_); expired != 0) [[unlikely]] {
    Add(expired_, expired);
  }
  // The probe is a hint, checked by Use: an insert, an eviction, an expiry or a removal since
  // may have moved the entry, taken its slot or added it.
  const Direction dir = p.dir;
  const uint8_t flags = seg.flags;
  Table::Entry* entry = table_.Use(p.at, now);
  // Flow accounting first: every packet counts, tracked or not. A connection's series for this
  // direction, once known, spares the classification.
  SeriesCounters* series = nullptr;
  bool lasting = false;
  if (!seg.context.classified) {
    if (entry != nullptr) series = entry->state.series[dir];
    if (series == nullptr) [[unlikely]] {
      const FlowAccounts::Classified classified = Classify(seg);
      series = classified.series;
      lasting = classified.lasting;
    }
    series->Count(seg.ip_bytes, (flags & (kSyn | kAck)) == kSyn);
  }
  if (entry == nullptr) {
    // Only a SYN or a data segment starts tracking: the final ACK after both FINs, a RST or a
    // stray ACK would otherwise leave an entry behind that lingers until the idle timeout.
    if ((flags & kRst) != 0 || ((flags & kSyn) == 0 && seg.payload_bytes == 0)) return;
    bool evicted = false;
    entry = &table_.Insert(p.at, now, evicted);
    if (evicted) Add(evictions_, 1);
    StartConnection(entry->state, seg, dir);
  } else if ((flags & (kSyn | kAck)) == kSyn) {
    // A SYN on a known tuple is a retry unless its ISN differs: then the port was reused.
    const HalfState& h = entry->state.half[dir];
    if ((h.flags & HalfState::kHasHigh) != 0 && h.high != seg.seq + 1) {
      // The role may depend on which side opens (both ports may have one): classify again.
      if (!seg.context.classified) Classify(seg);
      State& old = entry->state;
      SeriesCounters* const series_of[2] = {old.series[0], old.series[1]};
      old = State{};
      std::copy(std::begin(series_of), std::end(series_of), old.series);
      StartConnection(entry->state, seg, dir);
    }
  }
  State& s = entry->state;
  if (lasting) s.series[dir] = series;
  Handshake(s, seg, dir);
  if (seg.has_timestamp) Timestamps(s, seg, dir);
  Sequence(s, seg, dir);
  if ((flags & kFin) != 0) s.half[dir].flags |= HalfState::kFin;
  if ((flags & kRst) != 0 || (s.half[0].flags & s.half[1].flags & HalfState::kFin) != 0) {
    table_.Remove(*entry);
  }
  entries_.store(table_.size(), std::memory_order_relaxed);
}

FlowAccounts::Classified TcpTracker::Classify(Segment& seg) {
  PacketContext& c = seg.context;
  const FlowAccounts::Classified r =
      flows_->ClassifyTcp(seg.src, seg.src_port, seg.dst, seg.dst_port, c.interface_id);
  c.role = r.role;
  c.src_node = r.src_node;
  c.dst_node = r.dst_node;
  c.classified = true;
  return r;
}

void TcpTracker::StartConnection(State& s, const Segment& seg, Direction dir) {
  s.role = seg.context.role;
  s.node[dir] = seg.context.src_node;
  s.node[dir ^ 1] = seg.context.dst_node;
  s.half[dir].from_self = seg.context.src_node == self_;
  s.half[dir ^ 1].from_self = seg.context.dst_node == self_;
  // An endpoint times the TSvals it sends; a node the connection passes through times both.
  const bool endpoint = s.half[0].from_self | s.half[1].from_self;
  for (HalfState& h : s.half) {
    if (!endpoint || h.from_self) h.flags |= HalfState::kMayArm;
  }
  const uint8_t syn_ack = seg.flags & (kSyn | kAck);
  if (syn_ack == kSyn) {
    s.client_dir = dir;
  } else if (syn_ack == (kSyn | kAck)) {
    s.client_dir = dir ^ 1;
  } else {
    // Seen mid-stream: the client is the side on the higher (ephemeral) port, the server the
    // side on the service port. Equal ports: the sender of the first segment seen.
    s.client_dir = seg.src_port >= seg.dst_port ? dir : dir ^ 1;
  }
}

void TcpTracker::Handshake(State& s, const Segment& seg, Direction dir) {
  const int64_t now = seg.context.timestamp_ns;
  const uint8_t syn_ack = seg.flags & (kSyn | kAck);
  if (syn_ack == kSyn) {
    if (dir != s.client_dir) return;  // simultaneous open: not timed
    s.handshake_ns = now;             // a retry restarts the clock (see the header)
    s.flags = State::kHandshakeOpen;
    return;
  }
  // Read only on the two branches that use it: most segments take neither.
  const HalfState& client = s.half[s.client_dir];
  if (syn_ack == (kSyn | kAck)) {
    if (dir == s.client_dir) return;
    if (client.from_self) {
      if ((s.flags & State::kHandshakeOpen) != 0) {
        EmitRtt(s, RttKind::kHandshake, now - s.handshake_ns);
      }
      s.flags = 0;
    } else if (s.half[s.client_dir ^ 1].from_self) {
      // The server times from the latest SYN/ACK, even without having seen the SYN.
      s.handshake_ns = now;
      s.flags = State::kHandshakeOpen | State::kSynAckSeen;
    } else {
      s.flags |= State::kSynAckSeen;
    }
    return;
  }
  // The client's first ACK after the SYN/ACK completes the handshake.
  constexpr uint8_t kReady = State::kHandshakeOpen | State::kSynAckSeen;
  if ((s.flags & kReady) != kReady || (seg.flags & kAck) == 0 || dir != s.client_dir) {
    return;
  }
  if (!client.from_self) EmitRtt(s, RttKind::kHandshake, now - s.handshake_ns);
  s.flags = 0;
}

void TcpTracker::Timestamps(State& s, const Segment& seg, Direction dir) {
  const int64_t now = seg.context.timestamp_ns;
  const auto bit = [](bool b) { return static_cast<unsigned>(b); };
  // Timing the other direction's TSval ends when this segment echoes it, or a later one (the
  // timed segment was acknowledged together with later ones: its own echo never comes).
  // Without a branch: whether the other direction is being timed is a coin toss to a
  // predictor; that an echo arrives is not (a few per second per connection). TSecr is only
  // meaningful on segments with ACK set (RFC 7323 3.2).
  HalfState& reverse = s.half[dir ^ 1];
  const unsigned timing =
      bit((seg.flags & kAck) != 0) & bit((reverse.flags & HalfState::kArmed) != 0);
  const auto ahead = static_cast<int32_t>(seg.ts_ecr - reverse.armed_ts_val);
  reverse.flags &= static_cast<uint8_t>(~(HalfState::kArmed * (timing & bit(ahead >= 0))));
  if ((timing & bit(ahead == 0)) != 0) [[unlikely]] {
    const int64_t rtt = now - s.armed_ns[dir ^ 1];
    if (rtt < 0) {
      Add(negative_samples_, 1);
    } else if (s.half[0].from_self | s.half[1].from_self) {
      EmitRtt(s, RttKind::kTimestamp, rtt);
    } else {
      // Passing traffic: each direction's echo delay is the half-trip on that side of us.
      reverse.half_rtt_us = static_cast<uint32_t>(std::min<int64_t>(rtt / 1000, UINT32_MAX));
      reverse.flags |= HalfState::kHasHalfRtt;
      const HalfState& other = s.half[dir];
      if ((dir ^ 1) == s.client_dir && (other.flags & HalfState::kHasHalfRtt) != 0) {
        EmitRtt(s, RttKind::kTimestamp, rtt + int64_t{other.half_rtt_us} * 1000);
      }
    }
  }

  HalfState& h = s.half[dir];
  const bool first_in_direction = (h.flags & HalfState::kHasTsVal) == 0;
  if (!first_in_direction && seg.ts_val == h.last_ts_val) return;
  h.last_ts_val = seg.ts_val;
  h.flags |= HalfState::kHasTsVal;
  // Whether to time this TSval. The reasons not to depend on the packet's direction and kind,
  // and whether a connection arms is a coin toss too, so they are combined without branches:
  //  - A node times only what it sends itself (kMayArm): the reverse echo would measure its
  //    own ACK delay.
  //  - Not while a TSval is being timed (unless its echo is overdue), nor within the
  //    per-connection rate limit.
  //  - The first TSval of a flow seen mid-stream may have been sent before capture started, so
  //    its first-seen time is unknown; a SYN's is not.
  //  - Only segments the peer must acknowledge are timed: a pure ACK's TSval is echoed
  //    whenever the peer next has something to send, which may be seconds later.
  int64_t& armed_ns = s.armed_ns[dir];
  const int64_t since = now - armed_ns;
  const unsigned busy = bit((h.flags & HalfState::kEverArmed) != 0) &
                        ((bit((h.flags & HalfState::kArmed) != 0) & bit(since < kArmedTimeoutNs)) |
                         bit(since < arm_interval_ns_));
  const unsigned mid_stream_first = bit(first_in_direction) & bit((seg.flags & kSyn) == 0);
  const unsigned no_ack_due = bit(seg.payload_bytes == 0) & bit((seg.flags & (kSyn | kFin)) == 0);
  const unsigned arm =
      bit((h.flags & HalfState::kMayArm) != 0) & ((busy | mid_stream_first | no_ack_due) ^ 1);
  // The stores as masks: a conditional store compiles to a branch.
  const uint32_t keep32 = arm - 1;  // all ones when not arming
  const uint64_t keep64 = uint64_t{arm} - 1;
  h.armed_ts_val = (h.armed_ts_val & keep32) | (seg.ts_val & ~keep32);
  armed_ns = static_cast<int64_t>((static_cast<uint64_t>(armed_ns) & keep64) |
                                  (static_cast<uint64_t>(now) & ~keep64));
  h.flags |= static_cast<uint8_t>((HalfState::kArmed | HalfState::kEverArmed) & ~keep32);
}

void TcpTracker::Sequence(State& s, const Segment& seg, Direction dir) {
  // SYN and FIN occupy one sequence number each, so their retries count as retransmissions,
  // as they do in the kernel's TcpRetransSegs.
  const uint32_t length =
      seg.payload_bytes + ((seg.flags & kSyn) != 0 ? 1 : 0) + ((seg.flags & kFin) != 0 ? 1 : 0);
  HalfState& h = s.half[dir];
  const uint32_t end = seg.seq + length;
  if ((h.flags & HalfState::kHasHigh) == 0) {
    if (length == 0) return;
    // The first segment seen sets the mark: a flow seen mid-stream starts clean.
    h.high = end;
    h.flags |= HalfState::kHasHigh;
    return;
  }
  // Pure ACKs (length 0) and data interleave unpredictably: no branch on which this is.
  const unsigned carries = length != 0;
  if ((carries & static_cast<unsigned>(SeqLess(seg.seq, h.high))) != 0) {
    sink_.OnRetransmission(
        {seg.context.interface_id, s.role, s.node[dir], s.node[dir ^ 1], seg.ip_bytes});
  }
  const uint32_t advance = 0u - (carries & static_cast<unsigned>(SeqLess(h.high, end)));
  h.high = (end & advance) | (h.high & ~advance);
}

void TcpTracker::EmitRtt(const State& s, RttKind kind, int64_t rtt_ns) {
  if (rtt_ns < 0) {
    Add(negative_samples_, 1);
    return;
  }
  sink_.OnRtt({s.role, s.node[s.client_dir], s.node[s.client_dir ^ 1], kind,
               static_cast<double>(rtt_ns) * 1e-9});
}

}  // namespace meshflow::flow::tcp
