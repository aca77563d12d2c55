#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "tests/testbed/emulator/ip_header.h"
#include "tests/testbed/emulator/link_model.h"
#include "tests/testbed/emulator/topology.h"

namespace meshflow::testbed {

// Why the overlay refused a packet before any link saw it.
enum class RouteDrop { kNone, kMalformed, kNoRoute, kToSelf, kCount };
const char* RouteDropName(RouteDrop reason);

// What the emulator's devices carry. kTun: the overlay itself (raw IP between overlay addresses,
// as tailscaled's TUN device). kWireGuard: the underlay under wireguard-go, routed by each
// node's underlay address.
enum class OverlayMode { kTun, kWireGuard };

// Where a packet goes and when, or why it goes nowhere.
struct RouteDecision {
  RouteDrop route_drop = RouteDrop::kNone;
  DropReason link_drop = DropReason::kNone;
  size_t to_node = 0;
  nanoseconds release{0};
  bool delivered() const {
    return route_drop == RouteDrop::kNone && link_drop == DropReason::kNone;
  }
};

// The state of the emulated overlay: nodes, their addresses and the two directed links of every
// pair. Pure: no I/O, time comes in as an argument. The packet mover and the control server
// both act on it from one thread.
class Overlay {
 public:
  explicit Overlay(const Topology& topology, OverlayMode mode = OverlayMode::kTun);

  // Decides the fate of a packet read from `from_node`'s overlay device at `now`.
  RouteDecision Route(size_t from_node, const uint8_t* data, size_t size, nanoseconds now);

  const Topology& topology() const { return topology_; }
  OverlayMode mode() const { return mode_; }
  size_t node_count() const { return topology_.nodes.size(); }
  LinkModel& link(size_t from, size_t to) { return links_[from * node_count() + to]; }
  const LinkModel& link(size_t from, size_t to) const { return links_[from * node_count() + to]; }
  bool node_up(size_t node) const { return node_up_[node]; }
  void SetNodeUp(size_t node, bool up) { node_up_[node] = up; }
  // Back to the topology's parameters, every node up; counters are kept.
  void Reset();

  uint64_t route_drops(RouteDrop reason) const { return route_drops_[static_cast<int>(reason)]; }
  uint64_t malformed(MalformedReason reason) const { return malformed_[static_cast<int>(reason)]; }
  // Counts a packet the mover had to drop after routing (delay line full, write failed).
  void CountMoverDrop(const std::string& reason) { ++mover_drops_[reason]; }
  const std::unordered_map<std::string, uint64_t>& mover_drops() const { return mover_drops_; }
  // How late the mover wrote a packet after its release time: the emulator's own error.
  struct Lateness {
    uint64_t count = 0;
    std::chrono::nanoseconds sum{0};
    std::chrono::nanoseconds max{0};
    // Releases later than 0.1, 0.5 and 1 ms: a mean and a max cannot tell a few stalls from a
    // shift of every packet, and a probe median moves only with the latter.
    uint64_t over_100us = 0;
    uint64_t over_500us = 0;
    uint64_t over_1ms = 0;
  };
  void RecordLateness(std::chrono::nanoseconds late) {
    ++lateness_.count;
    lateness_.sum += late;
    lateness_.max = std::max(lateness_.max, late);
    lateness_.over_100us += late > std::chrono::microseconds(100);
    lateness_.over_500us += late > std::chrono::microseconds(500);
    lateness_.over_1ms += late > std::chrono::milliseconds(1);
  }
  const Lateness& lateness() const { return lateness_; }

 private:
  const LinkParams& Configured(size_t from, size_t to) const;

  Topology topology_;
  OverlayMode mode_;
  std::vector<LinkParams> configured_;  // node_count x node_count, from the topology
  std::vector<LinkModel> links_;        // node_count x node_count, the diagonal unused
  std::vector<bool> node_up_;
  std::unordered_map<IpAddress, size_t, IpAddressHash> by_address_;
  uint64_t route_drops_[static_cast<int>(RouteDrop::kCount)] = {};
  uint64_t malformed_[static_cast<int>(MalformedReason::kCount)] = {};
  std::unordered_map<std::string, uint64_t> mover_drops_;
  Lateness lateness_;
};

}  // namespace meshflow::testbed
