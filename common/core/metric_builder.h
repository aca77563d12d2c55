#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <utility>
#include <vector>

#include "common/core/histogram.h"

namespace meshflow {

using LabelPairs = std::vector<prometheus::ClientMetric::Label>;

// Builds one metric family sample by sample, as plain data for the serializer.
class FamilyBuilder {
 public:
  FamilyBuilder(std::string name, std::string help, prometheus::MetricType type);

  FamilyBuilder& Counter(LabelPairs labels, double value);
  FamilyBuilder& Gauge(LabelPairs labels, double value);
  FamilyBuilder& Histogram(LabelPairs labels, const LatencyHistogram& histogram);
  bool empty() const { return family_.metric.empty(); }
  prometheus::MetricFamily Build() { return std::move(family_); }
  // Moves the family into `out` unless it has no samples.
  void AppendTo(std::vector<prometheus::MetricFamily>& out);

 private:
  prometheus::MetricFamily family_;
};

}  // namespace meshflow
