#include "tests/testbed/emulator/topology.h"

#include <re2/re2.h>

#include <fstream>
#include <set>
#include <sstream>

#include "common/core/config_reader.h"

namespace meshflow::testbed {
namespace {

// Node names end up in namespace names (prefix + name) and in metric labels.
std::string ReadNodeName(const ConfigNode& node) {
  static const RE2 kName("[a-z0-9][a-z0-9-]{0,31}");
  std::string name = node.AsString();
  if (!RE2::FullMatch(name, kName))
    node.Fail("a name of 1 to 32 lower-case letters, digits or '-', starting with no '-'");
  return name;
}

IpAddress ReadAddressIn(const ConfigNode& node, const IpPrefix& range, bool want_v4) {
  const auto address = IpAddress::Parse(node.AsString());
  if (!address || address->is_v4() != want_v4 || !range.Contains(*address))
    node.Fail(std::string(want_v4 ? "an IPv4" : "an IPv6") + " address inside " + range.ToString());
  return *address;
}

// An address with a prefix length inside `range`: 192.168.50.10 takes the segment's length.
IpPrefix ReadHostIn(const ConfigNode& node, const IpPrefix& range) {
  const auto address = IpAddress::Parse(node.AsString());
  if (!address || !range.Contains(*address)) node.Fail("an address inside " + range.ToString());
  IpPrefix p;
  p.address = *address;
  p.bits = range.bits;
  return p;
}

double ReadLoss(const ConfigNode& node) {
  double loss = 0;
  if (!ParseLoss(node.AsString(), &loss)) node.Fail("a loss such as 12% or 0.12 (0 to 100%)");
  return loss;
}

int64_t ReadRate(const ConfigNode& node) {
  int64_t rate = 0;
  if (!ParseRate(node.AsString(), &rate)) node.Fail("a rate such as 10mbit, 512kbit or 0");
  return rate;
}

// Reads the keys that set one direction. `delay_key` is "delay" (one way) for a direction and
// also accepts "rtt" (split evenly) for a whole link.
void ReadParams(const ConfigNode& node, LinkParams* p) {
  if (auto v = node.Get("delay")) p->delay = v->AsDuration();
  if (auto v = node.Get("jitter")) p->jitter = v->AsDuration();
  if (auto v = node.Get("loss")) p->loss = ReadLoss(*v);
  if (auto v = node.Get("rate")) p->rate_bps = ReadRate(*v);
  if (auto v = node.Get("burst")) p->burst_bytes = v->AsInt(0, int64_t{1} << 30);
  if (auto v = node.Get("queue")) p->queue_bytes = v->AsInt(0, int64_t{1} << 30);
  if (auto v = node.Get("up")) p->up = v->AsBool();
  if (auto v = node.Get("mtu")) p->mtu = v->AsInt(0, 65535);
}

void ReadLinkCommon(const ConfigNode& node, LinkParams* p) {
  if (node.Get("rtt") && node.Get("delay"))
    node.Require("delay").Fail("either rtt (round trip) or delay (one way), not both");
  if (auto v = node.Get("rtt")) p->delay = v->AsDuration() / 2;
  ReadParams(node, p);
}

void ExpectDirectionKeys(const ConfigNode& node) {
  node.ExpectMap({"delay", "jitter", "loss", "rate", "burst", "queue", "up", "mtu"});
}

}  // namespace

std::optional<size_t> Topology::FindNode(const std::string& node_name) const {
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].name == node_name) return i;
  return std::nullopt;
}

const TopologyLink* Topology::FindLink(size_t a, size_t b) const {
  for (const auto& link : links)
    if ((link.a == a && link.b == b) || (link.a == b && link.b == a)) return &link;
  return nullptr;
}

