#pragma once

#include <re2/re2.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meshflow::gateway {

enum class MatchOp { kEqual, kNotEqual, kRegex, kNotRegex };

// One label matcher of a PromQL selector. An absent label matches as the empty string, as in
// Prometheus; regexes are anchored at both ends.
struct LabelMatcher {
  std::string name;
  MatchOp op = MatchOp::kEqual;
  std::string value;
  std::shared_ptr<const RE2> regex;  // for kRegex and kNotRegex

  bool Matches(std::string_view label_value) const;
};

// Looks a label up by name ("__name__" is the sample's name); empty when absent.
using LabelLookup = std::function<std::string_view(std::string_view name)>;

// A series selector: all matchers must match.
struct Selector {
  std::vector<LabelMatcher> matchers;
  bool Matches(const LabelLookup& lookup) const;
};

// Parses the subset of PromQL selector syntax used by match[]: `name`, `name{l="v",...}` and
// `{__name__=~"re",l!="v"}` with =, !=, =~ and !~. As in Prometheus, at least one matcher must
// not match the empty string, so a selector never selects everything by accident.
std::optional<Selector> ParseSelector(std::string_view text, std::string* error);

}  // namespace meshflow::gateway
