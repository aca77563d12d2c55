#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "common/text_format/text_format.h"
#include "common/text_format/writer.h"

namespace meshflow::gateway {
namespace {

using ::testing::HasSubstr;

std::optional<text_format::TextFormatError> Check(std::string_view body,
                                                  text_format::TextFormatLimits limits = {}) {
  return text_format::ParseTextFormat(body, limits, nullptr);
}

text_format::Exposition MustParse(std::string_view body) {
  text_format::Exposition e;
  auto error = text_format::ParseTextFormat(body, text_format::TextFormatLimits{}, &e);
  EXPECT_FALSE(error) << error->ToString();
  return e;
}

TEST(TextFormat, ParsesFamiliesHelpTypeLabelsAndTimestamps) {
  const auto e = MustParse(
      "# HELP http_requests_total The total number of HTTP requests.\n"
      "# TYPE http_requests_total counter\n"
      "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
      "http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n"
      "\n"
      "# A plain comment\n"
      "metric_without_timestamp_and_labels 12.47\n"
      "something_weird{problem=\"division by zero\"} +Inf -3982045\n");
  ASSERT_EQ(e.families.size(), 3u);
  EXPECT_EQ(e.sample_count, 4u);
  const auto& f = e.families[0];
  EXPECT_EQ(f.name, "http_requests_total");
  EXPECT_EQ(f.kind, text_format::MetricKind::kCounter);
  EXPECT_EQ(f.help, "The total number of HTTP requests.");
  ASSERT_EQ(f.samples.size(), 2u);
  EXPECT_EQ(f.samples[1].labels[1].second, "400");
  EXPECT_EQ(f.samples[1].value, 3);
  EXPECT_EQ(f.samples[1].timestamp_ms, 1395066363000);
  EXPECT_EQ(e.families[1].kind, text_format::MetricKind::kUntyped);
  EXPECT_FALSE(e.families[1].samples[0].timestamp_ms);
  EXPECT_TRUE(std::isinf(e.families[2].samples[0].value));
  EXPECT_EQ(e.families[2].samples[0].timestamp_ms, -3982045);
}

TEST(TextFormat, UnescapesLabelValuesAndHelp) {
  const auto e = MustParse(
      "# HELP m a \\\\ backslash and a \\n newline\n"
      "m{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1\n");
  EXPECT_EQ(e.families[0].help, "a \\ backslash and a \n newline");
  EXPECT_EQ(e.families[0].samples[0].labels[0].second, "C:\\DIR\\FILE.TXT");
  EXPECT_EQ(e.families[0].samples[0].labels[1].second, "Cannot find file:\n\"FILE.TXT\"");
}

TEST(TextFormat, SpecialValues) {
  const auto e = MustParse("a NaN\nb -Inf\nc +Inf\nd 1.5e-3\ne -0\nf Inf\ng nan\n");
  EXPECT_TRUE(std::isnan(e.families[0].samples[0].value));
  EXPECT_EQ(e.families[1].samples[0].value, -INFINITY);
  EXPECT_EQ(e.families[2].samples[0].value, INFINITY);
  EXPECT_DOUBLE_EQ(e.families[3].samples[0].value, 0.0015);
}

TEST(TextFormat, HistogramAndSummarySamplesJoinTheirFamily) {
  const auto e = MustParse(
      "# TYPE h histogram\n"
      "h_bucket{le=\"0.05\"} 24054\n"
      "h_bucket{le=\"+Inf\"} 144320\n"
      "h_sum 53423\n"
      "h_count 144320\n"
      "# TYPE s summary\n"
      "s{quantile=\"0.5\"} 4773\n"
      "s_sum 1.7560473e+07\n"
      "s_count 2693\n");
  ASSERT_EQ(e.families.size(), 2u);
  EXPECT_EQ(e.families[0].samples.size(), 4u);
  EXPECT_EQ(e.families[1].samples.size(), 3u);
  EXPECT_EQ(e.families[1].kind, text_format::MetricKind::kSummary);
}

TEST(TextFormat, AcceptsBlanksTrailingCommaAndNoFinalNewline) {
  EXPECT_FALSE(Check("  m { a = \"1\" , b=\"2\", } 3"));
  EXPECT_FALSE(Check(""));
  EXPECT_FALSE(Check("\n\n# only comments\n"));
  EXPECT_FALSE(Check("m{} 1\n"));
  EXPECT_FALSE(Check("m\t1\t2\n"));
}

struct Malformed {
  const char* body;
  size_t line;
  const char* code;
};

class TextFormatMalformed : public ::testing::TestWithParam<Malformed> {};

TEST_P(TextFormatMalformed, IsRejectedWithLineAndReason) {
  const auto& p = GetParam();
  const auto error = Check(p.body);
  ASSERT_TRUE(error) << p.body;
  EXPECT_EQ(error->line, p.line) << p.body << " -> " << error->ToString();
  EXPECT_EQ(error->code, p.code) << p.body << " -> " << error->ToString();
  EXPECT_FALSE(error->reason.empty());
}

INSTANTIATE_TEST_SUITE_P(
    EveryShape, TextFormatMalformed,
    ::testing::Values(
        Malformed{"ok 1\n1bad 2\n", 2, "bad_metric_name"},
        Malformed{"ok 1\nbad-name 2\n", 2, "bad_metric_name"},
        Malformed{"m{1a=\"x\"} 1\n", 1, "bad_label"}, Malformed{"m{a-b=\"x\"} 1\n", 1, "bad_label"},
        Malformed{"m{a=x} 1\n", 1, "bad_label"}, Malformed{"m{a=\"x} 1\n", 1, "bad_label"},
        Malformed{"m{a=\"x\" 1\n", 1, "bad_label"},
        Malformed{"m{a=\"x\" b=\"y\"} 1\n", 1, "bad_label"}, Malformed{"m{a} 1\n", 1, "bad_label"},
        Malformed{"m{a=\"x\",a=\"y\"} 1\n", 1, "duplicate_label"},
        Malformed{"m{a=\"\\t\"} 1\n", 1, "bad_escape"},
        Malformed{"m{a=\"\xff\"} 1\n", 1, "bad_utf8"},
        Malformed{"m{a=\"\xc0\xaf\"} 1\n", 1, "bad_utf8"},
        Malformed{"m{a=\"\xed\xa0\x80\"} 1\n", 1, "bad_utf8"}, Malformed{"m\n", 1, "bad_value"},
        Malformed{"m abc\n", 1, "bad_value"}, Malformed{"m 1.2.3\n", 1, "bad_value"},
        Malformed{"m 0x10\n", 1, "bad_value"}, Malformed{"m 1e999\n", 1, "bad_value"},
        Malformed{"m ++1\n", 1, "bad_value"}, Malformed{"m nan(1)\n", 1, "bad_value"},
        Malformed{"m 1\r\n", 1, "bad_value"}, Malformed{"m 1 1.5\n", 1, "bad_timestamp"},
        Malformed{"m 1 99999999999999999999\n", 1, "bad_timestamp"},
        Malformed{"m 1 2 3\n", 1, "trailing_garbage"},
        Malformed{"# TYPE m counter\n# TYPE m gauge\n", 2, "duplicate_type"},
        Malformed{"# HELP m a\n# HELP m b\n", 2, "duplicate_help"},
        Malformed{"m 1\n# TYPE m counter\n", 2, "late_type"},
        Malformed{"# TYPE m cheese\n", 1, "bad_type"},
        Malformed{"# TYPE m counter extra\n", 1, "bad_type"},
        Malformed{"# TYPE 9m counter\n", 1, "bad_metric_name"},
        Malformed{"# HELP\n", 1, "bad_metric_name"},
        Malformed{"# HELP m bad \\q escape\n", 1, "bad_escape"},
        Malformed{"# HELP m trailing \\", 1, "bad_escape"},
        Malformed{"# HELP m \xfe\n", 1, "bad_utf8"},
        Malformed{"# TYPE h histogram\nh_bucket 1\n", 2, "bad_histogram"},
        Malformed{"# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", 2, "bad_histogram"},
        Malformed{"# TYPE h histogram\nh 1\n", 2, "bad_histogram"},
        Malformed{"# TYPE s summary\ns 1\n", 2, "bad_summary"},
        Malformed{"# TYPE s summary\ns{quantile=\"q\"} 1\n", 2, "bad_summary"},
        Malformed{"x{__name__=\"y\"} 1\n", 1, "reserved_label"},
        Malformed{"m 1\nm 2\n", 2, "duplicate_series"},
        Malformed{"m{a=\"1\",b=\"2\"} 1\nm{b=\"2\",a=\"1\"} 1\n", 2, "duplicate_series"},
        Malformed{"# TYPE h histogram\nh_count 1\nh_count 2\n", 3, "duplicate_series"}));

TEST(TextFormat, LimitsAreEnforced) {
  text_format::TextFormatLimits limits;
  limits.max_body_bytes = 10;
  EXPECT_EQ(Check("metric_name 1\n", limits)->code, "too_large");
  limits = {};
  limits.max_line_bytes = 8;
  EXPECT_EQ(Check("a 1\nlong_name 1\n", limits)->code, "line_too_long");
  EXPECT_EQ(Check("a 1\nlong_name 1\n", limits)->line, 2u);
  limits = {};
  limits.max_labels_per_sample = 2;
  EXPECT_EQ(Check("m{a=\"1\",b=\"2\",c=\"3\"} 1\n", limits)->code, "too_many_labels");
  limits = {};
  limits.max_samples = 2;
  EXPECT_EQ(Check("a 1\nb 1\nc 1\n", limits)->code, "too_many_samples");
}

TEST(TextFormat, FailedParseLeavesNothingBehind) {
  text_format::Exposition e;
  ASSERT_TRUE(text_format::ParseTextFormat("a 1\nb x\n", {}, &e));
  EXPECT_TRUE(e.families.empty());
  EXPECT_EQ(e.sample_count, 0u);
}

TEST(TextFormat, RoundTripsThroughTheWriter) {
  const std::string body =
      "# HELP m help with \\\\ and \\n\n"
      "# TYPE m gauge\n"
      "m{a=\"q\\\"uote\",b=\"line\\nbreak\"} 0.1 123\n"
      "m{a=\"x\",b=\"y\"} NaN\n"
      "m{a=\"x\",b=\"z\"} -Inf\n";
  const auto e = MustParse(body);
  std::string out;
  text_format::AppendFamilyHeader(out, e.families[0]);
  for (const auto& s : e.families[0].samples)
    text_format::AppendSample(out, s.name, s.labels, s.value, s.timestamp_ms);
  EXPECT_EQ(out, body);
}

TEST(TextFormat, FormatValueIsShortestRoundTrip) {
  EXPECT_EQ(text_format::FormatValue(0.1), "0.1");
  EXPECT_EQ(text_format::FormatValue(1e21), "1e+21");
  EXPECT_EQ(text_format::FormatValue(42), "42");
  EXPECT_EQ(text_format::FormatValue(NAN), "NaN");
  EXPECT_EQ(text_format::FormatValue(-INFINITY), "-Inf");
}

}  // namespace
}  // namespace meshflow::gateway
