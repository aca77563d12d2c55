#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <limits>
#include <map>
#include <sstream>

#include "common/core/metric_builder.h"
#include "common/text_format/writer.h"

namespace meshflow {
namespace {

using prometheus::MetricType;

// prometheus-cpp 1.0 leaves a newline in HELP unescaped (a broken exposition), so the comparison
// with it uses a single-line help text.
std::vector<prometheus::MetricFamily> Sample(
    const std::string& help = "Bytes with \\ and\nnewline.") {
  std::vector<prometheus::MetricFamily> out;
  FamilyBuilder("meshflow_flow_bytes_total", help, MetricType::Counter)
      .Counter({{"iface", "tailscale0"}, {"role", "redis"}, {"src_node", "a\"b\\c\nd"}}, 123456789)
      .Counter({{"iface", "eth0"}, {"role", "other"}}, 0.1)
      .AppendTo(out);
  FamilyBuilder("meshflow_up", "Gauge.", MetricType::Gauge)
      .Gauge({}, 1)
      .Gauge({{"x", "nan"}}, std::numeric_limits<double>::quiet_NaN())
      .Gauge({{"x", "inf"}}, -std::numeric_limits<double>::infinity())
      .Gauge({{"x", "big"}}, 2.5e21)
      .Gauge({{"x", "small"}}, 7.071067811865475e-05)
      .AppendTo(out);
  LatencyHistogram h;
  h.Observe(0.0001);
  h.Observe(0.08);
  h.Observe(20);
  FamilyBuilder("meshflow_probe_rtt_seconds", "RTT.", MetricType::Histogram)
      .Histogram({{"method", "icmp"}}, h)
      .AppendTo(out);
  prometheus::MetricFamily untyped{"meshflow_untyped", "U.", MetricType::Untyped, {}};
  prometheus::ClientMetric m;
  m.untyped.value = 3;
  untyped.metric.push_back(m);
  out.push_back(untyped);
  return out;
}

// Every sample line as series -> value, so two serializations compare by meaning.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    const std::string value = line.substr(space + 1);
    out[line.substr(0, space)] = value == "NaN"    ? std::nan("")
                                 : value == "Nan"  ? std::nan("")
                                 : value == "+Inf" ? INFINITY
                                 : value == "-Inf" ? -INFINITY
                                                   : std::stod(value);
  }
  return out;
}

// Bucket bounds are printed in each serializer's own float style; compare them as numbers.
std::string NormalizeLe(std::string series) {
  // ",le=" and not "le=": role="..." ends in le=" too.
  auto le = series.find(",le=\"");
  if (le == std::string::npos) return series;
  ++le;
  const auto end = series.find('"', le + 4);
  const std::string bound = series.substr(le + 4, end - le - 4);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.12g", bound == "+Inf" ? INFINITY : std::stod(bound));
  return series.substr(0, le + 4) + buf + series.substr(end);
}

TEST(Exposition, SameSamplesAsPrometheusCppSerializer) {
  const auto families = Sample("Bytes.");
  auto ours = Samples(SerializeExposition(families));
  auto theirs = Samples(prometheus::TextSerializer().Serialize(families));
  std::map<std::string, double> a, b;
  for (const auto& [k, v] : ours) a[NormalizeLe(k)] = v;
  for (const auto& [k, v] : theirs) b[NormalizeLe(k)] = v;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [series, value] : b) {
    ASSERT_TRUE(a.count(series)) << series;
    if (std::isnan(value)) {
      EXPECT_TRUE(std::isnan(a[series])) << series;
    } else {
      EXPECT_DOUBLE_EQ(a[series], value) << series;
    }
  }
}

TEST(Exposition, GoldenLines) {
  const std::string text = SerializeExposition(Sample());
  EXPECT_NE(text.find("# HELP meshflow_flow_bytes_total Bytes with \\\\ and\\nnewline.\n"
                      "# TYPE meshflow_flow_bytes_total counter\n"),
            std::string::npos);
  EXPECT_NE(text.find("src_node=\"a\\\"b\\\\c\\nd\"} 123456789\n"), std::string::npos) << text;
  EXPECT_NE(text.find("meshflow_up 1\n"), std::string::npos);
  EXPECT_NE(text.find("meshflow_up{x=\"nan\"} NaN\n"), std::string::npos);
  EXPECT_NE(text.find("meshflow_up{x=\"inf\"} -Inf\n"), std::string::npos);
  EXPECT_NE(text.find("meshflow_probe_rtt_seconds_bucket{method=\"icmp\",le=\"5e-05\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("meshflow_probe_rtt_seconds_bucket{method=\"icmp\",le=\"+Inf\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("meshflow_probe_rtt_seconds_count{method=\"icmp\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE meshflow_untyped untyped\nmeshflow_untyped 3\n"), std::string::npos);
}

TEST(Exposition, EmptyFamiliesAreLeftOut) {
  std::vector<prometheus::MetricFamily> families(1);
  families[0].name = "nothing";
  EXPECT_EQ(SerializeExposition(families), "");
}

}  // namespace
}  // namespace meshflow
