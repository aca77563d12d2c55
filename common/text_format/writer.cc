#include "common/text_format/writer.h"

#include <type_traits>

#include "common/core/enum_names.h"

namespace meshflow {
namespace text_format::detail {

void AppendHeader(std::string_view name, const std::string* help, std::string_view type,
                  std::string& out) {
  if (help != nullptr) {
    out += "# HELP ";
    out += name;
    out.push_back(' ');
    AppendEscaped(*help, false, out);
    out.push_back('\n');
  }
  out += "# TYPE ";
  out += name;
  out.push_back(' ');
  out += type;
  out.push_back('\n');
}

}  // namespace text_format::detail

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using namespace text_format::detail;

// name{labels[,extra_name="extra_value"]} and the space before the value.
void AppendSeries(const MetricFamily& family, const ClientMetric& metric, std::string_view suffix,
                  std::string_view extra_name, std::string_view extra_value, std::string& out) {
  out += family.name;
  out += suffix;
  if (!metric.label.empty() || !extra_name.empty()) {
    out.push_back('{');
    bool first = true;
    for (const auto& label : metric.label) AppendLabel(label.name, label.value, first, out);
    if (!extra_name.empty()) AppendLabel(extra_name, extra_value, first, out);
    out.push_back('}');
  }
  out.push_back(' ');
}

void AppendTimestamp(const ClientMetric& metric, std::string& out) {
  if (metric.timestamp_ms != 0) {
    out.push_back(' ');
    AppendInteger(metric.timestamp_ms, out);
  }
  out.push_back('\n');
}

constexpr EnumName<MetricType> kTypeNames[] = {
    {MetricType::Counter, "counter"},
    {MetricType::Gauge, "gauge"},
    {MetricType::Summary, "summary"},
    {MetricType::Histogram, "histogram"},
};

std::string_view TypeName(MetricType type) { return NameOf(kTypeNames, type, "untyped"); }

// One sample line: series, value (a count as an integer), timestamp.
template <typename Value>
void AppendLine(const MetricFamily& family, const ClientMetric& metric, std::string_view suffix,
                Value value, std::string& out, std::string_view extra_name = {},
                std::string_view extra_value = {}) {
  AppendSeries(family, metric, suffix, extra_name, extra_value, out);
  if constexpr (std::is_floating_point_v<Value>) {
    AppendValue(value, out);
  } else {
    AppendInteger(value, out);
  }
  AppendTimestamp(metric, out);
}

void AppendMetric(const MetricFamily& family, const ClientMetric& metric, std::string& out) {
  switch (family.type) {
    case MetricType::Counter:
      AppendLine(family, metric, "", metric.counter.value, out);
      break;
    case MetricType::Gauge:
      AppendLine(family, metric, "", metric.gauge.value, out);
      break;
    case MetricType::Summary: {
      const auto& s = metric.summary;
      AppendLine(family, metric, "_count", s.sample_count, out);
      AppendLine(family, metric, "_sum", s.sample_sum, out);
      std::string quantile;
      for (const auto& q : s.quantile) {
        quantile.clear();
        AppendValue(q.quantile, quantile);
        AppendLine(family, metric, "", q.value, out, "quantile", quantile);
      }
      break;
    }
    case MetricType::Histogram: {
      const auto& h = metric.histogram;
      AppendLine(family, metric, "_count", h.sample_count, out);
      AppendLine(family, metric, "_sum", h.sample_sum, out);
      bool has_inf = false;
      std::string le;
      for (const auto& b : h.bucket) {
        le.clear();
        AppendValue(b.upper_bound, le);
        has_inf |= std::isinf(b.upper_bound);
        AppendLine(family, metric, "_bucket", b.cumulative_count, out, "le", le);
      }
      if (!has_inf) AppendLine(family, metric, "_bucket", h.sample_count, out, "le", "+Inf");
      break;
    }
    default:
      AppendLine(family, metric, "", metric.untyped.value, out);
  }
}

}  // namespace

void AppendExposition(const std::vector<MetricFamily>& families, std::string& out) {
  for (const auto& family : families) {
    if (family.metric.empty()) continue;
    AppendHeader(family.name, &family.help, TypeName(family.type), out);
    for (const auto& metric : family.metric) AppendMetric(family, metric, out);
  }
}

std::string SerializeExposition(const std::vector<MetricFamily>& families) {
  std::string out;
  size_t series = 0;
  for (const auto& f : families) series += f.metric.size();
  out.reserve(series * 96 + families.size() * 128);
  AppendExposition(families, out);
  return out;
}

namespace text_format {

std::string FormatValue(double value) {
  std::string out;
  text_format::detail::AppendValue(value, out);
  return out;
}

void AppendSample(std::string& out, std::string_view name, const TextLabels& labels, double value,
                  std::optional<int64_t> timestamp_ms) {
  out += name;
  if (!labels.empty()) {
    out.push_back('{');
    bool first = true;
    for (const auto& [k, v] : labels) text_format::detail::AppendLabel(k, v, first, out);
    out.push_back('}');
  }
  out.push_back(' ');
  text_format::detail::AppendValue(value, out);
  if (timestamp_ms) {
    out.push_back(' ');
    text_format::detail::AppendInteger(*timestamp_ms, out);
  }
  out.push_back('\n');
}

void AppendFamilyHeader(std::string& out, const TextFamily& family) {
  text_format::detail::AppendHeader(family.name, family.has_help ? &family.help : nullptr,
                                    MetricKindName(family.kind), out);
}

}  // namespace text_format
}  // namespace meshflow
