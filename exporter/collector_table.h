#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "common/config/config.h"
#include "common/core/collector.h"

namespace meshflow {

// One row per collector: the only place collectors are registered. Each row also yields the
// flags --collector.<name> and --no-collector.<name>.
struct CollectorEntry {
  std::string_view name;
  bool enabled_by_default;
  std::string_view help;
  std::unique_ptr<Collector> (*create)(const Config& config);
};

std::span<const CollectorEntry> CollectorTable();

}  // namespace meshflow
