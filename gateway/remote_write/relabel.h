#pragma once

#include <vector>

#include "gateway/gateway_config.h"
#include "gateway/remote_write/write_request.h"

namespace meshflow::gateway::remote_write {

// Applies write_relabel_configs in order, as Prometheus does for the actions meshflow takes:
// keep and drop select series by the joined values of their source labels, labeldrop and
// labelkeep strip labels by name. Returns false when the series is dropped.
bool Relabel(const std::vector<RelabelRule>& rules, Labels& labels);

}  // namespace meshflow::gateway::remote_write
