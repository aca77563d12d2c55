#include "common/text_format/text_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "common/core/enum_names.h"
#include "common/text_format/names.h"

namespace meshflow::text_format {
namespace {

// The words of a TYPE line.
constexpr EnumName<MetricKind> kKindNames[] = {
    {MetricKind::kCounter, "counter"},     {MetricKind::kGauge, "gauge"},
    {MetricKind::kHistogram, "histogram"}, {MetricKind::kSummary, "summary"},
    {MetricKind::kUntyped, "untyped"},
};

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF.
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// Go's strconv.ParseFloat as Prometheus uses it, minus hex floats and underscores.
std::optional<double> ParseValue(std::string_view s) {
  if (s.empty()) return std::nullopt;
  bool negative = false;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    s.remove_prefix(1);
    if (s.empty() || s[0] == '+' || s[0] == '-') return std::nullopt;
  }
  for (char c : s) {
    if (c == '(' || c == 'x' || c == 'X' || c == '_') return std::nullopt;
  }
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return negative ? -v : v;
}

std::optional<int64_t> ParseTimestamp(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

class Parser {
 public:
  Parser(const TextFormatLimits& limits, Exposition* out) : limits_(limits), out_(out) {}

  std::optional<TextFormatError> Run(std::string_view body) {
    if (body.size() > limits_.max_body_bytes)
      return TextFormatError{0, "too_large",
                             "body of " + std::to_string(body.size()) +
                                 " bytes exceeds the limit of " +
                                 std::to_string(limits_.max_body_bytes)};
    size_t start = 0;
    while (start < body.size()) {
      size_t end = body.find('\n', start);
      if (end == std::string_view::npos) end = body.size();
      ++line_no_;
      line_ = body.substr(start, end - start);
      pos_ = 0;
      if (line_.size() > limits_.max_line_bytes) {
        Fail("line_too_long", "line of " + std::to_string(line_.size()) +
                                  " bytes exceeds the limit of " +
                                  std::to_string(limits_.max_line_bytes));
      } else {
        ParseLine();
      }
      if (error_) return error_;
      start = end + 1;
    }
    return std::nullopt;
  }

 private:
  void Fail(std::string code, std::string reason) {
    if (!error_) error_ = TextFormatError{line_no_, std::move(code), std::move(reason)};
  }
  bool AtEnd() const { return pos_ >= line_.size(); }
  char Peek() const { return line_[pos_]; }
  void SkipBlanks() {
    while (!AtEnd() && IsBlank(Peek())) ++pos_;
  }
  std::string_view Token() {
    const size_t begin = pos_;
    while (!AtEnd() && !IsBlank(Peek())) ++pos_;
    return line_.substr(begin, pos_ - begin);
  }
  std::string_view MetricName() {
    const size_t begin = pos_;
    if (AtEnd() || !IsMetricNameStart(Peek())) return {};
    while (!AtEnd() && IsMetricNameChar(Peek())) ++pos_;
    return line_.substr(begin, pos_ - begin);
  }

  void ParseLine() {
    SkipBlanks();
    if (AtEnd()) return;  // blank line
    if (Peek() == '#') {
      ++pos_;
      ParseComment();
      return;
    }
    ParseSample();
  }

  void ParseComment() {
    SkipBlanks();
    const std::string_view keyword = Token();
    if (keyword != "HELP" && keyword != "TYPE") return;  // a plain comment
    SkipBlanks();
    const std::string_view name = MetricName();
    if (name.empty() || (!AtEnd() && !IsBlank(Peek()))) {
      Fail("bad_metric_name", "invalid metric name in " + std::string(keyword) + " line");
      return;
    }
    Family& family = FamilyNamed(name);
    if (keyword == "HELP") {
      if (family.has_help) {
        Fail("duplicate_help", "second HELP line for " + std::string(name));
        return;
      }
      if (!AtEnd()) ++pos_;  // the one blank after the name; the rest is the text
      std::string help;
      while (!AtEnd()) {
        char c = Peek();
        ++pos_;
        if (c == '\\') {
          if (AtEnd()) {
            Fail("bad_escape", "HELP text ends in a lone backslash");
            return;
          }
          c = Peek();
          ++pos_;
          if (c == 'n') {
            help += '\n';
          } else if (c == '\\') {
            help += '\\';
          } else {
            Fail("bad_escape", std::string("invalid escape \\") + c + " in HELP text");
            return;
          }
        } else {
          help += c;
        }
      }
      if (!ValidUtf8(help)) {
        Fail("bad_utf8", "HELP text is not valid UTF-8");
        return;
      }
      family.has_help = true;
      if (out_) out_->families[family.index].help = std::move(help);
      if (out_) out_->families[family.index].has_help = true;
      return;
    }
    // TYPE
    if (family.has_type) {
      Fail("duplicate_type", "second TYPE line for " + std::string(name));
      return;
    }
    if (family.has_samples) {
      Fail("late_type", "TYPE line for " + std::string(name) + " after its samples");
      return;
    }
    SkipBlanks();
    const std::string_view type = Token();
    SkipBlanks();
    if (!AtEnd()) {
      Fail("bad_type", "unexpected text after the type of " + std::string(name));
      return;
    }
    const std::optional<MetricKind> kind = ValueNamed(kKindNames, type);
    if (!kind) {
      Fail("bad_type", "unknown metric type \"" + std::string(type) + "\"");
      return;
    }
    family.kind = *kind;
    family.has_type = true;
    if (out_) out_->families[family.index].kind = family.kind;
  }

  void ParseSample() {
    const std::string_view name = MetricName();
    if (name.empty() || (!AtEnd() && !IsBlank(Peek()) && Peek() != '{')) {
      Fail("bad_metric_name", "invalid metric name at the start of a sample line");
      return;
    }
    TextSample sample;
    sample.name = std::string(name);
    SkipBlanks();
    if (!AtEnd() && Peek() == '{') {
      ++pos_;
      if (!ParseLabels(sample.labels)) return;
    }
    SkipBlanks();
    const std::string_view value_text = Token();
    const auto value = ParseValue(value_text);
    if (!value) {
      Fail("bad_value", value_text.empty() ? "sample of " + std::string(name) + " has no value"
                                           : "invalid value \"" + std::string(value_text) + "\"");
      return;
    }
    sample.value = *value;
    SkipBlanks();
    if (!AtEnd()) {
      const std::string_view ts_text = Token();
      sample.timestamp_ms = ParseTimestamp(ts_text);
      if (!sample.timestamp_ms) {
        Fail("bad_timestamp", "invalid timestamp \"" + std::string(ts_text) + "\"");
        return;
      }
      SkipBlanks();
      if (!AtEnd()) {
        Fail("trailing_garbage", "unexpected text after the timestamp");
        return;
      }
    }
    if (++sample_count_ > limits_.max_samples) {
      Fail("too_many_samples",
           "more than " + std::to_string(limits_.max_samples) + " samples in one body");
      return;
    }
    Family& family = FamilyOfSample(name);
    if (!CheckShape(family, sample)) return;
    if (!series_.insert(SeriesKey(sample)).second) {
      Fail("duplicate_series", "second sample of the series " + SeriesText(sample));
      return;
    }
    family.has_samples = true;
    if (out_) {
      out_->families[family.index].samples.push_back(std::move(sample));
      ++out_->sample_count;
    }
  }

  bool ParseLabels(TextLabels& labels) {
    for (;;) {
      SkipBlanks();
      if (AtEnd()) {
        Fail("bad_label", "label set is not closed with }");
        return false;
      }
      if (Peek() == '}') {
        ++pos_;
        return true;
      }
      const size_t begin = pos_;
      if (!IsLabelNameStart(Peek())) {
        Fail("bad_label", "invalid label name");
        return false;
      }
      while (!AtEnd() && IsLabelNameChar(Peek())) ++pos_;
      std::string label_name(line_.substr(begin, pos_ - begin));
      // The sample's name is its __name__: a second one would make the series ambiguous, and
      // Prometheus refuses the whole scrape that carries it.
      if (label_name == "__name__") {
        Fail("reserved_label", "label name __name__ is reserved for the metric name");
        return false;
      }
      SkipBlanks();
      if (AtEnd() || Peek() != '=') {
        Fail("bad_label", "expected = after label name " + label_name);
        return false;
      }
      ++pos_;
      SkipBlanks();
      if (AtEnd() || Peek() != '"') {
        Fail("bad_label", "value of label " + label_name + " is not quoted");
        return false;
      }
      ++pos_;
      std::string value;
      bool closed = false;
      while (!AtEnd()) {
        char c = Peek();
        ++pos_;
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (AtEnd()) break;
          c = Peek();
          ++pos_;
          if (c == 'n') {
            value += '\n';
          } else if (c == '\\' || c == '"') {
            value += c;
          } else {
            Fail("bad_escape",
                 std::string("invalid escape \\") + c + " in value of label " + label_name);
            return false;
          }
        } else {
          value += c;
        }
      }
      if (!closed) {
        Fail("bad_label", "value of label " + label_name + " is not closed with \"");
        return false;
      }
      if (!ValidUtf8(value)) {
        Fail("bad_utf8", "value of label " + label_name + " is not valid UTF-8");
        return false;
      }
      for (const auto& [existing, unused] : labels) {
        if (existing == label_name) {
          Fail("duplicate_label", "label " + label_name + " appears twice");
          return false;
        }
      }
      if (labels.size() >= limits_.max_labels_per_sample) {
        Fail("too_many_labels",
             "more than " + std::to_string(limits_.max_labels_per_sample) + " labels on a sample");
        return false;
      }
      labels.emplace_back(std::move(label_name), std::move(value));
      SkipBlanks();
      if (AtEnd()) continue;  // reported at the top of the loop
      if (Peek() == ',') {
        ++pos_;
      } else if (Peek() != '}') {
        Fail("bad_label", "expected , or } after a label value");
        return false;
      }
    }
  }

  struct Family {
    std::string name;
    size_t index = 0;
    MetricKind kind = MetricKind::kUntyped;
    bool has_type = false;
    bool has_help = false;
    bool has_samples = false;
  };

  Family& FamilyNamed(std::string_view name) {
    auto it = families_.find(std::string(name));
    if (it != families_.end()) return it->second;
    Family f;
    f.name = std::string(name);
    f.index = families_.size();
    if (out_) {
      TextFamily tf;
      tf.name = std::string(name);
      out_->families.push_back(std::move(tf));
    }
    return families_.emplace(std::string(name), f).first->second;
  }

  // x_bucket, x_sum and x_count belong to x when x is a declared histogram or summary.
  Family& FamilyOfSample(std::string_view name) {
    auto it = families_.find(std::string(name));
    if (it != families_.end() && it->second.kind != MetricKind::kHistogram &&
        it->second.kind != MetricKind::kSummary)
      return it->second;
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      if (name.size() <= suffix.size() || !name.ends_with(suffix)) continue;
      auto base = families_.find(std::string(name.substr(0, name.size() - suffix.size())));
      if (base == families_.end()) continue;
      const MetricKind k = base->second.kind;
      if (k == MetricKind::kHistogram || (k == MetricKind::kSummary && suffix != "_bucket"))
        return base->second;
    }
    return FamilyNamed(name);
  }

