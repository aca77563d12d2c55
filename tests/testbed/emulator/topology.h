#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/core/ip_address.h"
#include "tests/testbed/emulator/link_model.h"

namespace meshflow::testbed {

// A node's place on a shared LAN segment.
struct LanMembership {
  std::string segment;                    // name of a TopologyLan
  IpPrefix address;                       // address with the segment's prefix length
  std::optional<IpPrefix> vxlan_address;  // on flannel.1, when the segment has VXLAN
};

struct TopologyNode {
  std::string name;
  IpAddress ipv4;  // on the overlay device, inside overlay.ipv4
  IpAddress ipv6;  // inside overlay.ipv6
  std::optional<LanMembership> lan;
  IpAddress underlay_ipv4;  // the node's address on the underlay (WireGuard mode)
};

// A bridge that connects some nodes directly (a home LAN), optionally with a flannel-style VXLAN
// device on top.
struct TopologyLan {
  std::string name;
  IpPrefix prefix;
  struct Vxlan {
    std::string device = "flannel.1";
    uint32_t vni = 1;
    uint16_t port = 8472;
    IpPrefix prefix;
  };
  std::optional<Vxlan> vxlan;
};

// Both directions of a node pair. Every unordered pair has one, defaults filled in.
struct TopologyLink {
  size_t a = 0;
  size_t b = 0;
  LinkParams a_to_b;
  LinkParams b_to_a;
};

// The network under a WireGuard overlay: one device per node whose packets the emulator carries,
// with the node's UDP endpoint on it. Node N (from 1, in listing order) gets the prefix's Nth
// address.
struct TopologyUnderlay {
  IpPrefix ipv4;
  std::string device = "eth1";
  int mtu = 1500;
};

struct Topology {
  std::string name;
  uint64_t seed = 1;
  IpPrefix overlay_ipv4;
  IpPrefix overlay_ipv6;
  std::string device = "ts0";
  int mtu = 1280;  // tailscale0's MTU
  TopologyUnderlay underlay;
  LinkParams defaults;
  std::vector<TopologyNode> nodes;
  std::vector<TopologyLan> lans;
  std::vector<TopologyLink> links;

  // Index of the node called `name`, or nullopt.
  std::optional<size_t> FindNode(const std::string& name) const;
  // The link between two nodes (in either order); nullptr when a == b or out of range.
  const TopologyLink* FindLink(size_t a, size_t b) const;
};

// Parses topology YAML; `file_name` only labels errors. Throws ConfigError ("file:line:col:
// field: expected ..., got ...").
Topology ParseTopology(const std::string& text, const std::string& file_name);
Topology LoadTopologyFile(const std::string& path);

}  // namespace meshflow::testbed
