#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "collectors/flow/packet_sink.h"
#include "common/config/config.h"

namespace meshflow::flow {

// Runs pcap and pcapng files through the flow pipeline live capture uses and writes the final
// exposition (Prometheus text format) to `out`. Each file is one interface, named after the
// file's stem (eth0.pcap -> iface="eth0"), so flows.capture.kinds applies as it does live.
// This host's own addresses play no part: nodes come from the config alone.
// Returns 0; on an unreadable or non-capture file writes an error naming it to `err`, returns 1.
int ReplayCaptures(const Config& config, const std::vector<std::string>& files, std::ostream& out,
                   std::ostream& err);

enum class CaptureReader {
  kAuto,     // classic pcap from a memory map, pcapng and the rest through libpcap
  kLibpcap,  // always libpcap (for comparing the two readers)
};

// Feeds one capture file into `sink` as interface `interface_name` (its stem when empty).
// Returns false with a message naming the file in `error` when it cannot be read.
bool ReplayFile(const std::string& file, PacketSink& sink, std::string* error,
                const std::string& interface_name = "",
                CaptureReader reader = CaptureReader::kAuto);

}  // namespace meshflow::flow
