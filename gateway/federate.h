#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/text_format/text_format.h"
#include "gateway/selector.h"

namespace meshflow::gateway {

// The latest parsed exposition of one node.
struct NodeExposition {
  std::string node;
  std::shared_ptr<const text_format::Exposition> exposition;
};

struct FederateStats {
  uint64_t samples_out = 0;
  // Families skipped on a node because another node declared the same name with another type;
  // Prometheus would refuse the whole scrape otherwise.
  uint64_t type_conflicts = 0;
  // The deadline passed before every sample was looked at; the body is then empty.
  bool out_of_time = false;
};

// Merges the nodes' samples that match any of `selectors` into one text-format body, each sample
// with a `node` label (a `node` label the node set itself becomes `exported_node`). Families
// keep their order of first appearance; nodes are taken in the order given.
// Gives up (out_of_time, empty body) once `deadline` passes, so a request's cost is bounded
// whatever the number of stored samples and selectors.
std::string Federate(
    const std::vector<NodeExposition>& nodes, const std::vector<Selector>& selectors,
    FederateStats* stats,
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max());

}  // namespace meshflow::gateway
