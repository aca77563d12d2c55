#include "common/config/config.h"

#include <re2/re2.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "common/core/config_reader.h"

namespace meshflow {
namespace {

RoleSpec Role(std::string name, RoleProto proto, std::vector<RoleSpec::PortRange> ports) {
  return RoleSpec{std::move(name), proto, std::move(ports)};
}

std::string ReadRegex(const ConfigNode& node) {
  const std::string pattern = node.AsString();
  RE2 re(pattern, RE2::Quiet);
  if (!re.ok()) node.Fail("an RE2 regular expression (" + re.error() + ")");
  return pattern;
}

RoleSpec::PortRange ReadPortRange(const ConfigNode& node) {
  const std::string text = node.AsString();
  const auto dash = text.find('-');
  auto parse = [&](std::string_view s) {
    int v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v < 1 || v > 65535)
      node.Fail("a port (1-65535) or a range such as 30000-32767");
    return static_cast<uint16_t>(v);
  };
  if (dash == std::string::npos) {
    const uint16_t p = parse(text);
    return {p, p};
  }
  const uint16_t first = parse(std::string_view(text).substr(0, dash));
  const uint16_t last = parse(std::string_view(text).substr(dash + 1));
  if (first > last) node.Fail("a port range whose first port is not above its last");
  return {first, last};
}

std::vector<NodeSpec> ReadNodes(const ConfigNode& list, ConfigErrorList& errors) {
  std::vector<NodeSpec> nodes;
  std::set<std::string> seen;
  for (const auto& item : list.Items())
    errors.Check([&] {
      item.ExpectMap({"name", "addresses"});
      NodeSpec node;
      const auto name_node = item.Require("name");
      node.name = name_node.AsName();
      if (node.name == "external" || node.name == "overflow")
        name_node.Fail("a node name other than the reserved \"external\" and \"overflow\"");
      if (!seen.insert(node.name).second) name_node.Fail("a node name not used before");
      for (const auto& a : item.Require("addresses").Items())
        node.addresses.push_back(a.AsPrefix());
      nodes.push_back(std::move(node));
    });
  return nodes;
}

std::vector<RoleSpec> ReadRoles(const ConfigNode& list, ConfigErrorList& errors) {
  std::vector<RoleSpec> roles;
  for (const auto& item : list.Items())
    errors.Check([&] {
      item.ExpectMap({"name", "proto", "ports"});
      RoleSpec role;
      role.name = item.Require("name").AsName();
      if (auto proto = item.Get("proto")) {
        const std::string p = proto->AsEnum({"tcp", "udp", "any"});
        role.proto = p == "tcp" ? RoleProto::kTcp : p == "udp" ? RoleProto::kUdp : RoleProto::kAny;
      }
      const auto ports = item.Require("ports");
      for (const auto& p : ports.Items()) role.ports.push_back(ReadPortRange(p));
      if (role.ports.empty()) ports.Fail("at least one port");
      roles.push_back(std::move(role));
    });
  return roles;
}

void ReadCapture(const ConfigNode& node, CaptureConfig& capture) {
  node.ExpectMap({"interfaces", "kinds", "snaplen", "buffer_bytes", "buffer_timeout",
                  "rescan_interval", "promiscuous", "vxlan_ports"});
  if (auto ifs = node.Get("interfaces")) {
    ifs->ExpectMap({"include", "exclude"});
    if (auto inc = ifs->Get("include")) {
      capture.include.clear();
      for (const auto& p : inc->Items()) capture.include.push_back(ReadRegex(p));
    }
    if (auto exc = ifs->Get("exclude")) {
      capture.exclude.clear();
      for (const auto& p : exc->Items()) capture.exclude.push_back(ReadRegex(p));
    }
  }
  if (auto kinds = node.Get("kinds")) {
    std::vector<CaptureConfig::KindRule> rules;
    for (const auto& item : kinds->Items()) {
      item.ExpectMap({"match", "kind"});
      rules.push_back({ReadRegex(item.Require("match")),
                       item.Require("kind").AsEnum({"overlay", "underlay", "pod"})});
    }
    // User rules come first; the defaults still name everything the user did not.
    rules.insert(rules.end(), capture.kinds.begin(), capture.kinds.end());
    capture.kinds = std::move(rules);
  }
  if (auto v = node.Get("snaplen")) capture.snaplen = static_cast<int>(v->AsInt(96, 65535));
  if (auto v = node.Get("buffer_bytes")) capture.buffer_bytes = v->AsInt(64 << 10, 1LL << 30);
  if (auto v = node.Get("buffer_timeout")) {
    capture.buffer_timeout = v->AsDuration();
    if (capture.buffer_timeout < std::chrono::milliseconds(1) ||
        capture.buffer_timeout > std::chrono::seconds(5))
      v->Fail("a duration from 1ms to 5s (0 would turn off delivery on quiet interfaces)");
  }
  if (auto v = node.Get("rescan_interval")) {
    capture.rescan_interval = v->AsDuration();
    if (capture.rescan_interval < std::chrono::milliseconds(100))
      v->Fail("a duration of at least 100ms");
  }
  if (auto v = node.Get("promiscuous")) capture.promiscuous = v->AsBool();
  if (auto v = node.Get("vxlan_ports")) {
    capture.vxlan_ports.clear();
    for (const auto& p : v->Items())
      capture.vxlan_ports.push_back(static_cast<uint16_t>(p.AsInt(1, 65535)));
  }
}

void ReadTcp(const ConfigNode& node, TcpConfig& tcp) {
  node.ExpectMap({"enabled", "max_connections", "idle_timeout", "timestamp_samples_per_second"});
  if (auto v = node.Get("enabled")) tcp.enabled = v->AsBool();
  if (auto v = node.Get("max_connections")) tcp.max_connections = v->AsInt(16, 1 << 24);
  if (auto v = node.Get("idle_timeout")) {
    tcp.idle_timeout = v->AsDuration();
    if (tcp.idle_timeout < std::chrono::seconds(1)) v->Fail("a duration of at least 1s");
  }
  if (auto v = node.Get("timestamp_samples_per_second"))
    tcp.timestamp_samples_per_second = v->AsDouble(0.01, 1000);
}

void ReadFlows(const ConfigNode& node, FlowsConfig& flows) {
  node.ExpectMap({"capture", "max_series", "tcp"});
  if (auto v = node.Get("capture")) ReadCapture(*v, flows.capture);
  if (auto v = node.Get("max_series")) flows.max_series = v->AsInt(10, 1'000'000);
  if (auto v = node.Get("tcp")) ReadTcp(*v, flows.tcp);
}

std::vector<std::string> ReadMethods(const ConfigNode& node) {
  std::vector<std::string> methods;
  for (const auto& m : node.Items()) methods.push_back(m.AsEnum({"icmp", "udp", "tcp"}));
  if (methods.empty()) node.Fail("at least one method (icmp, udp, tcp)");
  return methods;
}

void ReadProbes(const ConfigNode& node, ProbesConfig& probes) {
  node.ExpectMap({"interval", "timeout", "methods", "tcp_port", "udp_port", "dns_refresh_interval",
                  "peers", "reflector", "path_mtu"});
  if (auto v = node.Get("interval")) {
    probes.interval = v->AsDuration();
    if (probes.interval < std::chrono::milliseconds(10) || probes.interval > std::chrono::hours(1))
      v->Fail("a duration from 10ms to 1h");
  }
  if (auto v = node.Get("timeout")) {
    probes.timeout = v->AsDuration();
    if (probes.timeout < std::chrono::milliseconds(1) || probes.timeout > std::chrono::minutes(1))
      v->Fail("a duration from 1ms to 1m");
  }
  if (auto v = node.Get("methods")) probes.methods = ReadMethods(*v);
  if (auto v = node.Get("tcp_port")) probes.tcp_port = static_cast<uint16_t>(v->AsInt(1, 65535));
  if (auto v = node.Get("udp_port")) probes.udp_port = static_cast<uint16_t>(v->AsInt(1, 65535));
  if (auto v = node.Get("dns_refresh_interval")) {
    probes.dns_refresh_interval = v->AsDuration();
    if (probes.dns_refresh_interval < std::chrono::seconds(1)) v->Fail("a duration of at least 1s");
  }
  if (auto v = node.Get("peers")) {
    std::set<std::string> seen;
    for (const auto& item : v->Items()) {
      item.ExpectMap({"name", "address", "methods", "tcp_port"});
      ProbePeer peer;
      const auto name_node = item.Require("name");
      peer.name = name_node.AsName();
      if (!seen.insert(peer.name).second) name_node.Fail("a peer name not used before");
      peer.address = item.Require("address").AsString();
      if (auto m = item.Get("methods")) peer.methods = ReadMethods(*m);
      if (auto p = item.Get("tcp_port")) peer.tcp_port = static_cast<uint16_t>(p->AsInt(1, 65535));
      probes.peers.push_back(std::move(peer));
    }
  }
  if (auto m = node.Get("path_mtu")) {
    m->ExpectMap({"enabled", "interval", "timeout"});
    if (auto v = m->Get("enabled")) probes.path_mtu.enabled = v->AsBool();
    if (auto v = m->Get("interval")) {
      probes.path_mtu.interval = v->AsDuration();
      if (probes.path_mtu.interval < std::chrono::seconds(1) ||
          probes.path_mtu.interval > std::chrono::hours(24))
        v->Fail("a duration from 1s to 24h");
    }
    if (auto v = m->Get("timeout")) {
      probes.path_mtu.timeout = v->AsDuration();
      if (probes.path_mtu.timeout < std::chrono::milliseconds(10) ||
          probes.path_mtu.timeout > std::chrono::seconds(30))
        v->Fail("a duration from 10ms to 30s");
    }
  }
  if (auto r = node.Get("reflector")) {
    r->ExpectMap({"enabled", "listen_address", "port", "max_replies_per_source_per_second",
                  "max_replies_per_second"});
    if (auto v = r->Get("enabled")) probes.reflector.enabled = v->AsBool();
    if (auto v = r->Get("listen_address")) {
      probes.reflector.listen_address = v->AsString();
      if (!IpAddress::Parse(probes.reflector.listen_address))
        v->Fail("an IPv4 or IPv6 address such as 0.0.0.0 or ::");
    }
    if (auto v = r->Get("port")) probes.reflector.port = static_cast<uint16_t>(v->AsInt(1, 65535));
    if (auto v = r->Get("max_replies_per_source_per_second"))
      probes.reflector.max_replies_per_source_per_second = v->AsDouble(0.1, 100000);
    if (auto v = r->Get("max_replies_per_second"))
      probes.reflector.max_replies_per_second = v->AsDouble(1, 1000000);
  }
}

void ReadDiscovery(const ConfigNode& node, DiscoveryConfig& d) {
  node.ExpectMap({"enabled", "refresh_interval", "stale_after", "overlay_prefixes", "wireguard",
                  "dns", "kubernetes", "tailscale", "hello"});
  if (auto v = node.Get("enabled")) d.enabled = v->AsBool();
  if (auto v = node.Get("refresh_interval")) {
    d.refresh_interval = v->AsDuration();
    if (d.refresh_interval < std::chrono::seconds(1) || d.refresh_interval > std::chrono::hours(1))
      v->Fail("a duration from 1s to 1h");
  }
  if (auto v = node.Get("stale_after")) {
    d.stale_after = v->AsDuration();
    if (d.stale_after < std::chrono::seconds(0) || d.stale_after > std::chrono::hours(24))
      v->Fail("a duration from 0s to 24h");
  }
  if (auto v = node.Get("overlay_prefixes")) {
    d.overlay_prefixes.clear();
    for (const auto& p : v->Items()) d.overlay_prefixes.push_back(p.AsPrefix());
  }
  if (auto w = node.Get("wireguard")) {
    w->ExpectMap({"enabled", "socket_dir", "interfaces"});
    if (auto v = w->Get("enabled")) d.wireguard.enabled = v->AsBool();
    if (auto v = w->Get("socket_dir")) d.wireguard.socket_dir = v->AsString();
    if (auto v = w->Get("interfaces")) {
      d.wireguard.interfaces.clear();
      static const RE2 kInterface("[A-Za-z0-9._-]{1,15}");
      for (const auto& i : v->Items()) {
        const std::string name = i.AsString();
        if (!RE2::FullMatch(name, kInterface) || name == "." || name == "..")
          i.Fail("an interface name of 1 to 15 letters, digits, '.', '_' or '-'");
        d.wireguard.interfaces.push_back(name);
      }
    }
  }
  if (auto n = node.Get("dns")) {
    n->ExpectMap({"enabled", "names", "server"});
    if (auto v = n->Get("enabled")) d.dns.enabled = v->AsBool();
    if (auto v = n->Get("names")) d.dns.names = v->AsStringList();
    if (auto v = n->Get("server")) {
      d.dns.server = v->AsString();
      const std::string host = d.dns.server.substr(0, d.dns.server.find(':'));
      const auto address = IpAddress::Parse(host);
      int port = 53;
      if (const auto colon = d.dns.server.find(':'); colon != std::string::npos) {
        const std::string p = d.dns.server.substr(colon + 1);
        const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
        if (ec != std::errc() || end != p.data() + p.size()) port = 0;
      }
      if (!address || !address->is_v4() || port < 1 || port > 65535)
        v->Fail("an IPv4 address with an optional port, such as 10.43.0.10 or 127.0.0.1:5353");
    }
    if (d.dns.enabled && d.dns.names.empty()) n->Fail("at least one name under dns.names");
  }
  if (auto k = node.Get("kubernetes")) {
    k->ExpectMap({"enabled", "overlay_address", "api_server", "token_file", "ca_file"});
    if (auto v = k->Get("enabled")) d.kubernetes.enabled = v->AsBool();
    if (auto v = k->Get("overlay_address")) {
      d.kubernetes.overlay_address.clear();
      for (const auto& i : v->Items()) {
        const std::string a = i.AsString();
        if (a != "InternalIP" && a != "ExternalIP" && a.find('/') == std::string::npos)
          i.Fail("InternalIP, ExternalIP or an annotation name such as k3s.io/internal-ip");
        d.kubernetes.overlay_address.push_back(a);
      }
      if (d.kubernetes.overlay_address.empty()) v->Fail("at least one address choice");
    }
    if (auto v = k->Get("api_server")) d.kubernetes.api_server = v->AsString();
    if (auto v = k->Get("token_file")) d.kubernetes.token_file = v->AsString();
    if (auto v = k->Get("ca_file")) d.kubernetes.ca_file = v->AsString();
  }
  if (auto t = node.Get("tailscale")) {
    t->ExpectMap({"enabled", "socket", "online_only", "tags"});
    if (auto v = t->Get("enabled")) d.tailscale.enabled = v->AsBool();
    if (auto v = t->Get("socket")) d.tailscale.socket = v->AsString();
    if (auto v = t->Get("online_only")) d.tailscale.online_only = v->AsBool();
    if (auto v = t->Get("tags")) {
      d.tailscale.tags.clear();
      for (const auto& i : v->Items()) {
        const std::string tag = i.AsString();
        if (tag.size() < 5 || tag.compare(0, 4, "tag:") != 0) i.Fail("an ACL tag such as tag:k8s");
        d.tailscale.tags.push_back(tag);
      }
    }
  }
  if (auto h = node.Get("hello")) {
    h->ExpectMap({"enabled", "timeout"});
    if (auto v = h->Get("enabled")) d.hello.enabled = v->AsBool();
    if (auto v = h->Get("timeout")) {
      d.hello.timeout = v->AsDuration();
      if (d.hello.timeout < std::chrono::milliseconds(10) ||
          d.hello.timeout > std::chrono::seconds(10))
        v->Fail("a duration from 10ms to 10s");
    }
  }
}

}  // namespace

