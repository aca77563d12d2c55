#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/http/tls_client.h"
#include "common/mesh/mesh_history.h"

namespace meshflow::gateway {

using std::chrono::nanoseconds;

// A node whose exporter the gateway scrapes at a fixed URL.
struct StaticTarget {
  std::string node;
  std::string url;  // http:// or https://host:port/path
};

// Nodes found as the A/AAAA records of one name (a headless Service), re-resolved periodically.
struct DnsTargets {
  std::string name;
  uint16_t port = 9474;
  std::string path = "/metrics";
  nanoseconds refresh_interval = std::chrono::seconds(30);
  bool https = false;  // scheme: https
};

// A node that pushes its exposition, with the bearer token it must present.
struct PushNode {
  std::string node;
  std::string token_file;
  std::string token;  // read from token_file when the config is loaded
};

struct GatewayConfig {
  std::string source = "<built-in default>";
  // host:port that Prometheus should scrape the gateway at, written into /targets answers.
  // Empty: the Host header of the /targets request, i.e. the address Prometheus already uses.
  std::string advertise_address;
  std::vector<StaticTarget> static_targets;
  std::vector<DnsTargets> dns_targets;
  std::vector<PushNode> push_nodes;
  struct Scrape {
    nanoseconds default_timeout = std::chrono::seconds(10);  // without the Prometheus header
    nanoseconds max_timeout = std::chrono::seconds(30);      // caps the header's value
    // Subtracted from the header's timeout so the gateway answers before Prometheus gives up.
    nanoseconds timeout_offset = std::chrono::milliseconds(250);
    int64_t max_body_bytes = 16 << 20;
    int64_t concurrency = 32;           // upstream scrapes at once, over all nodes
    int64_t max_queue = 1024;           // scrapes waiting for a worker; more are refused
    int64_t max_inflight_per_node = 2;  // so a dead node cannot hold every worker
    // For https:// targets (tls_config); null: the system's trust store, no client certificate.
    std::shared_ptr<const TlsClient> tls;
    // The Authorization header sent upstream (basic_auth), or empty.
    std::string authorization;
  } scrape;
  struct Push {
    // How long a push is served. 0: three times the interval the pusher announces, or three
    // times default_interval when it announces none.
    nanoseconds ttl{0};
    nanoseconds default_interval = std::chrono::seconds(5);
    int64_t max_body_bytes = 4 << 20;
  } push;
  struct Federate {
    nanoseconds timeout = std::chrono::seconds(10);
  } federate;
  mesh::MeshSettings mesh;  // the /mesh view's history; applied at start only
};

// Parses gateway config text; `file_name` labels errors and anchors relative token_file paths.
// Throws meshflow::ConfigError naming file, line and field.
GatewayConfig ParseGatewayConfig(const std::string& text, const std::string& file_name);

// Reads and parses a file (an empty path gives the default config). Throws ConfigError.
GatewayConfig LoadGatewayConfigFile(const std::string& path);

// Node names become label values: 1 to 63 letters, digits, '.', '_' or '-'.
bool ValidNodeName(const std::string& name);

}  // namespace meshflow::gateway
