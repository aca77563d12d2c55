#include "common/core/metric_builder.h"

#include <limits>

namespace meshflow {

FamilyBuilder::FamilyBuilder(std::string name, std::string help, prometheus::MetricType type) {
  family_.name = std::move(name);
  family_.help = std::move(help);
  family_.type = type;
}

FamilyBuilder& FamilyBuilder::Counter(LabelPairs labels, double value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = value;
  family_.metric.push_back(std::move(m));
  return *this;
}

FamilyBuilder& FamilyBuilder::Gauge(LabelPairs labels, double value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  family_.metric.push_back(std::move(m));
  return *this;
}

FamilyBuilder& FamilyBuilder::Histogram(LabelPairs labels, const LatencyHistogram& histogram) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.histogram.sample_count = histogram.count();
  m.histogram.sample_sum = histogram.sum();
  uint64_t cumulative = 0;
  const auto bounds = histogram.bounds();
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += histogram.counts()[i];
    m.histogram.bucket.push_back({cumulative, bounds[i]});
  }
  cumulative += histogram.counts().back();
  m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  family_.metric.push_back(std::move(m));
  return *this;
}

void FamilyBuilder::AppendTo(std::vector<prometheus::MetricFamily>& out) {
  if (!empty()) out.push_back(std::move(family_));
}

}  // namespace meshflow