std::string DefaultNodeName() {
  if (const char* env = std::getenv("NODE_NAME"); env != nullptr && *env != '\0') return env;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0 && host[0] != '\0') return host;
  return "localhost";
}

const std::vector<RoleSpec>& BuiltinRoles() {
  using P = RoleProto;
  static const std::vector<RoleSpec> roles = {
      Role("k8s-api", P::kTcp, {{6443, 6443}}),
      Role("etcd-client", P::kTcp, {{2379, 2379}}),
      Role("etcd-peer", P::kTcp, {{2380, 2380}}),
      Role("kubelet", P::kTcp, {{10250, 10250}}),
      Role("flannel-vxlan", P::kUdp, {{8472, 8472}}),
      Role("redis", P::kTcp, {{6379, 6379}}),
      Role("postgresql", P::kTcp, {{5432, 5432}}),
      Role("cli-relay", P::kTcp, {{8000, 8000}}),
      Role("http", P::kTcp, {{80, 80}}),
      Role("https", P::kTcp, {{443, 443}}),
      Role("dns", P::kAny, {{53, 53}}),
      Role("wireguard", P::kUdp, {{51820, 51820}}),
      Role("tailscale", P::kUdp, {{41641, 41641}}),
      Role("prometheus", P::kTcp, {{9090, 9090}}),
      Role("alertmanager", P::kTcp, {{9093, 9093}}),
      Role("node-exporter", P::kTcp, {{9100, 9100}}),
      Role("minio", P::kTcp, {{9000, 9000}}),
      Role("meshflow", P::kAny, {{9474, 9474}}),
      Role("meshflow-gateway", P::kTcp, {{9475, 9475}}),
  };
  return roles;
}

