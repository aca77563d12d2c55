#include "collectors/flow/capture/interface_selector.h"

#include <stdexcept>

namespace meshflow::flow {
namespace {

std::unique_ptr<RE2> Compile(const std::string& pattern) {
  auto re = std::make_unique<RE2>(pattern, RE2::Quiet);
  if (!re->ok())
    throw std::invalid_argument("interface pattern \"" + pattern + "\": " + re->error());
  return re;
}

bool AnyMatches(const std::vector<std::unique_ptr<RE2>>& patterns, std::string_view name) {
  for (const auto& re : patterns)
    if (RE2::PartialMatch(name, *re)) return true;
  return false;
}

}  // namespace

InterfaceSelector::InterfaceSelector(const CaptureConfig& config) {
  for (const auto& p : config.include) include_.push_back(Compile(p));
  for (const auto& p : config.exclude) exclude_.push_back(Compile(p));
  for (const auto& rule : config.kinds) kinds_.push_back({Compile(rule.pattern), rule.kind});
}

bool InterfaceSelector::Selected(std::string_view name) const {
  return AnyMatches(include_, name) && !AnyMatches(exclude_, name);
}

const std::string& InterfaceSelector::KindOf(std::string_view name) const {
  static const std::string kUnderlay = "underlay";
  for (const auto& rule : kinds_)
    if (RE2::PartialMatch(name, *rule.pattern)) return rule.kind;
  return kUnderlay;
}

}  // namespace meshflow::flow
