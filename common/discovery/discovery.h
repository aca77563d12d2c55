#pragma once

#include <prometheus/metric_family.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/config/config.h"
#include "common/discovery/hello_client.h"
#include "common/discovery/merge.h"
#include "common/discovery/source.h"

namespace meshflow::discovery {

// The sources a config switches on, in the order their findings are merged: named sources
// (Kubernetes, Tailscale) before nameless ones (WireGuard, DNS).
std::vector<std::unique_ptr<Source>> SourcesFromConfig(const DiscoveryConfig& config);

// The capabilities the sources a config switches on need while they run: CAP_NET_ADMIN for the
// WireGuard source, because the kernel answers WG_CMD_GET_DEVICE only to it (a UAPI socket needs
// none, only its file permission). The exporter keeps these after start and drops the rest.
std::vector<int> CapabilitiesWhileRunning(const DiscoveryConfig& config);

// What one source has given so far.
struct SourceState {
  std::string name;
  std::vector<DiscoveredNode> last_good;  // kept while the source fails
  bool has_succeeded = false;
  bool failing = false;
  uint64_t polls = 0;
  uint64_t errors = 0;
  double last_success_seconds = 0;  // Unix time
  std::string last_error;
};

// Runs the sources, each on its own thread at the refresh interval, names what they find (hello
// from the configured overlay prefixes, this node's own addresses) and hands the merged,
// discovered-only node list to `on_change` whenever it changes. A failing source keeps its last
// good set; every change of a source's state is one log line.
//
// A node no source lists any more (a WireGuard peer removed, a Node deleted) stays, under its
// last name and addresses, until `stale_after` has passed since the first poll that found it
// gone (so never sooner than stale_after after it left); it drops out at the first poll after
// that (within one refresh_interval). A node that comes back under a name or address a kept node
// has replaces it at once; one listed again simply stays.
class Discovery {
 public:
  using OnChange = std::function<void(const std::vector<NodeSpec>&)>;
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `sources` empty: SourcesFromConfig(config.discovery). `clock` empty: steady_clock (tests
  // pass a fake one).
  Discovery(const Config& config, OnChange on_change,
            std::vector<std::unique_ptr<Source>> sources = {}, Clock clock = {});
  ~Discovery();

  void Start();
  // Returns once every source's current poll has ended (a Kubernetes watch: within its timeout).
  void Stop();
  // Polls every source once, on the caller's thread (tests, and the first round at Start()).
  void PollAllOnce();

  std::vector<NodeSpec> Current() const;
  std::vector<SourceState> States() const;
  void Collect(std::vector<prometheus::MetricFamily>& out) const;

 private:
  void Run(size_t index);
  void PollOne(size_t index);
  // A source's result into its state (polls counted when `counts_as_poll`), logged on change.
  void Record(size_t index, PollResult r, bool counts_as_poll);
  void Rename();
  void KeepStale(std::vector<NodeSpec>& merged);  // under mutex_
  std::vector<IpAddress> HelloTargets() const;

  const std::string node_name_;
  const DiscoveryConfig config_;
  const uint16_t hello_port_;
  OnChange on_change_;
  std::vector<std::unique_ptr<Source>> sources_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<SourceState> states_;
  Identities identities_;                       // address -> accepted name
  std::map<std::string, HelloIdentity> named_;  // name -> the first reply that claimed it
  std::set<std::string> logged_conflicts_;
  std::vector<NodeSpec> current_;  // what sources list now, then the nodes kept (below)
  // Every node merged from the sources, by name: its spec and when it was last listed.
  struct Seen {
    NodeSpec node;
    std::chrono::steady_clock::time_point last_listed;
    bool unlisted = false;  // a poll found it no longer listed (logged once)
    std::chrono::steady_clock::time_point unlisted_since;  // that poll's time
  };
  std::map<std::string, Seen> seen_;
  size_t stale_nodes_ = 0;      // in current_, no longer listed by any source
  uint64_t stale_expired_ = 0;  // dropped after stale_after
  Clock clock_;
  HelloStats hello_stats_;
  uint64_t hello_conflicts_ = 0;
  uint64_t merge_conflicts_ = 0;
  std::set<std::string> logged_merge_conflicts_;

  std::mutex change_mutex_;  // one on_change at a time, in order
  std::vector<std::thread> threads_;
};

}  // namespace meshflow::discovery
