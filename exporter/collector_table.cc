#include "exporter/collector_table.h"

#include <vector>

#include "collectors/flow/flow_collector.h"
#include "collectors/probe/probe_collector.h"

namespace meshflow {

std::span<const CollectorEntry> CollectorTable() {
  // {name, enabled by default, help, factory}
  static const std::vector<CollectorEntry> kTable = {
      {"flow", true,
       "Bytes, packets and TCP connection attempts per interface, role and node pair, from "
       "live libpcap capture; capture health per interface",
       &flow::CreateFlowCollector},
      {"probe", true, "RTT, loss and jitter to every peer (icmp, udp, tcp); the udp reflector",
       &probe::MakeProbeCollector},
  };
  return kTable;
}

}  // namespace meshflow
