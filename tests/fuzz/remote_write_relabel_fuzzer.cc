// write_relabel_configs take their regex and replacement from the config: the replacement's
// $1 / ${name} template is parsed at every relabelling. Input: regex, a newline, replacement,
// a newline, the value relabelled.
#include <re2/re2.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/remote_write/relabel.h"

using namespace meshflow::gateway;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t first = input.find('\n');
  if (first == std::string_view::npos) return 0;
  const size_t second = input.find('\n', first + 1);
  if (second == std::string_view::npos) return 0;
  const std::string pattern(input.substr(0, first));
  const std::string replacement(input.substr(first + 1, second - first - 1));
  const std::string value(input.substr(second + 1));
  RE2::Options options;
  options.set_log_errors(false);
  auto regex = std::make_shared<RE2>("^(?:" + pattern + ")$", options);
  if (!regex->ok()) return 0;
  std::string out;
  if (remote_write::ExpandMatch(*regex, value, replacement, out)) {
    // Each $ reference adds at most the whole value; everything else is the template's text.
    if (out.size() > replacement.size() * (value.size() + 1)) std::abort();
  }
  for (const auto action : {RelabelRule::Action::kReplace, RelabelRule::Action::kLabelMap,
                            RelabelRule::Action::kHashMod}) {
    RelabelRule rule;
    rule.action = action;
    rule.source_labels = {"v"};
    rule.regex = regex;
    rule.target_label = "t";
    rule.replacement = replacement;
    rule.modulus = 7;
    remote_write::Labels labels{{"__name__", "m"}};
    if (!value.empty()) labels.emplace_back("v", value);  // as the scrape loop: no empty labels
    remote_write::Relabel({rule}, labels);
    for (const auto& [name, v] : labels) {
      if (name.empty() || v.empty()) std::abort();  // an empty value is no label
    }
  }
  return 0;
}
