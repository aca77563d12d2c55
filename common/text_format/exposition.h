#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace meshflow {

// Writes families in the Prometheus text format 0.0.4, appending to `out`.
//
// Same data model and output as prometheus::TextSerializer, but written straight into one
// string with std::to_chars: that serializer's ostream path costs about 2 µs a series, which is
// 20 ms for the 10,000 series a busy node can carry, on a 5 s scrape of a 1 GB VM.
void AppendExposition(const std::vector<prometheus::MetricFamily>& families, std::string& out);

std::string SerializeExposition(const std::vector<prometheus::MetricFamily>& families);

}  // namespace meshflow
