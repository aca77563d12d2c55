#include "common/text_format/exposition.h"

#include <charconv>
#include <cmath>
#include <string_view>

namespace meshflow {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Shortest text that reads back as the same double, as Go's strconv.FormatFloat(v, 'g', -1).
void AppendDouble(double value, std::string& out) {
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

void AppendUint(uint64_t value, std::string& out) {
  char buf[24];
  const auto result = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, result.ptr);
}

// HELP text escapes backslash and newline; label values also escape the double quote.
void AppendEscaped(std::string_view text, bool quote, std::string& out) {
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

// name{labels[,extra_name="extra_value"]} value
void AppendSample(const MetricFamily& family, const ClientMetric& metric, std::string_view suffix,
                  std::string_view extra_name, std::string_view extra_value, std::string& out) {
  out += family.name;
  out += suffix;
  if (!metric.label.empty() || !extra_name.empty()) {
    out.push_back('{');
    bool first = true;
    for (const auto& label : metric.label) {
      if (!first) out.push_back(',');
      first = false;
      out += label.name;
      out += "=\"";
      AppendEscaped(label.value, true, out);
      out.push_back('"');
    }
    if (!extra_name.empty()) {
      if (!first) out.push_back(',');
      out += extra_name;
      out += "=\"";
      out += extra_value;
      out.push_back('"');
    }
    out.push_back('}');
  }
  out.push_back(' ');
}

void AppendTimestamp(const ClientMetric& metric, std::string& out) {
  if (metric.timestamp_ms != 0) {
    out.push_back(' ');
    char buf[24];
    const auto result = std::to_chars(buf, buf + sizeof buf, metric.timestamp_ms);
    out.append(buf, result.ptr);
  }
  out.push_back('\n');
}

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::Counter:
      return "counter";
    case MetricType::Gauge:
      return "gauge";
    case MetricType::Summary:
      return "summary";
    case MetricType::Histogram:
      return "histogram";
    default:
      return "untyped";
  }
}

void AppendMetric(const MetricFamily& family, const ClientMetric& metric, std::string& out) {
  switch (family.type) {
    case MetricType::Counter:
      AppendSample(family, metric, "", "", "", out);
      AppendDouble(metric.counter.value, out);
      AppendTimestamp(metric, out);
      break;
    case MetricType::Gauge:
      AppendSample(family, metric, "", "", "", out);
      AppendDouble(metric.gauge.value, out);
      AppendTimestamp(metric, out);
      break;
    case MetricType::Summary: {
      const auto& s = metric.summary;
      AppendSample(family, metric, "_count", "", "", out);
      AppendUint(s.sample_count, out);
      AppendTimestamp(metric, out);
      AppendSample(family, metric, "_sum", "", "", out);
      AppendDouble(s.sample_sum, out);
      AppendTimestamp(metric, out);
      for (const auto& q : s.quantile) {
        std::string quantile;
        AppendDouble(q.quantile, quantile);
        AppendSample(family, metric, "", "quantile", quantile, out);
        AppendDouble(q.value, out);
        AppendTimestamp(metric, out);
      }
      break;
    }
    case MetricType::Histogram: {
      const auto& h = metric.histogram;
      AppendSample(family, metric, "_count", "", "", out);
      AppendUint(h.sample_count, out);
      AppendTimestamp(metric, out);
      AppendSample(family, metric, "_sum", "", "", out);
      AppendDouble(h.sample_sum, out);
      AppendTimestamp(metric, out);
      bool has_inf = false;
      std::string le;
      for (const auto& b : h.bucket) {
        le.clear();
        AppendDouble(b.upper_bound, le);
        has_inf |= std::isinf(b.upper_bound);
        AppendSample(family, metric, "_bucket", "le", le, out);
        AppendUint(b.cumulative_count, out);
        AppendTimestamp(metric, out);
      }
      if (!has_inf) {
        AppendSample(family, metric, "_bucket", "le", "+Inf", out);
        AppendUint(h.sample_count, out);
        AppendTimestamp(metric, out);
      }
      break;
    }
    default:
      AppendSample(family, metric, "", "", "", out);
      AppendDouble(metric.untyped.value, out);
      AppendTimestamp(metric, out);
  }
}

}  // namespace

void AppendExposition(const std::vector<MetricFamily>& families, std::string& out) {
  for (const auto& family : families) {
    if (family.metric.empty()) continue;
    out += "# HELP ";
    out += family.name;
    out.push_back(' ');
    AppendEscaped(family.help, false, out);
    out += "\n# TYPE ";
    out += family.name;
    out.push_back(' ');
    out += TypeName(family.type);
    out.push_back('\n');
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

}  // namespace meshflow