Topology ParseTopology(const std::string& text, const std::string& file_name) {
  const ConfigNode root = ConfigNode::Parse(text, file_name);
  root.ExpectMap({"name", "seed", "overlay", "underlay", "defaults", "nodes", "lans", "links"});
  Topology topo;
  topo.overlay_ipv4 = *IpPrefix::Parse("100.64.0.0/10");
  topo.overlay_ipv6 = *IpPrefix::Parse("fd7a:115c:a1e0::/48");
  if (auto v = root.Get("name")) topo.name = v->AsString();
  if (auto v = root.Get("seed")) topo.seed = static_cast<uint64_t>(v->AsInt(0, INT64_MAX));

  if (auto overlay = root.Get("overlay")) {
    overlay->ExpectMap({"ipv4", "ipv6", "device", "mtu"});
    if (auto v = overlay->Get("ipv4")) {
      topo.overlay_ipv4 = v->AsPrefix();
      if (!topo.overlay_ipv4.address.is_v4()) v->Fail("an IPv4 CIDR");
    }
    if (auto v = overlay->Get("ipv6")) {
      topo.overlay_ipv6 = v->AsPrefix();
      if (topo.overlay_ipv6.address.is_v4()) v->Fail("an IPv6 CIDR");
    }
    if (auto v = overlay->Get("device")) {
      static const RE2 kIfName("[a-z][a-z0-9._-]{0,14}");
      topo.device = v->AsString();
      if (!RE2::FullMatch(topo.device, kIfName)) v->Fail("an interface name of up to 15 chars");
    }
    // IPv6 needs 1280; 9000 is a jumbo frame.
    if (auto v = overlay->Get("mtu")) topo.mtu = static_cast<int>(v->AsInt(1280, 9000));
  }

  topo.underlay.ipv4 = *IpPrefix::Parse("198.18.0.0/24");
  if (auto underlay = root.Get("underlay")) {
    underlay->ExpectMap({"ipv4", "device", "mtu"});
    if (auto v = underlay->Get("ipv4")) {
      topo.underlay.ipv4 = v->AsPrefix();
      if (!topo.underlay.ipv4.address.is_v4() || topo.underlay.ipv4.bits > 30)
        v->Fail("an IPv4 CIDR of at most /30");
    }
    if (auto v = underlay->Get("device")) {
      static const RE2 kIfName("[a-z][a-z0-9._-]{0,14}");
      topo.underlay.device = v->AsString();
      if (!RE2::FullMatch(topo.underlay.device, kIfName))
        v->Fail("an interface name of up to 15 chars");
    }
    // 576 is the smallest datagram every IPv4 host must take.
    if (auto v = underlay->Get("mtu")) topo.underlay.mtu = static_cast<int>(v->AsInt(576, 9000));
  }

  if (auto defaults = root.Get("defaults")) {
    defaults->ExpectMap({"rtt", "delay", "jitter", "loss", "rate", "burst", "queue", "up", "mtu"});
    ReadLinkCommon(*defaults, &topo.defaults);
  }

  std::set<std::string> lan_names;
  if (auto lans = root.Get("lans")) {
    for (const auto& item : lans->Items()) {
      item.ExpectMap({"name", "prefix", "vxlan"});
      TopologyLan lan;
      const auto name_node = item.Require("name");
      lan.name = ReadNodeName(name_node);
      if (!lan_names.insert(lan.name).second) name_node.Fail("a segment name not used before");
      lan.prefix = item.Require("prefix").AsPrefix();
      if (!lan.prefix.address.is_v4()) item.Require("prefix").Fail("an IPv4 CIDR");
      if (auto vx = item.Get("vxlan")) {
        vx->ExpectMap({"device", "vni", "port", "prefix"});
        TopologyLan::Vxlan v;
        if (auto d = vx->Get("device")) v.device = d->AsString();
        if (auto d = vx->Get("vni")) v.vni = static_cast<uint32_t>(d->AsInt(1, 16777215));
        if (auto d = vx->Get("port")) v.port = static_cast<uint16_t>(d->AsInt(1, 65535));
        v.prefix = vx->Require("prefix").AsPrefix();
        lan.vxlan = v;
      }
      topo.lans.push_back(std::move(lan));
    }
  }

  std::set<IpAddress> used;
  for (const auto& item : root.Require("nodes").Items()) {
    item.ExpectMap({"name", "ipv4", "ipv6", "lan"});
    TopologyNode node;
    const auto name_node = item.Require("name");
    node.name = ReadNodeName(name_node);
    if (topo.FindNode(node.name)) name_node.Fail("a node name not used before");
    const auto v4 = item.Require("ipv4");
    node.ipv4 = ReadAddressIn(v4, topo.overlay_ipv4, true);
    if (!used.insert(node.ipv4).second) v4.Fail("an address no other node has");
    const auto v6 = item.Require("ipv6");
    node.ipv6 = ReadAddressIn(v6, topo.overlay_ipv6, false);
    if (!used.insert(node.ipv6).second) v6.Fail("an address no other node has");
    if (auto lan_node = item.Get("lan")) {
      lan_node->ExpectMap({"segment", "address", "vxlan_address"});
      LanMembership m;
      const auto seg = lan_node->Require("segment");
      m.segment = seg.AsString();
      const TopologyLan* lan = nullptr;
      for (const auto& l : topo.lans)
        if (l.name == m.segment) lan = &l;
      if (!lan) seg.Fail("the name of a segment under lans:");
      const auto addr = lan_node->Require("address");
      m.address = ReadHostIn(addr, lan->prefix);
      if (!used.insert(m.address.address).second) addr.Fail("an address no other node has");
      if (auto vx = lan_node->Get("vxlan_address")) {
        if (!lan->vxlan) vx->Fail("no vxlan_address: segment " + lan->name + " has no vxlan");
        m.vxlan_address = ReadHostIn(*vx, lan->vxlan->prefix);
        if (!used.insert(m.vxlan_address->address).second) vx->Fail("an address no other node has");
      } else if (lan->vxlan) {
        lan_node->Require("vxlan_address");  // fails: the segment has VXLAN
      }
      node.lan = m;
    }
    topo.nodes.push_back(std::move(node));
  }
  if (topo.nodes.size() < 2) root.Require("nodes").Fail("at least two nodes");
  if (topo.nodes.size() > 64) root.Require("nodes").Fail("at most 64 nodes");
  const uint64_t underlay_hosts = (uint64_t{1} << (32 - topo.underlay.ipv4.bits)) - 2;
  if (topo.nodes.size() > underlay_hosts)
    root.Require("underlay").Require("ipv4").Fail("a prefix with a host address for every node");
  const auto& base_bytes = topo.underlay.ipv4.address.bytes();
  const uint32_t underlay_base = uint32_t{base_bytes[12]} << 24 | uint32_t{base_bytes[13]} << 16 |
                                 uint32_t{base_bytes[14]} << 8 | base_bytes[15];
  for (size_t i = 0; i < topo.nodes.size(); ++i) {
    auto& node = topo.nodes[i];
    node.underlay_ipv4 = IpAddress::FromV4(underlay_base + static_cast<uint32_t>(i + 1));
    if (used.count(node.underlay_ipv4))
      root.Require("nodes").Fail("no overlay or LAN address inside the underlay prefix " +
                                 topo.underlay.ipv4.ToString());
  }

  for (size_t a = 0; a < topo.nodes.size(); ++a)
    for (size_t b = a + 1; b < topo.nodes.size(); ++b)
      topo.links.push_back(TopologyLink{a, b, topo.defaults, topo.defaults});

  std::set<std::pair<size_t, size_t>> seen_pairs;
  if (auto links = root.Get("links")) {
    for (const auto& item : links->Items()) {
      item.ExpectMap({"between", "rtt", "delay", "jitter", "loss", "rate", "burst", "queue", "up",
                      "mtu", "forward", "reverse"});
      const auto between = item.Require("between");
      const auto ends = between.Items();
      if (ends.size() != 2) between.Fail("a list of two node names");
      size_t idx[2];
      for (int i = 0; i < 2; ++i) {
        const auto found = topo.FindNode(ends[i].AsString());
        if (!found) ends[i].Fail("the name of a node under nodes:");
        idx[i] = *found;
      }
      if (idx[0] == idx[1]) between.Fail("two different nodes");
      if (!seen_pairs.insert(std::minmax(idx[0], idx[1])).second)
        between.Fail("a pair not listed before");
      LinkParams common = topo.defaults;
      ReadLinkCommon(item, &common);
      LinkParams forward = common;  // first -> second
      LinkParams reverse = common;
      if (auto f = item.Get("forward")) {
        ExpectDirectionKeys(*f);
        ReadParams(*f, &forward);
      }
      if (auto r = item.Get("reverse")) {
        ExpectDirectionKeys(*r);
        ReadParams(*r, &reverse);
      }
      for (auto& link : topo.links) {
        if (link.a == idx[0] && link.b == idx[1]) {
          link.a_to_b = forward;
          link.b_to_a = reverse;
        } else if (link.a == idx[1] && link.b == idx[0]) {
          link.a_to_b = reverse;
          link.b_to_a = forward;
        }
      }
    }
  }
  return topo;
}

Topology LoadTopologyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot read the topology file");
  std::stringstream text;
  text << in.rdbuf();
  return ParseTopology(text.str(), path);
}

}  // namespace meshflow::testbed
