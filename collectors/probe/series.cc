#include "collectors/probe/series.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace meshflow::probe {

ProbeSeries::ProbeSeries(size_t window, bool split_loss)
    : ring_(std::max<size_t>(window, 4)), split_loss_(split_loss) {}

const ProbeSeries::Slot* ProbeSeries::Find(uint64_t sequence) const {
  if (sequence == 0 || sequence >= next_sequence_) return nullptr;
  const Slot& slot = ring_[sequence % ring_.size()];
  return slot.sequence == sequence ? &slot : nullptr;
}

ProbeSeries::Slot* ProbeSeries::Find(uint64_t sequence) {
  return const_cast<Slot*>(std::as_const(*this).Find(sequence));
}

bool ProbeSeries::NeedsTxTimestamp(uint64_t sequence) const {
  const Slot* slot = Find(sequence);
  return slot != nullptr && slot->state == State::kInFlight && !slot->tx_kernel_ns;
}

uint64_t ProbeSeries::OnSent(nanoseconds send_monotonic, nanoseconds deadline) {
  const uint64_t sequence = next_sequence_++;
  Slot& slot = ring_[sequence % ring_.size()];
  // The ring is sized for every probe in flight; should the owner send faster than it expires,
  // the overwritten probe is settled as lost rather than forgotten, so the counts stay whole.
  if (slot.state == State::kInFlight) Settle(slot, State::kLost);
  slot = Slot{sequence, State::kInFlight, send_monotonic, deadline, std::nullopt};
  ++stats_.sent;
  AdvanceCursor();
  return sequence;
}

void ProbeSeries::OnTxTimestamp(uint64_t sequence, int64_t kernel_ns) {
  if (Slot* slot = Find(sequence)) slot->tx_kernel_ns = kernel_ns;
}

void ProbeSeries::Settle(Slot& slot, State state) {
  slot.state = state;
  if (state == State::kLost) ++stats_.lost;
}

ReplyKind ProbeSeries::OnReply(const ReplyInfo& reply) {
  Slot* slot = Find(reply.sequence);
  if (slot == nullptr) {
    ++stats_.unknown_replies;
    return ReplyKind::kUnknown;
  }
  if (split_loss_ && reply.reflector_count && slot->state != State::kReceived &&
      slot->state != State::kLate) {
    if (checkpoints_.empty() || checkpoints_.back().sequence < reply.sequence)
      checkpoints_.push_back(Checkpoint{reply.sequence, *reply.reflector_count});
  }
  switch (slot->state) {
    case State::kReceived:
    case State::kLate:
      ++stats_.duplicates;
      return ReplyKind::kDuplicate;
    case State::kLost:
      ++stats_.late;
      slot->state = State::kLate;
      return ReplyKind::kLate;
    case State::kEmpty:
      ++stats_.unknown_replies;
      return ReplyKind::kUnknown;
    case State::kInFlight:
      break;
  }
  if (reply.rx_monotonic >= slot->deadline) {
    Settle(*slot, State::kLost);
    ++stats_.late;
    slot->state = State::kLate;
    AdvanceCursor();
    return ReplyKind::kLate;
  }
  double rtt;
  if (reply.kernel_rtt) {
    rtt = std::chrono::duration<double>(*reply.kernel_rtt).count();
  } else if (reply.rx_kernel_ns && slot->tx_kernel_ns &&
             *reply.rx_kernel_ns >= *slot->tx_kernel_ns) {
    rtt = static_cast<double>(*reply.rx_kernel_ns - *slot->tx_kernel_ns) * 1e-9;
  } else {
    // Scheduling delay enters this one, hence the counter.
    ++stats_.timestamp_fallbacks;
    rtt = std::chrono::duration<double>(reply.rx_monotonic - slot->send_monotonic).count();
  }
  // The peer's own scheduling delay is not network time either; a turnaround that does not fit
  // inside the round trip is implausible and ignored.
  const double turnaround = std::chrono::duration<double>(reply.turnaround).count();
  if (turnaround > 0 && turnaround < rtt) rtt -= turnaround;
  slot->state = State::kReceived;
  ++stats_.received;
  if (reply.sequence < highest_received_) {
    ++stats_.reordered;
  } else {
    highest_received_ = reply.sequence;
  }
  stats_.rtt.Observe(rtt);
  // RFC 3550 section 6.4.1: J += (|D| - J) / 16, D the change in transit time between replies.
  if (last_rtt_) stats_.jitter_seconds += (std::abs(rtt - *last_rtt_) - stats_.jitter_seconds) / 16;
  last_rtt_ = rtt;
  AdvanceCursor();
  return ReplyKind::kReceived;
}

