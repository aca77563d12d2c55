#include "common/core/histogram.h"

#include <algorithm>
#include <cmath>

namespace meshflow {

std::span<const double> RttBucketBounds() {
  static const std::vector<double> bounds = [] {
    std::vector<double> b;
    for (double v = 50e-6; v < 10.0 * (1 + 1e-9); v *= std::sqrt(2.0)) b.push_back(v);
    if (b.back() < 10.0) b.push_back(10.0);
    return b;
  }();
  return bounds;
}

LatencyHistogram::LatencyHistogram(std::span<const double> bounds)
    : bounds_(bounds), counts_(bounds.size() + 1, 0) {}

void LatencyHistogram::Observe(double value) {
  // Prometheus buckets are "less than or equal": lower_bound finds the first bound >= value.
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  ++counts_[static_cast<size_t>(it - bounds_.begin())];
  ++count_;
  sum_ += value;
}

}  // namespace meshflow
