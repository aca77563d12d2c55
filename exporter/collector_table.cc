#include "exporter/collector_table.h"

#include <vector>

namespace meshflow {

std::span<const CollectorEntry> CollectorTable() {
  // {name, enabled by default, help, factory}
  static const std::vector<CollectorEntry> kTable = {};
  return kTable;
}

}  // namespace meshflow
