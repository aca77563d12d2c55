#include "tests/testbed/emulator/overlay.h"

namespace meshflow::testbed {
namespace {

// splitmix64: spreads (seed, from, to) into independent generator seeds.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

const char* RouteDropName(RouteDrop reason) {
  switch (reason) {
    case RouteDrop::kNone:
      return "none";
    case RouteDrop::kMalformed:
      return "malformed";
    case RouteDrop::kNoRoute:
      return "no_route";
    case RouteDrop::kToSelf:
      return "to_self";
    case RouteDrop::kCount:
      break;
  }
  return "unknown";
}

Overlay::Overlay(const Topology& topology, OverlayMode mode)
    : topology_(topology), mode_(mode), node_up_(topology.nodes.size(), true) {
  const size_t n = topology_.nodes.size();
  configured_.resize(n * n);
  for (const TopologyLink& l : topology_.links) {
    configured_[l.a * n + l.b] = l.a_to_b;
    configured_[l.b * n + l.a] = l.b_to_a;
  }
  links_.reserve(n * n);
  for (size_t from = 0; from < n; ++from)
    for (size_t to = 0; to < n; ++to)
      links_.emplace_back(Configured(from, to), Mix(topology_.seed ^ Mix(from * 1000003 + to)));
  for (size_t i = 0; i < n; ++i) {
    if (mode_ == OverlayMode::kWireGuard) {
      by_address_[topology_.nodes[i].underlay_ipv4] = i;
    } else {
      by_address_[topology_.nodes[i].ipv4] = i;
      by_address_[topology_.nodes[i].ipv6] = i;
    }
  }
}

const LinkParams& Overlay::Configured(size_t from, size_t to) const {
  return configured_[from * node_count() + to];
}

void Overlay::Reset() {
  for (size_t from = 0; from < node_count(); ++from) {
    node_up_[from] = true;
    for (size_t to = 0; to < node_count(); ++to)
      if (from != to) link(from, to).SetParams(Configured(from, to));
  }
}

RouteDecision Overlay::Route(size_t from_node, const uint8_t* data, size_t size, nanoseconds now) {
  RouteDecision d;
  MalformedReason why = MalformedReason::kNone;
  const auto ip = ParseIpHeader(data, size, &why);
  if (!ip) {
    ++malformed_[static_cast<int>(why)];
    d.route_drop = RouteDrop::kMalformed;
    ++route_drops_[static_cast<int>(d.route_drop)];
    return d;
  }
  const auto it = by_address_.find(ip->dst);
  if (it == by_address_.end() || it->second == from_node) {
    // Multicast (MLD, mDNS) and addresses of no node land here, as on a real tailnet.
    d.route_drop = it == by_address_.end() ? RouteDrop::kNoRoute : RouteDrop::kToSelf;
    ++route_drops_[static_cast<int>(d.route_drop)];
    return d;
  }
  d.to_node = it->second;
  LinkModel& l = link(from_node, d.to_node);
  if (!node_up_[from_node] || !node_up_[d.to_node]) {
    d.link_drop = DropReason::kNodeDown;
    // Counted on the link so `show` tells which pair lost what.
    l.CountDrop(DropReason::kNodeDown);
    return d;
  }
  const LinkVerdict v = l.Offer(size, now);
  d.link_drop = v.drop;
  d.release = v.release;
  return d;
}

}  // namespace meshflow::testbed
