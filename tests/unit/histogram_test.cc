#include "common/core/histogram.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/core/metric_builder.h"

namespace meshflow {
namespace {

TEST(RttBuckets, SpanFiftyMicrosecondsToTenSecondsInRootTwoSteps) {
  const auto b = RttBucketBounds();
  ASSERT_GE(b.size(), 30u);
  EXPECT_DOUBLE_EQ(b.front(), 50e-6);
  EXPECT_NEAR(b.back(), 10.0, 1e-9);
  for (size_t i = 1; i < b.size(); ++i) EXPECT_LE(b[i] / b[i - 1], std::sqrt(2.0) + 1e-9);
}

TEST(LatencyHistogram, BucketsAreLessOrEqual) {
  LatencyHistogram h;
  h.Observe(50e-6);  // exactly on the first bound
  h.Observe(0.080);
  h.Observe(100.0);  // above every bound
  EXPECT_EQ(h.counts().front(), 1u);
  EXPECT_EQ(h.counts().back(), 1u);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_NEAR(h.sum(), 100.08005, 1e-9);
}

TEST(FamilyBuilder, HistogramIsCumulativeWithInf) {
  LatencyHistogram h;
  h.Observe(0.001);
  h.Observe(0.002);
  auto family = FamilyBuilder("x_seconds", "help", prometheus::MetricType::Histogram)
                    .Histogram({{"a", "b"}}, h)
                    .Build();
  const auto& buckets = family.metric.at(0).histogram.bucket;
  EXPECT_EQ(buckets.back().cumulative_count, 2u);
  EXPECT_TRUE(std::isinf(buckets.back().upper_bound));
  for (size_t i = 1; i < buckets.size(); ++i)
    EXPECT_GE(buckets[i].cumulative_count, buckets[i - 1].cumulative_count);
}

}  // namespace
}  // namespace meshflow
