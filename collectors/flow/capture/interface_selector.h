#pragma once

#include <re2/re2.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/config.h"

namespace meshflow::flow {

// Decides from the config's RE2 patterns which interfaces are captured. What kind each one is
// belongs to the flow pipeline (InterfaceKinds), which counts its packets.
class InterfaceSelector {
 public:
  // Throws std::invalid_argument for a pattern RE2 rejects (config parsing rejects them first).
  explicit InterfaceSelector(const CaptureConfig& config);

  // True when `name` matches an include pattern and no exclude pattern.
  bool Selected(std::string_view name) const;

 private:
  std::vector<std::unique_ptr<RE2>> include_;
  std::vector<std::unique_ptr<RE2>> exclude_;
};

}  // namespace meshflow::flow
