#include "collectors/flow/interface_kinds.h"

#include <stdexcept>

namespace meshflow::flow {

std::unique_ptr<RE2> CompileInterfacePattern(const std::string& pattern) {
  auto re = std::make_unique<RE2>(pattern, RE2::Quiet);
  if (!re->ok())
    throw std::invalid_argument("interface pattern \"" + pattern + "\": " + re->error());
  return re;
}

InterfaceKinds::InterfaceKinds(const std::vector<CaptureConfig::KindRule>& rules) {
  for (const auto& rule : rules)
    rules_.push_back({CompileInterfacePattern(rule.pattern), rule.kind});
}

const std::string& InterfaceKinds::KindOf(std::string_view name) const {
  static const std::string kUnderlay = "underlay";
  for (const auto& rule : rules_)
    if (RE2::PartialMatch(name, *rule.pattern)) return rule.kind;
  return kUnderlay;
}

}  // namespace meshflow::flow
