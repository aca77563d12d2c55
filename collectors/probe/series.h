#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/core/histogram.h"

namespace meshflow::probe {

using std::chrono::nanoseconds;

// Everything one (peer, method) pair has counted; plain data for exposition.
struct SeriesStats {
  uint64_t sent = 0;
  uint64_t received = 0;  // replies before the deadline
  uint64_t lost = 0;      // deadline passed without a reply (late replies included)
  uint64_t late = 0;      // replies after the deadline
  uint64_t duplicates = 0;
  uint64_t reordered = 0;
  uint64_t forward_lost = 0;  // udp only: lost on the way to the reflector
  uint64_t return_lost = 0;   // udp only: reached the reflector, no reply in time
  uint64_t timestamp_fallbacks = 0;
  uint64_t unknown_replies = 0;  // replies for sequence numbers no longer (or never) tracked
  std::map<std::string, uint64_t> errors;  // by reason
  double jitter_seconds = 0;
  LatencyHistogram rtt;
};

// What arrived for one probe. The RTT is taken from the kernel when both timestamps are the
// kernel's (or the kernel measured it itself, as TCP_INFO does); else from the monotonic clock.
struct ReplyInfo {
  uint64_t sequence = 0;
  nanoseconds rx_monotonic{0};
  std::optional<int64_t> rx_kernel_ns;      // CLOCK_REALTIME, from SO_TIMESTAMPING
  std::optional<nanoseconds> kernel_rtt;    // measured by the kernel (TCP handshake)
  std::optional<uint64_t> reflector_count;  // udp: requests the reflector had seen
  nanoseconds turnaround{0};                // udp: time the reflector held the request
};

enum class ReplyKind { kReceived, kLate, kDuplicate, kUnknown };

// Sent probes of one (peer, method) pair in a ring sized for every probe that can be in flight,
// and the statistics built from them. Not thread-safe: its owner guards it.
class ProbeSeries {
 public:
  // `window` bounds the probes remembered, so replies older than it count as unknown.
  explicit ProbeSeries(size_t window, bool split_loss = false);

  // The next sequence number to send; sequence numbers start at 1.
  uint64_t next_sequence() const { return next_sequence_; }
  // Records probe next_sequence() as sent and returns its sequence number.
  uint64_t OnSent(nanoseconds send_monotonic, nanoseconds deadline);
  // The kernel's transmit timestamp (CLOCK_REALTIME) for a probe, when it arrives.
  void OnTxTimestamp(uint64_t sequence, int64_t kernel_ns);
  // True while a probe waits for a reply and has no transmit timestamp yet.
  bool NeedsTxTimestamp(uint64_t sequence) const;
  ReplyKind OnReply(const ReplyInfo& reply);
  // A probe that will not get a reply (a refused TCP connection, an ICMP error): settled as
  // lost now, with the reason counted.
  void OnFailed(uint64_t sequence, const std::string& reason);
  // Settles every probe whose deadline is at or before `now` as lost.
  void Expire(nanoseconds now);
  // A probe that could not be sent at all.
  void CountError(const std::string& reason) { ++stats_.errors[reason]; }

  // Probes sent whose deadline has not passed and that got no reply yet.
  uint64_t in_flight() const;
  // The earliest deadline of a probe in flight, if any.
  std::optional<nanoseconds> NextDeadline() const;
  const SeriesStats& stats() const { return stats_; }
  // The RTT of the last reply received in time, in seconds.
  double last_rtt() const { return last_rtt_.value_or(0); }

 private:
  enum class State : uint8_t { kEmpty, kInFlight, kReceived, kLost, kLate };
  struct Slot {
    uint64_t sequence = 0;
    State state = State::kEmpty;
    nanoseconds send_monotonic{0};
    nanoseconds deadline{0};
    std::optional<int64_t> tx_kernel_ns;
  };
  struct Checkpoint {
    uint64_t sequence;
    uint64_t reflector_count;
  };

  Slot* Find(uint64_t sequence);
  const Slot* Find(uint64_t sequence) const;
  void Settle(Slot& slot, State state);
  void AdvanceCursor();
  void ApplyCheckpoint(const Checkpoint& c);

  std::vector<Slot> ring_;
  bool split_loss_;
  uint64_t next_sequence_ = 1;
  uint64_t cursor_ = 1;  // lowest sequence not yet settled
  uint64_t highest_received_ = 0;
  std::optional<double> last_rtt_;
  uint64_t lost_before_cursor_ = 0;
  std::deque<Checkpoint> checkpoints_;  // from replies, in sequence order, not yet settled
  // Where the reflector's count was last rebased (start, or the reflector forgot us).
  uint64_t base_sequence_ = 0;
  uint64_t base_count_ = 0;
  uint64_t base_forward_ = 0;
  uint64_t last_count_ = 0;
  SeriesStats stats_;
};

// Spreads N items evenly over one interval: item i is due at phase i * interval / N, then every
// interval after. Falling behind by more than an interval skips the missed rounds (counted).
class Scheduler {
 public:
  explicit Scheduler(nanoseconds interval) : interval_(interval) {}

  // Replaces the items; item i keeps being item i. `now` anchors the first round.
  void Reset(size_t items, nanoseconds now);
  // Calls fn(item) for every item due at or before `now`, in due order, and reschedules it.
  template <typename Fn>
  void RunDue(nanoseconds now, Fn&& fn) {
    while (!due_.empty() && due_.front().due <= now) {
      Entry e = PopFront();
      fn(e.item);
      e.due += interval_;
      if (e.due <= now) {
        const auto behind = (now - e.due) / interval_ + 1;
        skipped_ += static_cast<uint64_t>(behind);
        e.due += behind * interval_;
      }
      Push(e);
    }
  }
  std::optional<nanoseconds> NextDue() const;
  uint64_t skipped() const { return skipped_; }
  nanoseconds interval() const { return interval_; }
  nanoseconds PhaseOf(size_t item, size_t items) const;

 private:
  struct Entry {
    nanoseconds due;
    size_t item;
  };
  Entry PopFront();
  void Push(Entry e);

  nanoseconds interval_;
  std::vector<Entry> due_;  // a min-heap on due
  uint64_t skipped_ = 0;
};

}  // namespace meshflow::probe