Config DefaultConfig(const std::string& default_node_name) {
  Config config;
  config.node_name = default_node_name;
  config.roles = BuiltinRoles();
  return config;
}

Config ParseConfig(const std::string& text, const std::string& file_name,
                   const std::string& default_node_name) {
  const ConfigNode root = ConfigNode::Parse(text, file_name);
  Config config = DefaultConfig(default_node_name);
  config.source = file_name;
  // Each section is read on its own, so that one check reports the errors of all of them.
  ConfigErrorList errors;
  errors.Check([&] {
    root.ExpectMap(
        {"node_name", "nodes", "roles", "builtin_roles", "flows", "probes", "discovery"});
  });
  errors.Check([&] {
    if (auto v = root.Get("node_name")) config.node_name = v->AsName();
  });
  errors.Check([&] {
    if (auto v = root.Get("nodes")) config.nodes = ReadNodes(*v, errors);
  });
  std::vector<RoleSpec> roles;
  errors.Check([&] {
    if (auto v = root.Get("roles")) roles = ReadRoles(*v, errors);
  });
  bool builtin = true;
  errors.Check([&] {
    if (auto v = root.Get("builtin_roles")) builtin = v->AsBool();
  });
  if (builtin) roles.insert(roles.end(), BuiltinRoles().begin(), BuiltinRoles().end());
  config.roles = std::move(roles);
  errors.Check([&] {
    if (auto v = root.Get("flows")) ReadFlows(*v, config.flows);
  });
  errors.Check([&] {
    if (auto v = root.Get("probes")) ReadProbes(*v, config.probes);
  });
  errors.Check([&] {
    if (auto v = root.Get("discovery")) ReadDiscovery(*v, config.discovery);
  });
  errors.ThrowIfAny();
  return config;
}

Config LoadConfigFile(const std::string& path, const std::string& default_node_name) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot read the config file: " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError(path + ": cannot read the config file: " + std::strerror(errno));
  return ParseConfig(text.str(), path, default_node_name);
}

}  // namespace meshflow
