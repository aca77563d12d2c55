#include "common/core/node_table.h"

#include <algorithm>

namespace meshflow {

NodeTable::NodeTable(const std::vector<Entry>& nodes, const std::string& self_name,
                     const std::vector<IpAddress>& self_addresses) {
  for (const auto& node : nodes) {
    const auto id = static_cast<NodeId>(names_.size());
    names_.push_back(node.name);
    for (const auto& p : node.prefixes) routes_.push_back({p, id});
  }
  self_ = Find(self_name);
  if (self_ == kExternal) {
    self_ = static_cast<NodeId>(names_.size());
    names_.push_back(self_name);
  }
  // The node's own addresses beat any configured prefix: they are certain.
  for (const auto& a : self_addresses) {
    routes_.push_back({IpPrefix{a, a.is_v4() ? 32 : 128}, self_});
  }
  // IPv4 prefixes are compared in their own width; shift them so /32 and /128 both rank as hosts.
  auto rank = [](const Route& r) {
    return r.prefix.address.is_v4() ? r.prefix.bits + 96 : r.prefix.bits;
  };
  std::stable_sort(routes_.begin(), routes_.end(),
                   [&](const Route& a, const Route& b) { return rank(a) > rank(b); });
}

NodeTable::NodeId NodeTable::Lookup(const IpAddress& address) const {
  for (const auto& r : routes_) {
    if (r.prefix.Contains(address)) return r.node;
  }
  return kExternal;
}

NodeTable::NodeId NodeTable::Find(const std::string& name) const {
  const auto it = std::find(names_.begin(), names_.end(), name);
  return it == names_.end() ? kExternal : static_cast<NodeId>(it - names_.begin());
}

}  // namespace meshflow
