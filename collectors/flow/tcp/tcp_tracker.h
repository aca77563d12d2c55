#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "collectors/flow/classifier.h"
#include "collectors/flow/decoder.h"
#include "collectors/flow/flow_accounts.h"
#include "collectors/flow/flow_table.h"
#include "collectors/flow/tcp/connection_table.h"
#include "common/config/config.h"

namespace meshflow::flow::tcp {

enum class RttKind : uint8_t { kHandshake, kTimestamp };

// How the flow pipeline classified one TCP packet, plus its capture time.
struct PacketContext {
  int64_t timestamp_ns = 0;
  uint32_t interface_id = 0;
  RoleId role = Classifier::kOther;
  NodeId src_node = NodeTable::kExternal;
  NodeId dst_node = NodeTable::kExternal;
  // False: the packet is neither classified (role and nodes are ignored) nor counted in its
  // flow series yet, and the tracker does both through the accounting layer below it
  // (FlowAccounts::ClassifyTcp, see Submit). A tracked connection remembers each direction's
  // flow series, so only its first packet each way is classified: the rest skip the classifier
  // and the flow table's lookup, which the connection table's lookup replaces.
  bool classified = true;
};

// One round-trip time measured from a connection; client is the side that opened it.
struct RttSample {
  RoleId role = Classifier::kOther;
  NodeId client = NodeTable::kExternal;
  NodeId server = NodeTable::kExternal;
  RttKind kind = RttKind::kHandshake;
  double seconds = 0;
};

// One segment that carried sequence space already seen in its direction (data, SYN or FIN).
struct Retransmission {
  uint32_t interface_id = 0;
  RoleId role = Classifier::kOther;
  NodeId src = NodeTable::kExternal;  // the sender of the retransmitted segment
  NodeId dst = NodeTable::kExternal;
  uint32_t bytes = 0;  // IP bytes, as in meshflow_flow_bytes_total
};

// Where the tracker's results go (TcpSeries aggregates them; tests record them).
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  virtual void OnRtt(const RttSample& sample) = 0;
  virtual void OnRetransmission(const Retransmission& retransmission) = 0;
};

// Per-connection TCP state machine on the capture thread: handshake RTT, pping-style timestamp
// RTT and retransmissions, with a bounded LRU connection table. Plain data in, plain data out.
//
// Which RTT is measured depends on where this node sits (NodeTable::self()):
//   - client side: SYN -> SYN/ACK; server side: SYN/ACK -> ACK; neither (traffic passing
//     through, a bridge): SYN -> first ACK, which is the whole round trip from any point on the
//     path.
//   - timestamps: only TSvals this node sent are timed, since the reverse ones measure our own
//     stack's ACK delay; passing traffic adds the two directions' latest half-trips.
// A retried SYN (or SYN/ACK) restarts the handshake clock: the earlier one was most likely lost,
// and skipping retried handshakes as Karn's rule does would hide exactly the lossy links. The
// sample is only ambiguous when the RTT exceeds the 1 s initial RTO.
class TcpTracker {
 public:
  // `flows` classifies and counts the packets submitted unclassified; it may be null when none
  // are.
  TcpTracker(const TcpConfig& config, ResultSink& sink, FlowAccounts* flows = nullptr);

  // Binds to a classifier's ids (after a reconfiguration): connection state holding old ids is
  // dropped and tracking restarts mid-stream. `self` is this node's id in that classifier.
  // Packets submitted before are tracked first, under the old binding.
  void Rebind(const TcpConfig& config, NodeId self);

  // Tracks one packet now: anything submitted before it is tracked first.
  void OnPacket(const PacketInfo& info, const PacketContext& context) {
    Submit(info, context);
    Flush();
  }

  // Tracks one packet a few packets later, for speed: its connection's entry is looked up in
  // steps while the packets after it are decoded and classified, so the lookup's cache misses
  // overlap other work instead of stalling it. Results, counters and the order of every table
  // change are those of OnPacket for each packet in turn, only delayed by up to kWindow TCP
  // packets: whoever reads them must Flush first (at the end of input, when capture goes
  // idle, before a Rebind). Only what the tracker needs of the packet is kept.
  // An unclassified packet (context.classified false) is classified and counted in its flow
  // series when it is tracked, with the classifier bound to `flows` at that moment: a caller
  // binding another must Flush first.
  void Submit(const PacketInfo& info, const PacketContext& context);
  // Tracks every submitted packet.
  void Flush() {
    while (processed_ != submitted_) Process(pending_[processed_++ % kWindow]);
  }

  // How many TCP packets Submit holds back at most, and how far ahead of its tracking a
  // packet's index cells are read (each step is a fetch from memory started a few packets
  // before it is needed).
  static constexpr uint32_t kWindow = 8;
  static constexpr uint32_t kProbeAhead = 4;

