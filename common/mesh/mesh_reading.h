#pragma once

#include <prometheus/metric_family.h>

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/text_format/text_format.h"

namespace meshflow::mesh {

// What one node's exposition says about its own probes: the cumulative counters of one
// src -> dst link and method, as read at one instant.
struct LinkReading {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count), le ascending
  double received = 0;                             // meshflow_probe_rtt_seconds_count
  double lost = 0;
  double forward_lost = 0;
  double return_lost = 0;
  bool has_direction = false;  // forward/return loss present (udp)
};

// One node's reading: its probe links by (dst, method), its path MTUs by dst, and the bytes it
// counted on overlay-kind interfaces by (src, dst, role).
struct NodeReading {
  std::map<std::pair<std::string, std::string>, LinkReading> links;
  std::map<std::string, double> path_mtu_bytes;
  std::map<std::tuple<std::string, std::string, std::string>, double> overlay_bytes;
};

// Reads the families the mesh view needs. Only series whose src_node is `node` count for its
// probe links, so a node can never write another node's row.
NodeReading ReadExposition(const std::string& node, const text_format::Exposition& exposition);
NodeReading ReadFamilies(const std::string& node,
                         const std::vector<prometheus::MetricFamily>& families);

}  // namespace meshflow::mesh
