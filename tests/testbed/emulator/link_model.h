#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string>

namespace meshflow::testbed {

using std::chrono::nanoseconds;

// What one direction of a node pair does to packets. Plain data, set from the topology and at
// run time by the control client.
struct LinkParams {
  nanoseconds delay{0};     // one way
  nanoseconds jitter{0};    // each packet's delay is drawn uniformly from delay +- jitter
  double loss = 0;          // probability 0..1 that a packet is dropped
  int64_t rate_bps = 0;     // bits per second; 0 is no limit
  int64_t burst_bytes = 0;  // token bucket depth; 0 picks one MTU-sized default
  int64_t queue_bytes = 0;  // bytes that may wait for tokens before drops; 0 picks a default
  bool up = true;           // false: the link is cut and drops everything
  int64_t mtu = 0;          // largest packet carried, in bytes; 0 is no limit. Bigger ones
                            // vanish without an ICMP error: a path MTU black hole

  bool operator==(const LinkParams&) const = default;
};

enum class DropReason { kNone, kLinkDown, kNodeDown, kLoss, kRateQueueFull, kTooBig, kCount };
const char* DropReasonName(DropReason reason);

// The verdict for one packet: dropped with a reason, or released at `release`.
struct LinkVerdict {
  DropReason drop = DropReason::kNone;
  nanoseconds release{0};
};

struct LinkCounters {
  uint64_t packets = 0;  // accepted for delivery
  uint64_t bytes = 0;
  uint64_t dropped[static_cast<int>(DropReason::kCount)] = {};
};

// One direction of a link. Pure: time comes in as an argument, randomness from a generator
// seeded by the caller, so every decision is reproducible in tests.
class LinkModel {
 public:
  LinkModel(LinkParams params, uint64_t seed);

  // Decides the fate of a packet of `size` bytes offered at `now` (CLOCK_MONOTONIC).
  LinkVerdict Offer(size_t size, nanoseconds now);

  // New parameters take effect for the next packet; packets in flight keep their release time.
  void SetParams(const LinkParams& params);
  const LinkParams& params() const { return params_; }
  const LinkCounters& counters() const { return counters_; }
  // Counts a drop decided outside the link (a node taken off the overlay).
  void CountDrop(DropReason reason) { ++counters_.dropped[static_cast<int>(reason)]; }

  // Packets leave in the order they came (a tunnel over one UDP flow rarely reorders), so a
  // jitter draw never releases a packet before its predecessor.
  static constexpr bool kKeepsOrder = true;

 private:
  LinkParams params_;
  std::mt19937_64 rng_;
  LinkCounters counters_;
  // Token bucket for the rate limit, in bytes; negative while packets wait for tokens.
  double tokens_ = 0;
  nanoseconds tokens_at_{0};
  bool bucket_started_ = false;
  nanoseconds last_release_{0};
};

// "5%", "0.05", "12.5%" -> probability. Returns false unless 0..1 (0..100%).
bool ParseLoss(const std::string& text, double* out);
// "10mbit", "512kbit", "1gbit", "800000" (bit/s) -> bit/s. Returns false on anything else.
bool ParseRate(const std::string& text, int64_t* out);
// Inverse of the parsers, for `show` output.
std::string FormatDelay(nanoseconds d);
std::string FormatRate(int64_t bps);

}  // namespace meshflow::testbed
