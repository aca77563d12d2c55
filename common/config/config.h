#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/core/ip_address.h"

namespace meshflow {

using std::chrono::nanoseconds;

// A member of the cluster and the addresses (CIDRs) that belong to it.
struct NodeSpec {
  std::string name;
  std::vector<IpPrefix> addresses;
};

enum class RoleProto { kTcp, kUdp, kAny };

// A role is a name for traffic to or from certain ports: "redis" is TCP 6379.
struct RoleSpec {
  std::string name;
  RoleProto proto = RoleProto::kTcp;
  struct PortRange {
    uint16_t first = 0;
    uint16_t last = 0;
  };
  std::vector<PortRange> ports;
};

// Which interfaces to capture on, and how.
struct CaptureConfig {
  // RE2 patterns over interface names; an interface is captured when it matches an include
  // pattern and no exclude pattern.
  std::vector<std::string> include{"^(tailscale|wg|flannel|cni|eth|en|ts)[0-9a-z._-]*$"};
  std::vector<std::string> exclude{"^lo$", "^veth"};
  // The kind of each interface decides which bytes may be summed together (see README).
  struct KindRule {
    std::string pattern;  // RE2 over the interface name
    std::string kind;     // overlay, underlay or pod
  };
  std::vector<KindRule> kinds{{"^(tailscale|wg|ts|flannel|vxlan|nebula|zt)", "overlay"},
                              {"^(cni|cali|cilium|veth|docker|br-)", "pod"},
                              {".*", "underlay"}};
  int snaplen = 128;                                            // bytes kept per packet
  int64_t buffer_bytes = 2 * 1024 * 1024;                       // kernel ring per interface
  nanoseconds buffer_timeout = std::chrono::milliseconds(100);  // TPACKET_V3 block timeout
  nanoseconds rescan_interval = std::chrono::seconds(2);        // look for new interfaces
  bool promiscuous = false;
  std::vector<uint16_t> vxlan_ports{8472, 4789};
};

// Passive TCP health, computed on the flow collector's packet path.
struct TcpConfig {
  bool enabled = true;
  int64_t max_connections = 16384;
  nanoseconds idle_timeout = std::chrono::seconds(300);
  // Per connection, so a bulk transfer cannot flood the histogram.
  double timestamp_samples_per_second = 4;
};

struct FlowsConfig {
  CaptureConfig capture;
  int64_t max_series = 2000;
  TcpConfig tcp;
};

struct ProbePeer {
  std::string name;
  std::string address;               // an IP literal or a DNS name, re-resolved
  std::vector<std::string> methods;  // empty: the probes section's default
  uint16_t tcp_port = 0;             // for the tcp method; 0: probes.tcp_port
};

struct ProbesConfig {
  nanoseconds interval = std::chrono::seconds(1);  // per peer and method
  nanoseconds timeout = std::chrono::seconds(3);   // replies after it count as late
  std::vector<std::string> methods{"icmp", "udp"};
  uint16_t tcp_port = 6443;
  uint16_t udp_port = 9474;  // the peers' reflector port
  nanoseconds dns_refresh_interval = std::chrono::seconds(60);
  // Empty: every other node of `nodes:` at its first address.
  std::vector<ProbePeer> peers;
  struct Reflector {
    bool enabled = true;
    std::string listen_address = "0.0.0.0";
    uint16_t port = 9474;
    double max_replies_per_source_per_second = 50;
    double max_replies_per_second = 5000;  // over all sources together
  } reflector;
  // Path MTU: per peer, the largest ICMP echo that passes with don't-fragment set.
  struct PathMtu {
    bool enabled = true;
    nanoseconds interval = std::chrono::seconds(60);  // one search per peer per interval
    nanoseconds timeout = std::chrono::seconds(2);    // per echo; 3 tries before a size fails
  } path_mtu;
};

// Finding the cluster's nodes without listing them (common/discovery/). What the sources find is
// merged with `nodes:`; a static entry wins on conflict.
struct DiscoveryConfig {
  bool enabled = false;
  nanoseconds refresh_interval = std::chrono::seconds(30);
  // A discovered node no source lists any more stays in the node table (probed, its flows
  // named) this long after it was last listed, then drops out. The default is Prometheus'
  // staleness window: its series go stale before it leaves, never after.
  nanoseconds stale_after = std::chrono::minutes(5);
  // Addresses a hello (self-identification) is accepted from, and which discovered addresses are
  // overlay addresses. Empty: hellos are not sent and peers keep their address as their name.
  std::vector<IpPrefix> overlay_prefixes;
  struct WireGuard {
    bool enabled = false;
    std::string socket_dir = "/var/run/wireguard";  // <interface>.sock, the UAPI sockets
    std::vector<std::string> interfaces;            // empty: every socket in socket_dir
    bool operator==(const WireGuard&) const = default;
  } wireguard;
  struct Dns {
    bool enabled = false;
    std::vector<std::string> names;  // A and AAAA records of each
    std::string server;              // ip or ip:port; empty: the system's resolver
    bool operator==(const Dns&) const = default;
  } dns;
  struct Kubernetes {
    bool enabled = false;
    // Which address of a Node is its overlay address, first present wins: InternalIP,
    // ExternalIP, or an annotation name (k3s.io/internal-ip, flannel.alpha.coreos.com/public-ip).
    std::vector<std::string> overlay_address{"k3s.io/internal-ip", "InternalIP"};
    std::string api_server;  // empty: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
    std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
    std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
    bool operator==(const Kubernetes&) const = default;
  } kubernetes;
  struct Tailscale {
    bool enabled = false;
    std::string socket = "/var/run/tailscale/tailscaled.sock";
    bool online_only = true;        // skip peers whose status says "Online": false
    std::vector<std::string> tags;  // non-empty: only peers with one of these ACL tags
    bool operator==(const Tailscale&) const = default;
  } tailscale;
  struct Hello {
    bool enabled = true;
    nanoseconds timeout = std::chrono::seconds(1);
    bool operator==(const Hello&) const = default;
  } hello;
  bool operator==(const DiscoveryConfig&) const = default;
};

// The whole configuration. Everything has a default: an empty file is a working config.
struct Config {
  std::string source = "<built-in default>";  // the file it came from, for logs and errors
  std::string node_name;
  std::vector<NodeSpec> nodes;
  std::vector<RoleSpec> roles;  // effective table, first match wins: user roles, then built-ins
  FlowsConfig flows;
  ProbesConfig probes;
  DiscoveryConfig discovery;
};

// $NODE_NAME, else the host name.
std::string DefaultNodeName();

// The role table used when the config names none.
const std::vector<RoleSpec>& BuiltinRoles();

// The config with no file at all.
Config DefaultConfig(const std::string& default_node_name = DefaultNodeName());

// Parses config text; `file_name` labels errors. Throws ConfigError naming file, line and field.
Config ParseConfig(const std::string& text, const std::string& file_name,
                   const std::string& default_node_name = DefaultNodeName());

// Reads and parses a file. Throws ConfigError (also when the file cannot be read).
Config LoadConfigFile(const std::string& path,
                      const std::string& default_node_name = DefaultNodeName());

}  // namespace meshflow