void ProbeSeries::OnFailed(uint64_t sequence, const std::string& reason) {
  ++stats_.errors[reason];
  Slot* slot = Find(sequence);
  if (slot == nullptr || slot->state != State::kInFlight) return;
  Settle(*slot, State::kLost);
  AdvanceCursor();
}

void ProbeSeries::Expire(nanoseconds now) {
  // Deadlines grow with the sequence number (one timeout after each send), so the in-flight
  // probes from the cursor on are in deadline order.
  for (uint64_t s = cursor_; s < next_sequence_; ++s) {
    Slot* slot = Find(s);
    if (slot == nullptr || slot->state != State::kInFlight) continue;
    if (slot->deadline > now) break;
    Settle(*slot, State::kLost);
  }
  AdvanceCursor();
}

void ProbeSeries::AdvanceCursor() {
  while (cursor_ < next_sequence_) {
    const Slot* slot = Find(cursor_);
    if (slot != nullptr && slot->state == State::kInFlight) break;
    if (slot == nullptr || slot->state == State::kLost || slot->state == State::kLate)
      ++lost_before_cursor_;
    while (!checkpoints_.empty() && checkpoints_.front().sequence < cursor_)
      checkpoints_.pop_front();
    if (!checkpoints_.empty() && checkpoints_.front().sequence == cursor_) {
      ApplyCheckpoint(checkpoints_.front());
      checkpoints_.pop_front();
    }
    ++cursor_;
  }
}

// At a reply to sequence S carrying the reflector's count C, every probe up to S is settled:
// (S - C) of them never reached the reflector, the rest of the lost ones lost their reply.
void ProbeSeries::ApplyCheckpoint(const Checkpoint& c) {
  if (c.reflector_count < last_count_ ||
      c.reflector_count - base_count_ > c.sequence - base_sequence_) {
    // The reflector restarted or forgot this session: count afresh from here.
    base_sequence_ = c.sequence;
    base_count_ = c.reflector_count;
    base_forward_ = stats_.forward_lost;
  }
  last_count_ = c.reflector_count;
  const uint64_t forward =
      base_forward_ + (c.sequence - base_sequence_) - (c.reflector_count - base_count_);
  stats_.forward_lost = std::max(stats_.forward_lost, std::min(forward, lost_before_cursor_));
  stats_.return_lost = std::max(
      stats_.return_lost, lost_before_cursor_ - std::min(stats_.forward_lost, lost_before_cursor_));
}

uint64_t ProbeSeries::in_flight() const {
  uint64_t n = 0;
  for (const Slot& slot : ring_) n += slot.state == State::kInFlight;
  return n;
}

std::optional<nanoseconds> ProbeSeries::NextDeadline() const {
  for (uint64_t s = cursor_; s < next_sequence_; ++s) {
    const Slot& slot = ring_[s % ring_.size()];
    if (slot.sequence == s && slot.state == State::kInFlight) return slot.deadline;
  }
  return std::nullopt;
}

void Scheduler::Reset(size_t items, nanoseconds now) {
  due_.clear();
  for (size_t i = 0; i < items; ++i) Push(Entry{now + PhaseOf(i, items), i});
}

nanoseconds Scheduler::PhaseOf(size_t item, size_t items) const {
  if (items == 0) return nanoseconds(0);
  // Split so the product cannot overflow for any interval the config allows.
  const int64_t n = static_cast<int64_t>(items);
  const int64_t i = static_cast<int64_t>(item);
  return nanoseconds(interval_.count() / n * i + interval_.count() % n * i / n);
}

std::optional<nanoseconds> Scheduler::NextDue() const {
  if (due_.empty()) return std::nullopt;
  return due_.front().due;
}

namespace {
struct Later {
  template <typename E>
  bool operator()(const E& a, const E& b) const {
    return a.due != b.due ? a.due > b.due : a.item > b.item;
  }
};
}  // namespace

Scheduler::Entry Scheduler::PopFront() {
  std::pop_heap(due_.begin(), due_.end(), Later{});
  Entry e = due_.back();
  due_.pop_back();
  return e;
}

void Scheduler::Push(Entry e) {
  due_.push_back(e);
  std::push_heap(due_.begin(), due_.end(), Later{});
}

}  // namespace meshflow::probe
