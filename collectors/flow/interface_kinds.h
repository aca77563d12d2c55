#pragma once

#include <re2/re2.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/config.h"

namespace meshflow::flow {

// The one owner of the interface-kind rule (flows.capture.kinds). The flow pipeline labels each
// interface it counts with it (meshflow_capture_interface_info), live and in replay alike.
class InterfaceKinds {
 public:
  // Throws std::invalid_argument for a pattern RE2 rejects (config parsing rejects them first).
  explicit InterfaceKinds(const std::vector<CaptureConfig::KindRule>& rules);

  // overlay, underlay or pod: the first rule that matches; underlay when none does.
  const std::string& KindOf(std::string_view name) const;

 private:
  struct Rule {
    std::unique_ptr<RE2> pattern;
    std::string kind;
  };
  std::vector<Rule> rules_;
};

// Compiles an interface-name pattern; throws std::invalid_argument naming it when RE2 rejects it.
std::unique_ptr<RE2> CompileInterfacePattern(const std::string& pattern);

}  // namespace meshflow::flow
