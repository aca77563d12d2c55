#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/config/config.h"
#include "common/discovery/source.h"

namespace meshflow::discovery {

// A name an address gave for itself (hello.h), or this node's own addresses.
using Identities = std::map<IpAddress, std::string>;

struct MergeReport {
  // Each: "<what>: <why it was dropped>", for one log line per change.
  std::vector<std::string> conflicts;
};

// The config's rule for node names: 1 to 63 of [A-Za-z0-9._-], starting with a letter or digit,
// and not the reserved "external" or "overflow".
bool IsValidNodeName(std::string_view name);

// A name a nameless node can carry: its first address, ':' written as '-' so it is a valid
// node name. Marks a peer nobody has named yet; a hello replaces it.
std::string AddressName(const IpAddress& address);

// Names and de-duplicates what the sources found, in source order:
//  - a nameless node takes the identity of its first host address, else AddressName();
//  - the same name from two sources is one node with the union of their addresses;
//  - an address already owned by an earlier node is dropped from the later one (a conflict);
//  - a node left with no address is dropped.
std::vector<NodeSpec> NameAndMerge(const std::vector<std::vector<DiscoveredNode>>& by_source,
                                   const Identities& identities, MergeReport* report);

// The node table the collectors get: every static node as written, then each discovered node
// whose name and addresses the static list does not already claim. Static entries win on every
// conflict (same name: the discovered one is dropped whole; same address: that address is).
std::vector<NodeSpec> MergeWithStatic(const std::vector<NodeSpec>& static_nodes,
                                      const std::vector<NodeSpec>& discovered, MergeReport* report);

}  // namespace meshflow::discovery
