#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace meshflow {

// Bucket upper bounds shared by every RTT histogram (probes and passive TCP): 50 µs to 10 s,
// each √2 above the last, so a 1 ms LAN link and a 250 ms WAN link both get resolution.
std::span<const double> RttBucketBounds();

// A fixed-bucket histogram. Not thread-safe: its owner guards it.
class LatencyHistogram {
 public:
  explicit LatencyHistogram(std::span<const double> bounds = RttBucketBounds());

  void Observe(double value);

  std::span<const double> bounds() const { return bounds_; }
  // Per-bucket counts, not cumulative; the last entry is the +Inf bucket.
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::span<const double> bounds_;
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  double sum_ = 0;
};

}  // namespace meshflow
