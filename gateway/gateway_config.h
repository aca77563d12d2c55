#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/http/http_client.h"
#include "common/http/tls_client.h"
#include "common/mesh/mesh_history.h"

namespace re2 {
class RE2;
}

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

// One write_relabel_configs entry, as Prometheus takes it.
struct RelabelRule {
  enum class Action {
    kReplace,
    kKeep,
    kDrop,
    kHashMod,
    kLabelMap,
    kLabelDrop,
    kLabelKeep,
    kKeepEqual,
    kDropEqual,
  };
  Action action = Action::kReplace;        // Prometheus' default
  std::vector<std::string> source_labels;  // their values joined by `separator`
  std::string separator = ";";
  std::shared_ptr<const re2::RE2> regex;  // fully anchored, as in Prometheus
  std::string target_label;               // replace may use $1 / ${name} in it
  std::string replacement = "$1";         // replace, labelmap
  uint64_t modulus = 0;                   // hashmod
};

// One remote_write endpoint, in the shape of Prometheus' remote_write entries.
struct RemoteWriteEndpoint {
  std::string name;  // names the queue and its metrics; default: the URL
  std::string url;
  nanoseconds remote_timeout = std::chrono::seconds(30);
  http::ClientHeaders headers;  // e.g. X-Scope-OrgID
  std::string authorization;    // basic_auth or bearer_token_file, as a header value
  std::shared_ptr<const http::TlsClient> tls;
  std::vector<RelabelRule> write_relabel_configs;
  std::vector<std::pair<std::string, std::string>> external_labels;  // sorted by name
  struct Queue {
    // Samples buffered per shard in memory; the oldest requests go first when full. Larger than
    // Prometheus' 10000: a round of scrapes arrives at once, not spread over the interval.
    int64_t capacity = 50000;
    // Shards run: a fixed count, max_shards of them (the gateway does not reshard; see the
    // gateway README). min_shards is taken for Prometheus configs and must not exceed it.
    int64_t max_shards = 4;
    int64_t min_shards = 1;
    int64_t max_samples_per_send = 2000;
    nanoseconds batch_send_deadline = std::chrono::seconds(5);
    nanoseconds min_backoff = std::chrono::milliseconds(30);
    nanoseconds max_backoff = std::chrono::seconds(5);
    bool retry_on_http_429 = true;
    // A folder for the write-ahead queue on disk; empty: the queue lives in memory only.
    std::string path;
    int64_t max_bytes = int64_t{1} << 30;  // on disk, over all shards' segments
    nanoseconds max_age = std::chrono::hours(2);
  } queue;
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
    std::shared_ptr<const http::TlsClient> tls;
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
    int64_t max_selectors = 32;      // match[] parameters per request
    int64_t max_query_bytes = 8192;  // the request's query string
    // CPU a request may spend selecting and writing samples; past it the answer is 503.
    nanoseconds time_budget = std::chrono::milliseconds(500);
  } federate;
  // What the gateway may hold of what nodes send; past it pushes are refused with 429.
  struct Memory {
    int64_t budget_bytes = int64_t{256} << 20;  // stored pushes, pushes being parsed
    int64_t max_series_per_push = 50'000;
  } memory;
  // How often the gateway scrapes every node itself (the mesh view; remote_write when configured).
  nanoseconds scrape_interval = std::chrono::seconds(5);
  std::vector<RemoteWriteEndpoint> remote_write;
  mesh::MeshSettings mesh;  // the /mesh view's history; applied at start only
};

// Parses gateway config text; `file_name` labels errors and anchors relative token_file paths.
// Throws meshflow::ConfigError naming file, line and field.
GatewayConfig ParseGatewayConfig(const std::string& text, const std::string& file_name);

// Reads and parses a file (an empty path gives the default config). Throws ConfigError.
GatewayConfig LoadGatewayConfigFile(const std::string& path);

}  // namespace meshflow::gateway
