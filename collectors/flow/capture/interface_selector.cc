#include "collectors/flow/capture/interface_selector.h"

#include "collectors/flow/interface_kinds.h"

namespace meshflow::flow {
namespace {

bool AnyMatches(const std::vector<std::unique_ptr<RE2>>& patterns, std::string_view name) {
  for (const auto& re : patterns)
    if (RE2::PartialMatch(name, *re)) return true;
  return false;
}

}  // namespace

InterfaceSelector::InterfaceSelector(const CaptureConfig& config) {
  for (const auto& p : config.include) include_.push_back(CompileInterfacePattern(p));
  for (const auto& p : config.exclude) exclude_.push_back(CompileInterfacePattern(p));
}

bool InterfaceSelector::Selected(std::string_view name) const {
  return AnyMatches(include_, name) && !AnyMatches(exclude_, name);
}

}  // namespace meshflow::flow
