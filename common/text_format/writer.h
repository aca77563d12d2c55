#pragma once

#include <prometheus/metric_family.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/text_format/text_format.h"

// The one writer of the Prometheus text format 0.0.4: /metrics, --replay, the gateway's
// /federate and the golden files all come out of these functions, so a number, an escape or a
// label reads the same wherever meshflow prints it. Two data models feed it: the collectors'
// prometheus::MetricFamily (AppendExposition) and the gateway's parsed TextFamily
// (AppendFamilyHeader, AppendSample); both end in the primitives of text_format::detail.
namespace meshflow::text_format::detail {

// Shortest text that reads back as the same double, as Go's strconv.FormatFloat(v, 'g', -1);
// NaN, +Inf, -Inf as Prometheus spells them.
inline void AppendValue(double value, std::string& out) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    const auto result = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, result.ptr);
  }
}

template <typename Integer>
inline void AppendInteger(Integer value, std::string& out) {
  char buf[24];
  const auto result = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, result.ptr);
}

// HELP text escapes backslash and newline; label values (`quote`) also the double quote.
inline void AppendEscaped(std::string_view text, bool quote, std::string& out) {
  for (const char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        if (quote) {
          out += "\\\"";
          break;
        }
        [[fallthrough]];
      default:
        out.push_back(c);
    }
  }
}

// `,name="value"` (without the comma for the first label of a sample).
inline void AppendLabel(std::string_view name, std::string_view value, bool& first,
                        std::string& out) {
  if (!first) out.push_back(',');
  first = false;
  out += name;
  out += "=\"";
  AppendEscaped(value, true, out);
  out.push_back('"');
}

// "# HELP name text" when `help` is given, then "# TYPE name type".
void AppendHeader(std::string_view name, const std::string* help, std::string_view type,
                  std::string& out);

}  // namespace meshflow::text_format::detail

namespace meshflow {

// Writes families in the text format, appending to `out`; families without samples are left
// out. Same data model and output as prometheus::TextSerializer, but written straight into one
// string with std::to_chars: that serializer's ostream path costs about 2 µs a series, which is
// 20 ms for the 10,000 series a busy node can carry, on a 5 s scrape of a 1 GB VM.
void AppendExposition(const std::vector<prometheus::MetricFamily>& families, std::string& out);

std::string SerializeExposition(const std::vector<prometheus::MetricFamily>& families);

}  // namespace meshflow

namespace meshflow::text_format {

// Writes a sample line (with the trailing newline) of the parsed model.
void AppendSample(std::string& out, std::string_view name, const TextLabels& labels, double value,
                  std::optional<int64_t> timestamp_ms);
// Writes "# HELP" (when the family had one) and "# TYPE" lines of a parsed family.
void AppendFamilyHeader(std::string& out, const TextFamily& family);
// Formats a value as Prometheus does: shortest round-trip form, NaN, +Inf, -Inf.
std::string FormatValue(double value);

}  // namespace meshflow::text_format
