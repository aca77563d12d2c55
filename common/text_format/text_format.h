#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshflow::text_format {

// The metric type named by a "# TYPE" line; kUntyped when there is none.
enum class MetricKind { kCounter, kGauge, kHistogram, kSummary, kUntyped };

std::string_view MetricKindName(MetricKind kind);

using TextLabels = std::vector<std::pair<std::string, std::string>>;

// One sample line, already unescaped.
struct TextSample {
  std::string name;  // the sample's own name, e.g. x_bucket for family x
  TextLabels labels;
  double value = 0;
  std::optional<int64_t> timestamp_ms;
};

// Samples grouped under the family they belong to (x_bucket, x_sum, x_count go to histogram x).
struct TextFamily {
  std::string name;
  std::string help;  // unescaped
  bool has_help = false;
  MetricKind kind = MetricKind::kUntyped;
  std::vector<TextSample> samples;
};

struct Exposition {
  std::vector<TextFamily> families;
  size_t sample_count = 0;
};

// Why a body was refused: the 1-based line, a short machine-readable code (a metric label value)
// and a sentence for the user.
struct TextFormatError {
  size_t line = 0;
  std::string code;
  std::string reason;
  std::string ToString() const;
};

// Bounds so that a hostile body cannot make parsing expensive beyond its size.
struct TextFormatLimits {
  size_t max_body_bytes = 16 << 20;
  size_t max_line_bytes = 64 << 10;
  size_t max_labels_per_sample = 64;
  size_t max_samples = 1'000'000;
};

// Checks `body` against the Prometheus text exposition format 0.0.4 and, when `out` is not null,
// fills it. Returns the first problem found, or nullopt when the body is valid.
std::optional<TextFormatError> ParseTextFormat(std::string_view body,
                                               const TextFormatLimits& limits, Exposition* out);

// Writing this model back out: common/text_format/writer.h (AppendFamilyHeader, AppendSample).

}  // namespace meshflow::text_format
