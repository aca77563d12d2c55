#include "exporter/collector_table.h"

#include <vector>

#include "collectors/probe/probe_collector.h"

namespace meshflow {

std::span<const CollectorEntry> CollectorTable() {
  // {name, enabled by default, help, factory}
  static const std::vector<CollectorEntry> kTable = {
      {"probe", true, "RTT, loss and jitter to every peer (icmp, udp, tcp); the udp reflector",
       &probe::MakeProbeCollector},
  };
  return kTable;
}

}  // namespace meshflow