  // Name and labels in label-name order, with separators no name or UTF-8 value contains.
  static std::string SeriesKey(const TextSample& sample) {
    std::vector<const std::pair<std::string, std::string>*> sorted;
    sorted.reserve(sample.labels.size());
    for (const auto& label : sample.labels) sorted.push_back(&label);
    std::sort(sorted.begin(), sorted.end(),
              [](const auto* a, const auto* b) { return a->first < b->first; });
    std::string key = sample.name;
    for (const auto* label : sorted) {
      key += '\xff';
      key += label->first;
      key += '\xfe';
      key += label->second;
    }
    return key;
  }
  static std::string SeriesText(const TextSample& sample) {
    std::string text = sample.name + "{";
    for (const auto& [k, v] : sample.labels) text += k + "=\"" + v + "\",";
    if (text.back() == ',') text.pop_back();
    return text + "}";
  }

  static const std::string* FindLabel(const TextLabels& labels, std::string_view name) {
    for (const auto& [k, v] : labels)
      if (k == name) return &v;
    return nullptr;
  }

  bool CheckShape(const Family& family, const TextSample& sample) {
    const std::string& family_name = family.name;
    if (family.kind == MetricKind::kHistogram) {
      if (sample.name == family_name + "_bucket") {
        const std::string* le = FindLabel(sample.labels, "le");
        if (!le || !ParseValue(*le)) {
          Fail("bad_histogram", "bucket of histogram " + family_name + " without a valid le label");
          return false;
        }
      } else if (sample.name == family_name) {
        Fail("bad_histogram", "histogram " + family_name + " has a sample without a suffix");
        return false;
      }
    } else if (family.kind == MetricKind::kSummary && sample.name == family_name) {
      const std::string* q = FindLabel(sample.labels, "quantile");
      if (!q || !ParseValue(*q)) {
        Fail("bad_summary", "sample of summary " + family_name + " without a valid quantile label");
        return false;
      }
    }
    return true;
  }

  const TextFormatLimits& limits_;
  Exposition* out_;
  std::unordered_map<std::string, Family> families_;
  std::unordered_set<std::string> series_;
  std::string_view line_;
  size_t pos_ = 0;
  size_t line_no_ = 0;
  size_t sample_count_ = 0;
  std::optional<TextFormatError> error_;
};

}  // namespace

std::string_view MetricKindName(MetricKind kind) { return NameOf(kKindNames, kind, "untyped"); }

std::string TextFormatError::ToString() const {
  return "line " + std::to_string(line) + ": " + reason;
}

std::optional<TextFormatError> ParseTextFormat(std::string_view body,
                                               const TextFormatLimits& limits, Exposition* out) {
  if (out) *out = Exposition{};
  Parser parser(limits, out);
  auto error = parser.Run(body);
  if (error && out) *out = Exposition{};
  return error;
}

}  // namespace meshflow::text_format