  size_t entries() const { return entries_.load(std::memory_order_relaxed); }
  // Connections dropped to make room for a new one (the table was full).
  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
  // Connections dropped after flows.tcp.idle_timeout without a packet.
  uint64_t expired() const { return expired_.load(std::memory_order_relaxed); }
  // Timestamp echoes whose RTT came out negative (capture clock stepped back); not sampled.
  uint64_t negative_samples() const { return negative_samples_.load(std::memory_order_relaxed); }

  // Public for the layout check in tcp_tracker.cc; nothing outside the tracker uses it.
  // Packed so a connection's entry fits two cache lines (see ConnectionTable).
  struct HalfState {
    static constexpr uint8_t kHasHigh = 1;     // `high` is valid
    static constexpr uint8_t kHasTsVal = 2;    // `last_ts_val` is valid
    static constexpr uint8_t kFin = 4;         // this direction sent FIN
    static constexpr uint8_t kArmed = 8;       // `armed_ts_val` is being timed
    static constexpr uint8_t kEverArmed = 16;  // State::armed_ns of this direction is valid
    static constexpr uint8_t kHasHalfRtt = 32;
    static constexpr uint8_t kMayArm = 64;  // this node times TSvals sent this way (see Timestamps)
    uint32_t high = 0;                      // one past the highest sequence number sent
    uint32_t last_ts_val = 0;               // latest TSval seen in this direction
    uint32_t armed_ts_val = 0;
    uint32_t half_rtt_us = 0;  // latest echo delay in this direction (passing traffic)
    uint8_t flags = 0;
    // Whether this node sends in this direction: fixed for the connection's life (a Rebind
    // drops every connection), so packets read it instead of comparing node ids.
    bool from_self = false;
  };
  struct State {
    static constexpr uint8_t kHandshakeOpen = 1;  // `handshake_ns` is valid and not yet timed
    static constexpr uint8_t kSynAckSeen = 2;
    // Client side and passing traffic: the latest SYN; server side: the latest SYN/ACK.
    int64_t handshake_ns = 0;
    // Per direction: when the latest timed TSval was first seen; the rate limit. Outside
    // HalfState, whose 4-byte alignment then packs it.
    int64_t armed_ns[2] = {0, 0};
    // Per direction: the flow series its unclassified packets count in, once known (see
    // PacketContext::classified); kept when a reused port restarts the state, as the tuple is the
    // same.
    SeriesCounters* series[2] = {nullptr, nullptr};
    RoleId role = Classifier::kOther;
    NodeId node[2] = {NodeTable::kExternal, NodeTable::kExternal};
    Direction client_dir = 0;  // the direction the client sends in
    uint8_t flags = 0;
    HalfState half[2];
  };

 private:
  using Table = ConnectionTable<State>;

  // What the state machine reads of one TCP packet: copied out of the decoder's PacketInfo
  // and the pipeline's classification, so it outlives the captured bytes while it waits.
  struct Segment {
    PacketContext context;
    IpAddress src;  // for the classification of an unclassified packet
    IpAddress dst;
    uint32_t ip_bytes = 0;
    uint32_t seq = 0;
    uint32_t payload_bytes = 0;
    uint32_t ts_val = 0;
    uint32_t ts_ecr = 0;
    uint16_t src_port = 0;
    uint16_t dst_port = 0;
    uint8_t flags = 0;
    bool has_timestamp = false;
  };
  // A submitted packet: its segment, its direction in the connection and where the table had
  // its entry when it was last probed.
  struct Pending {
    Segment segment;
    Table::Location at;
    Direction dir;
  };
  static_assert((kWindow & (kWindow - 1)) == 0 && kProbeAhead < kWindow);

  void Process(Pending& p);
  // Fills an unclassified segment's role and nodes; the series it counts in is returned.
  FlowAccounts::Classified Classify(Segment& seg);
  void StartConnection(State& s, const Segment& seg, Direction dir);
  void Handshake(State& s, const Segment& seg, Direction dir);
  void Timestamps(State& s, const Segment& seg, Direction dir);
  void Sequence(State& s, const Segment& seg, Direction dir);
  void EmitRtt(const State& s, RttKind kind, int64_t rtt_ns);
  // Single writer (the capture thread): a plain load and store, no locked instruction.
  static void Add(std::atomic<uint64_t>& counter, uint64_t n) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  ResultSink& sink_;
  FlowAccounts* flows_;
  Table table_;
  uint64_t endpoint_seed_;  // see EndpointHash
  // Submitted packets in a ring: numbers processed_ up to submitted_ are waiting.
  Pending pending_[kWindow];
  uint32_t submitted_ = 0;
  uint32_t processed_ = 0;
  NodeId self_ = NodeTable::kExternal;
  int64_t idle_ns_;
  int64_t arm_interval_ns_;
  std::atomic<size_t> entries_{0};
  std::atomic<uint64_t> evictions_{0};
  std::atomic<uint64_t> expired_{0};
  std::atomic<uint64_t> negative_samples_{0};
};

// a < b in 32-bit sequence space (RFC 1982 serial number arithmetic), so wraparound is safe.
inline bool SeqLess(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }

}  // namespace meshflow::flow::tcp
