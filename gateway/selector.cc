#include "gateway/selector.h"

#include "common/text_format/names.h"

namespace meshflow::gateway {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

constexpr size_t kMaxSelectorBytes = 4096;
constexpr size_t kMaxMatchers = 32;

class SelectorParser {
 public:
  explicit SelectorParser(std::string_view text) : text_(text) {}

  std::optional<Selector> Run(std::string* error) {
    Selector selector;
    if (text_.size() > kMaxSelectorBytes) return Fail(error, "selector longer than 4096 bytes");
    SkipSpace();
    if (!AtEnd() && text_format::IsMetricNameStart(Peek())) {
      const size_t begin = pos_;
      while (!AtEnd() && text_format::IsMetricNameChar(Peek())) ++pos_;
      LabelMatcher m;
      m.name = "__name__";
      m.value = std::string(text_.substr(begin, pos_ - begin));
      selector.matchers.push_back(std::move(m));
      SkipSpace();
    }
    if (!AtEnd() && Peek() == '{') {
      ++pos_;
      if (!ParseMatchers(selector, error)) return std::nullopt;
    }
    SkipSpace();
    if (!AtEnd()) return Fail(error, "unexpected text at offset " + std::to_string(pos_));
    if (selector.matchers.empty()) return Fail(error, "empty selector");
    bool selective = false;
    for (const auto& m : selector.matchers) selective = selective || !m.Matches("");
    if (!selective)
      return Fail(error,
                  "selector needs at least one matcher that does not match the empty string");
    return selector;
  }

 private:
  std::optional<Selector> Fail(std::string* error, std::string message) {
    if (error) *error = std::move(message);
    return std::nullopt;
  }
  static bool Error(std::string* error, std::string message) {
    if (error) *error = std::move(message);
    return false;
  }
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }
  void SkipSpace() {
    while (!AtEnd() && IsSpace(Peek())) ++pos_;
  }

  bool ParseMatchers(Selector& selector, std::string* error) {
    for (;;) {
      SkipSpace();
      if (AtEnd()) return Error(error, "label matchers not closed with }");
      if (Peek() == '}') {
        ++pos_;
        return true;
      }
      if (selector.matchers.size() >= kMaxMatchers) return Error(error, "more than 32 matchers");
      const size_t begin = pos_;
      if (!text_format::IsLabelNameStart(Peek())) return Error(error, "invalid label name");
      while (!AtEnd() && text_format::IsLabelNameChar(Peek())) ++pos_;
      LabelMatcher m;
      m.name = std::string(text_.substr(begin, pos_ - begin));
      SkipSpace();
      if (text_.substr(pos_).starts_with("=~")) {
        m.op = MatchOp::kRegex;
        pos_ += 2;
      } else if (text_.substr(pos_).starts_with("!~")) {
        m.op = MatchOp::kNotRegex;
        pos_ += 2;
      } else if (text_.substr(pos_).starts_with("!=")) {
        m.op = MatchOp::kNotEqual;
        pos_ += 2;
      } else if (text_.substr(pos_).starts_with("=")) {
        m.op = MatchOp::kEqual;
        pos_ += 1;
      } else {
        return Error(error, "expected =, !=, =~ or !~ after label " + m.name);
      }
      SkipSpace();
      auto value = ParseString(error);
      if (!value) return false;
      m.value = std::move(*value);
      if (m.op == MatchOp::kRegex || m.op == MatchOp::kNotRegex) {
        RE2::Options options;
        options.set_log_errors(false);
        options.set_max_mem(1 << 20);  // bounds compile cost of hostile patterns
        auto re = std::make_shared<RE2>(m.value, options);
        if (!re->ok()) return Error(error, "invalid regex for " + m.name + ": " + re->error());
        m.regex = std::move(re);
      }
      selector.matchers.push_back(std::move(m));
      SkipSpace();
      if (!AtEnd() && Peek() == ',') {
        ++pos_;
      } else if (AtEnd() || Peek() != '}') {
        return Error(error, "expected , or } after a matcher");
      }
    }
  }

  // PromQL string: "..." or '...' with Go escapes for quotes, backslash, \n, \t; `...` raw.
  std::optional<std::string> ParseString(std::string* error) {
    if (AtEnd() || (Peek() != '"' && Peek() != '\'' && Peek() != '`')) {
      if (error) *error = "expected a quoted string";
      return std::nullopt;
    }
    const char quote = Peek();
    ++pos_;
    std::string out;
    while (!AtEnd()) {
      char c = Peek();
      ++pos_;
      if (c == quote) return out;
      if (c == '\\' && quote != '`') {
        if (AtEnd()) break;
        c = Peek();
        ++pos_;
        switch (c) {
          case 'n':
            out += '\n';
            break;
          case 't':
            out += '\t';
            break;
          case '\\':
          case '"':
          case '\'':
            out += c;
            break;
          default:
            if (error) *error = std::string("invalid escape \\") + c;
            return std::nullopt;
        }
        continue;
      }
      out += c;
    }
    if (error) *error = "string not closed";
    return std::nullopt;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

bool LabelMatcher::Matches(std::string_view label_value) const {
  switch (op) {
    case MatchOp::kEqual:
      return label_value == value;
    case MatchOp::kNotEqual:
      return label_value != value;
    case MatchOp::kRegex:
      return RE2::FullMatch(label_value, *regex);
    case MatchOp::kNotRegex:
      return !RE2::FullMatch(label_value, *regex);
  }
  return false;
}

bool Selector::Matches(const LabelLookup& lookup) const {
  for (const auto& m : matchers) {
    if (!m.Matches(lookup(m.name))) return false;
  }
  return true;
}

std::optional<Selector> ParseSelector(std::string_view text, std::string* error) {
  return SelectorParser(text).Run(error);
}

}  // namespace meshflow::gateway
