#include "common/discovery/merge.h"

#include <algorithm>
#include <set>

namespace meshflow::discovery {
namespace {

bool IsHost(const IpPrefix& p) { return p.bits == (p.address.is_v4() ? 32 : 128); }

}  // namespace

bool IsValidNodeName(std::string_view name) {
  if (name.empty() || name.size() > 63 || name == "external" || name == "overflow") return false;
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  };
  if (!ok(name.front()) || name.front() == '.' || name.front() == '_' || name.front() == '-')
    return false;
  return std::all_of(name.begin(), name.end(), ok);
}

std::string AddressName(const IpAddress& address) {
  std::string s = address.ToString();
  std::replace(s.begin(), s.end(), ':', '-');
  if (!s.empty() && s.front() == '-') s.insert(s.begin(), '0');  // "::1" would start with '-'
  return s;
}

std::vector<NodeSpec> NameAndMerge(const std::vector<std::vector<DiscoveredNode>>& by_source,
                                   const Identities& identities, MergeReport* report) {
  std::vector<NodeSpec> out;
  std::map<std::string, size_t> by_name;
  std::map<IpPrefix, std::string> owner;
  for (const auto& nodes : by_source) {
    for (const auto& found : nodes) {
      if (found.addresses.empty()) continue;
      std::string name = found.name;
      if (name.empty()) {
        const auto host = std::find_if(found.addresses.begin(), found.addresses.end(), IsHost);
        const IpAddress& first =
            host != found.addresses.end() ? host->address : found.addresses.front().address;
        const auto id = identities.find(first);
        name = id != identities.end() ? id->second : AddressName(first);
      }
      if (!IsValidNodeName(name)) {
        if (report)
          report->conflicts.push_back("node \"" + Snippet(name, 80) + "\" (" + found.source +
                                      "): not a valid node name (1 to 63 letters, digits, '.', "
                                      "'_' or '-'; not external or overflow)");
        continue;
      }
      auto [it, fresh] = by_name.emplace(name, out.size());
      if (fresh) out.push_back(NodeSpec{name, {}});
      NodeSpec& node = out[it->second];
      for (const auto& p : found.addresses) {
        auto [o, claimed] = owner.emplace(p, name);
        if (claimed) {
          node.addresses.push_back(p);
        } else if (o->second != name && report) {
          report->conflicts.push_back(p.ToString() + " (" + found.source + ", node " + name +
                                      "): already claimed by node " + o->second);
        }
      }
    }
  }
  out.erase(
      std::remove_if(out.begin(), out.end(), [](const NodeSpec& n) { return n.addresses.empty(); }),
      out.end());
  return out;
}

std::vector<NodeSpec> MergeWithStatic(const std::vector<NodeSpec>& static_nodes,
                                      const std::vector<NodeSpec>& discovered,
                                      MergeReport* report) {
  std::vector<NodeSpec> out = static_nodes;
  std::set<std::string> names;
  std::set<IpPrefix> claimed;
  for (const auto& n : static_nodes) {
    names.insert(n.name);
    claimed.insert(n.addresses.begin(), n.addresses.end());
  }
  for (const auto& d : discovered) {
    if (names.count(d.name)) continue;  // the static entry says where this node is
    NodeSpec node{d.name, {}};
    for (const auto& p : d.addresses) {
      if (claimed.count(p)) {
        if (report)
          report->conflicts.push_back(p.ToString() + " (node " + d.name +
                                      "): listed under another node in nodes:");
        continue;
      }
      node.addresses.push_back(p);
    }
    if (node.addresses.empty()) continue;
    names.insert(node.name);
    out.push_back(std::move(node));
  }
  return out;
}

}  // namespace meshflow::discovery
