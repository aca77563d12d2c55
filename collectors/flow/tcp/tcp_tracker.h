#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "collectors/flow/classifier.h"
#include "collectors/flow/decoder.h"
#include "collectors/flow/tcp/connection_table.h"
#include "exporter/config/config.h"

namespace meshflow::flow::tcp {

enum class RttKind : uint8_t { kHandshake, kTimestamp };

// How the flow pipeline classified one TCP packet, plus its capture time.
struct PacketContext {
  int64_t timestamp_ns = 0;
  uint32_t interface_id = 0;
  RoleId role = Classifier::kOther;
  NodeId src_node = NodeTable::kExternal;
  NodeId dst_node = NodeTable::kExternal;
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
  TcpTracker(const TcpConfig& config, ResultSink& sink);

  // Binds to a classifier's ids (after a reconfiguration): connection state holding old ids is
  // dropped and tracking restarts mid-stream. `self` is this node's id in that classifier.
  void Rebind(const TcpConfig& config, NodeId self);

  // Optional, for speed: looks the packet's connection up and starts fetching its entry, so
  // the caller's work until OnPacket for the same packet hides the memory latency. `info` must
  // be that packet's.
  void Prepare(const PacketInfo& info, uint32_t interface_id, int64_t timestamp_ns);

  void OnPacket(const PacketInfo& info, const PacketContext& context);

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
    static constexpr uint8_t kEverArmed = 16;  // `armed_ns` is valid
    static constexpr uint8_t kHasHalfRtt = 32;
    uint32_t high = 0;         // one past the highest sequence number sent
    uint32_t last_ts_val = 0;  // latest TSval seen in this direction
    uint32_t armed_ts_val = 0;
    uint32_t half_rtt_us = 0;  // latest echo delay in this direction (passing traffic)
    int64_t armed_ns = 0;      // when the latest timed TSval was first seen; the rate limit
    uint8_t flags = 0;
  };
  struct State {
    static constexpr uint8_t kHandshakeOpen = 1;  // `handshake_ns` is valid and not yet timed
    static constexpr uint8_t kSynAckSeen = 2;
    // Client side and passing traffic: the latest SYN; server side: the latest SYN/ACK.
    int64_t handshake_ns = 0;
    RoleId role = Classifier::kOther;
    NodeId node[2] = {NodeTable::kExternal, NodeTable::kExternal};
    Direction client_dir = 0;  // the direction the client sends in
    uint8_t flags = 0;
    HalfState half[2];
  };

 private:
  using Table = ConnectionTable<State>;

  void StartConnection(State& s, const PacketInfo& info, const PacketContext& context,
                       Direction dir);
  void Handshake(State& s, const PacketInfo& info, int64_t now, Direction dir);
  void Timestamps(State& s, const PacketInfo& info, int64_t now, Direction dir);
  void Sequence(State& s, const PacketInfo& info, const PacketContext& context, Direction dir);
  void EmitRtt(const State& s, RttKind kind, int64_t rtt_ns);
  bool IsSelf(NodeId node) const { return node == self_; }

  ResultSink& sink_;
  Table table_;
  // Set by Prepare, used by the OnPacket that follows.
  bool prepared_ = false;
  Direction prepared_dir_ = 0;
  Table::Location prepared_at_{};
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
