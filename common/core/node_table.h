#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/core/ip_address.h"

namespace meshflow {

// Maps an address to the node that owns it: longest-prefix match over the configured CIDRs,
// with this node's own interface addresses mapping to its own name.
class NodeTable {
 public:
  using NodeId = uint16_t;
  static constexpr NodeId kExternal = 0;  // "external": no configured prefix matches

  struct Entry {
    std::string name;
    std::vector<IpPrefix> prefixes;
  };

  NodeTable() = default;
  NodeTable(const std::vector<Entry>& nodes, const std::string& self_name,
            const std::vector<IpAddress>& self_addresses);

  NodeId Lookup(const IpAddress& address) const;
  // Name of a node id; kExternal is "external".
  const std::string& Name(NodeId id) const { return names_[id]; }
  size_t size() const { return names_.size(); }
  NodeId self() const { return self_; }
  // Id of a node by name, or kExternal.
  NodeId Find(const std::string& name) const;

 private:
  struct Route {
    IpPrefix prefix;
    NodeId node;
  };
  std::vector<std::string> names_{"external"};
  std::vector<Route> routes_;  // longest prefix first, so the first hit wins
  NodeId self_ = kExternal;
};

}  // namespace meshflow
