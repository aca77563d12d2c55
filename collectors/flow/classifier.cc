#include "collectors/flow/classifier.h"

#include <unordered_map>

namespace meshflow::flow {
namespace {
constexpr size_t kPorts = 65536;
}  // namespace

Classifier::Classifier(const Config& config, const std::vector<IpAddress>& self_addresses)
    : role_names_{"other", "icmp"},
      tcp_roles_(new RoleId[kPorts]()),
      udp_roles_(new RoleId[kPorts]()),
      cache_(new CacheEntry[kCacheSize]()) {
  std::vector<NodeTable::Entry> entries;
  entries.reserve(config.nodes.size());
  for (const auto& node : config.nodes) entries.push_back({node.name, node.addresses});
  nodes_ = NodeTable(entries, config.node_name, self_addresses);

  std::unordered_map<std::string, RoleId> ids{{"other", kOther}, {"icmp", kIcmp}};
  for (const auto& role : config.roles) {
    auto [it, inserted] = ids.try_emplace(role.name, static_cast<RoleId>(role_names_.size()));
    if (inserted) role_names_.push_back(role.name);
    const RoleId id = it->second;
    // The config lists roles in priority order: the first role to claim a port keeps it.
    auto claim = [&](RoleId* table) {
      for (const auto& range : role.ports) {
        for (uint32_t port = range.first; port <= range.last; ++port) {
          if (table[port] == kOther) table[port] = id;
        }
      }
    };
    if (role.proto != RoleProto::kUdp) claim(tcp_roles_.get());
    if (role.proto != RoleProto::kTcp) claim(udp_roles_.get());
  }
}

std::optional<RoleId> Classifier::FindRole(const std::string& name) const {
  for (size_t i = 0; i < role_names_.size(); ++i) {
    if (role_names_[i] == name) return static_cast<RoleId>(i);
  }
  return std::nullopt;
}

std::optional<NodeId> Classifier::FindNode(const std::string& name) const {
  const NodeId id = nodes_.Find(name);
  if (nodes_.Name(id) != name) return std::nullopt;
  return id;
}

}  // namespace meshflow::flow
