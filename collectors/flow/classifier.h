#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "collectors/flow/decoder.h"
#include "common/config/config.h"
#include "common/core/node_table.h"

namespace meshflow::flow {

using RoleId = uint16_t;
using NodeId = NodeTable::NodeId;

// This host's own addresses, so they map to node_name. Injected so tests need no interfaces.
using AddressSource = std::function<std::vector<IpAddress>()>;

// Addresses and ports -> node and role, in O(1) per packet: a 64 K-entry port table per
// protocol and a direct-mapped address cache in front of the node table.
class Classifier {
 public:
  static constexpr RoleId kOther = 0;
  static constexpr RoleId kIcmp = 1;

  Classifier(const Config& config, const std::vector<IpAddress>& self_addresses);

  // The destination port decides first, then the source port; ICMP is "icmp", no match "other".
  RoleId Role(const PacketInfo& packet) const {
    if (packet.l4_protocol == kIpprotoIcmp || packet.l4_protocol == kIpprotoIcmpv6) return kIcmp;
    if (!packet.has_ports) return kOther;
    const RoleId* table = packet.l4_protocol == kIpprotoTcp   ? tcp_roles_.get()
                          : packet.l4_protocol == kIpprotoUdp ? udp_roles_.get()
                                                              : nullptr;
    if (table == nullptr) return kOther;
    return ByPorts(table, packet.src_port, packet.dst_port);
  }
  // Role() of a TCP packet with these ports.
  RoleId TcpRole(uint16_t src_port, uint16_t dst_port) const {
    return ByPorts(tcp_roles_.get(), src_port, dst_port);
  }

  NodeId Node(const IpAddress& address) {
    // The top bits: IpAddressHash's low bits are the same for every IPv4 address.
    CacheEntry& entry = cache_[IpAddressHash{}(address) >> (64 - kCacheBits)];
    if (entry.valid && SameAddress(entry.address, address)) return entry.node;
    entry.address = address;
    entry.node = nodes_.Lookup(address);
    entry.valid = true;
    return entry.node;
  }

  // Ids of names, for carrying series over to a new classifier; nullopt if gone.
  std::optional<RoleId> FindRole(const std::string& name) const;
  std::optional<NodeId> FindNode(const std::string& name) const;

  const std::string& RoleName(RoleId id) const { return role_names_[id]; }
  const std::string& NodeName(NodeId id) const { return nodes_.Name(id); }
  size_t role_count() const { return role_names_.size(); }

 private:
  static constexpr uint8_t kIpprotoIcmp = 1;
  static constexpr uint8_t kIpprotoTcp = 6;
  static constexpr uint8_t kIpprotoUdp = 17;
  static constexpr uint8_t kIpprotoIcmpv6 = 58;
  // A random-address flood only thrashes this cache; it cannot grow it.
  static constexpr int kCacheBits = 12;
  static constexpr size_t kCacheSize = size_t{1} << kCacheBits;

  static RoleId ByPorts(const RoleId* table, uint16_t src_port, uint16_t dst_port) {
    const RoleId by_destination = table[dst_port];
    return by_destination != kOther ? by_destination : table[src_port];
  }

  // Two word compares; the defaulted operator== goes through memcmp.
  static bool SameAddress(const IpAddress& a, const IpAddress& b) {
    uint64_t a0, a1, b0, b1;
    std::memcpy(&a0, a.bytes().data(), 8);
    std::memcpy(&a1, a.bytes().data() + 8, 8);
    std::memcpy(&b0, b.bytes().data(), 8);
    std::memcpy(&b1, b.bytes().data() + 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }

  struct CacheEntry {
    IpAddress address;
    NodeId node = NodeTable::kExternal;
    bool valid = false;
  };

  NodeTable nodes_;
  std::vector<std::string> role_names_;
  std::unique_ptr<RoleId[]> tcp_roles_;
  std::unique_ptr<RoleId[]> udp_roles_;
  std::unique_ptr<CacheEntry[]> cache_;
};

}  // namespace meshflow::flow
