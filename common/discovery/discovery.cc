#include "common/discovery/discovery.h"

#include <linux/capability.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "common/core/metric_builder.h"
#include "common/discovery/dns.h"
#include "common/discovery/kubernetes.h"
#include "common/discovery/tailscale.h"
#include "common/discovery/wireguard.h"

namespace meshflow::discovery {
namespace {

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool IsHost(const IpPrefix& p) { return p.bits == (p.address.is_v4() ? 32 : 128); }

bool InAny(const std::vector<IpPrefix>& prefixes, const IpAddress& a) {
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](const IpPrefix& p) { return p.Contains(a); });
}

bool Lists(const HelloIdentity& id, const IpAddress& a) {
  return std::any_of(id.addresses.begin(), id.addresses.end(),
                     [&](const IpPrefix& p) { return p.Contains(a); });
}

}  // namespace

std::vector<int> CapabilitiesWhileRunning(const DiscoveryConfig& c) {
  if (c.enabled && c.wireguard.enabled) return {CAP_NET_ADMIN};
  return {};
}

std::vector<std::unique_ptr<Source>> SourcesFromConfig(const DiscoveryConfig& c) {
  std::vector<std::unique_ptr<Source>> out;
  if (c.kubernetes.enabled) out.push_back(std::make_unique<KubernetesSource>(c.kubernetes));
  if (c.tailscale.enabled)
    out.push_back(std::make_unique<TailscaleSource>(
        c.tailscale.socket, TailscaleFilter{c.tailscale.online_only, c.tailscale.tags}));
  if (c.wireguard.enabled)
    out.push_back(
        std::make_unique<WireGuardSource>(c.wireguard.socket_dir, c.wireguard.interfaces));
  if (c.dns.enabled) out.push_back(std::make_unique<DnsSource>(c.dns.names, c.dns.server));
  return out;
}

Discovery::Discovery(const Config& config, OnChange on_change,
                     std::vector<std::unique_ptr<Source>> sources, Clock clock)
    : node_name_(config.node_name),
      config_(config.discovery),
      hello_port_(config.probes.udp_port),
      on_change_(std::move(on_change)),
      sources_(sources.empty() ? SourcesFromConfig(config.discovery) : std::move(sources)),
      clock_(clock ? std::move(clock) : [] { return std::chrono::steady_clock::now(); }) {
  for (size_t i = 0; i < sources_.size(); ++i) {
    SourceState state;
    state.name = std::string(sources_[i]->name());
    states_.push_back(std::move(state));
    sources_[i]->SetUpdate([this, i](std::vector<DiscoveredNode> nodes) {
      Record(i, PollResult::Ok(std::move(nodes)), false);
      Rename();
    });
  }
}

Discovery::~Discovery() { Stop(); }

void Discovery::Start() {
  for (size_t i = 0; i < sources_.size(); ++i) threads_.emplace_back([this, i] { Run(i); });
}

void Discovery::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& s : sources_) s->Cancel();  // a watch in progress returns now
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Discovery::PollAllOnce() {
  for (size_t i = 0; i < sources_.size(); ++i) PollOne(i);
}

void Discovery::Run(size_t index) {
  for (;;) {
    PollOne(index);
    std::unique_lock lock(mutex_);
    // A source whose poll waits for changes (a Kubernetes watch) polls again at once, unless it
    // failed: then it waits like the others, so a broken API server is not hammered.
    const bool again = sources_[index]->Waits() && !states_[index].failing;
    if (!again) wake_.wait_for(lock, config_.refresh_interval, [this] { return stopping_; });
    if (stopping_) return;
  }
}

void Discovery::PollOne(size_t index) {
  PollResult r = sources_[index]->Poll();
  if (!r.nodes && sources_[index]->cancelled()) return;  // stopping: not a failure
  Record(index, std::move(r), true);
  Rename();
}

void Discovery::Record(size_t index, PollResult r, bool counts_as_poll) {
  {
    std::lock_guard lock(mutex_);
    SourceState& s = states_[index];
    if (counts_as_poll) ++s.polls;
    if (r.nodes) {
      const bool changed = !s.has_succeeded || s.failing || *r.nodes != s.last_good;
      if (s.failing) {
        spdlog::info("discovery: {} recovered: {} nodes", s.name, r.nodes->size());
      } else if (changed) {
        spdlog::info("discovery: {} finds {} nodes", s.name, r.nodes->size());
      }
      s.last_good = std::move(*r.nodes);
      s.has_succeeded = true;
      s.failing = false;
      s.last_success_seconds = NowSeconds();
    } else {
      ++s.errors;
      if (!s.failing) {
        spdlog::warn("discovery: {} failing, keeping its last {} nodes: {}", s.name,
                     s.last_good.size(), r.error);
      }
      s.failing = true;
      s.last_error = r.error;
    }
  }
}

std::vector<IpAddress> Discovery::HelloTargets() const {
  std::vector<IpAddress> out;
  if (!config_.hello.enabled || config_.overlay_prefixes.empty()) return out;
  for (const auto& s : states_) {
    for (const auto& n : s.last_good) {
      if (!n.name.empty()) continue;
      const auto host = std::find_if(n.addresses.begin(), n.addresses.end(), IsHost);
      if (host == n.addresses.end()) continue;
      // Identities are taken only from the overlay: an address outside it is not asked.
      if (!InAny(config_.overlay_prefixes, host->address)) continue;
      out.push_back(host->address);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void Discovery::Rename() {
  // This machine's own addresses always carry this node's name.
  const std::vector<IpAddress> local = InterfaceAddresses();
  std::vector<IpAddress> targets;
  {
    std::lock_guard lock(mutex_);
    for (const auto& a : HelloTargets())
      if (std::find(local.begin(), local.end(), a) == local.end()) targets.push_back(a);
  }
  HelloStats stats;
  const auto answers = AskHello(
      targets, hello_port_,
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.hello.timeout), &stats);
  bool changed = false;
  {
    std::lock_guard lock(mutex_);
    hello_stats_.sent += stats.sent;
    hello_stats_.answered += stats.answered;
    hello_stats_.malformed += stats.malformed;
    for (const auto& [address, id] : answers) {
      // Two peers claiming one name are two nodes until proven otherwise: the first claim stays,
      // the second keeps its address as its name. One claim is proven the same node when either
      // reply lists the other's address.
      std::string holder;
      for (const auto& [a, name] : identities_)
        if (name == id.name && a != address) holder = a.ToString();
      bool conflict = id.name == node_name_;
      if (!holder.empty()) {
        const auto first = named_.find(id.name);
        const IpAddress other = *IpAddress::Parse(holder);
        conflict = !(Lists(id, other) || (first != named_.end() && Lists(first->second, address)));
      }
      if (conflict) {
        ++hello_conflicts_;
        const std::string key = id.name + "|" + address.ToString();
        if (logged_conflicts_.insert(key).second) {
          spdlog::warn("discovery: {} says it is node {}, which {} already is; not merged",
                       address.ToString(), id.name,
                       holder.empty() ? std::string("this node") : holder);
        }
        continue;
      }
      named_.emplace(id.name, id);
      identities_[address] = id.name;
    }
    // Forget identities of addresses no source lists any more.
    std::set<IpAddress> listed;
    for (const auto& s : states_)
      for (const auto& n : s.last_good)
        for (const auto& p : n.addresses)
          if (IsHost(p)) listed.insert(p.address);
    for (auto it = identities_.begin(); it != identities_.end();) {
      if (listed.count(it->first)) {
        ++it;
        continue;
      }
      const std::string name = it->second;
      it = identities_.erase(it);
      if (std::none_of(identities_.begin(), identities_.end(),
                       [&](const auto& e) { return e.second == name; }))
        named_.erase(name);
    }
    Identities ids = identities_;
    for (const auto& a : local) ids[a] = node_name_;
    std::vector<std::vector<DiscoveredNode>> sets;
    for (const auto& s : states_) sets.push_back(s.last_good);
    MergeReport report;
    std::vector<NodeSpec> merged = NameAndMerge(sets, ids, &report);
    for (const auto& c : report.conflicts) {
      if (logged_merge_conflicts_.insert(c).second) {
        ++merge_conflicts_;
        spdlog::warn("discovery: dropped {}", c);
      }
    }
    KeepStale(merged);
    auto same = [](const std::vector<NodeSpec>& a, const std::vector<NodeSpec>& b) {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i)
        if (a[i].name != b[i].name || a[i].addresses != b[i].addresses) return false;
      return true;
    };
    if (!same(merged, current_)) {
      current_ = std::move(merged);
      changed = true;
    }
  }
  if (changed && on_change_) {
    std::lock_guard change(change_mutex_);
    on_change_(Current());
  }
}

void Discovery::KeepStale(std::vector<NodeSpec>& merged) {
  const auto now = clock_();
  std::set<std::string> names;
  std::set<IpPrefix> addresses;
  for (const auto& n : merged) {
    seen_[n.name] = Seen{n, now, false, {}};
    names.insert(n.name);
    addresses.insert(n.addresses.begin(), n.addresses.end());
  }
  stale_nodes_ = 0;
  std::vector<NodeSpec> kept;
  for (auto it = seen_.begin(); it != seen_.end();) {
    Seen& s = it->second;
    if (names.count(it->first)) {
      ++it;
      continue;
    }
    // Back under another name (an address name replaced by the hello's, or a renamed node):
    // what the sources list now wins, at once.
    const bool replaced = std::any_of(s.node.addresses.begin(), s.node.addresses.end(),
                                      [&](const IpPrefix& p) { return addresses.count(p) > 0; });
    if (replaced) {
      it = seen_.erase(it);
      continue;
    }
    if (!s.unlisted) {
      s.unlisted = true;
      s.unlisted_since = now;
      spdlog::info("discovery: node {} is no longer listed; kept for {} s", it->first,
                   std::chrono::duration_cast<std::chrono::seconds>(config_.stale_after).count());
    }
    if (now - s.unlisted_since >= config_.stale_after) {
      spdlog::info(
          "discovery: node {} dropped: no source has listed it for {} s", it->first,
          std::chrono::duration_cast<std::chrono::seconds>(now - s.unlisted_since).count());
      ++stale_expired_;
      it = seen_.erase(it);
      continue;
    }
    kept.push_back(s.node);
    ++stale_nodes_;
    ++it;
  }
  merged.insert(merged.end(), kept.begin(), kept.end());
}

std::vector<NodeSpec> Discovery::Current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

std::vector<SourceState> Discovery::States() const {
  std::lock_guard lock(mutex_);
  return states_;
}

void Discovery::Collect(std::vector<prometheus::MetricFamily>& out) const {
  using prometheus::MetricType;
  std::lock_guard lock(mutex_);
  FamilyBuilder nodes("meshflow_discovery_nodes",
                      "Nodes in the last good set of each discovery source.", MetricType::Gauge);
  FamilyBuilder up("meshflow_discovery_source_up",
                   "1 when the source's last poll succeeded, else 0 (its last good set is kept).",
                   MetricType::Gauge);
  FamilyBuilder success("meshflow_discovery_last_success_timestamp_seconds",
                        "Unix time of the source's last successful poll; 0 before the first.",
                        MetricType::Gauge);
  FamilyBuilder polls("meshflow_discovery_polls_total", "Polls of each discovery source.",
                      MetricType::Counter);
  FamilyBuilder errors("meshflow_discovery_errors_total",
                       "Polls that failed (source absent, unreachable, or bad data).",
                       MetricType::Counter);
  for (const auto& s : states_) {
    const LabelPairs l{{"source", s.name}};
    nodes.Gauge(l, static_cast<double>(s.last_good.size()));
    up.Gauge(l, s.has_succeeded && !s.failing ? 1 : 0);
    success.Gauge(l, s.last_success_seconds);
    polls.Counter(l, static_cast<double>(s.polls));
    errors.Counter(l, static_cast<double>(s.errors));
  }
  nodes.AppendTo(out);
  up.AppendTo(out);
  success.AppendTo(out);
  polls.AppendTo(out);
  errors.AppendTo(out);
  FamilyBuilder("meshflow_discovery_merged_nodes",
                "Discovered nodes after naming and merging, before the static nodes: list; "
                "includes the nodes kept after no source lists them (stale_nodes).",
                MetricType::Gauge)
      .Gauge({}, static_cast<double>(current_.size()))
      .AppendTo(out);
  FamilyBuilder("meshflow_discovery_stale_nodes",
                "Discovered nodes no source lists any more, kept until discovery.stale_after "
                "has passed since they were last listed.",
                MetricType::Gauge)
      .Gauge({}, static_cast<double>(stale_nodes_))
      .AppendTo(out);
  FamilyBuilder("meshflow_discovery_stale_expired_total",
                "Discovered nodes dropped because no source listed them for stale_after.",
                MetricType::Counter)
      .Counter({}, static_cast<double>(stale_expired_))
      .AppendTo(out);
  FamilyBuilder("meshflow_discovery_hello_sent_total", "Hello requests sent to nameless peers.",
                MetricType::Counter)
      .Counter({}, static_cast<double>(hello_stats_.sent))
      .AppendTo(out);
  FamilyBuilder("meshflow_discovery_hello_replies_total", "Valid hello replies received.",
                MetricType::Counter)
      .Counter({}, static_cast<double>(hello_stats_.answered))
      .AppendTo(out);
  FamilyBuilder("meshflow_discovery_hello_malformed_total",
                "Datagrams on the hello socket that were not a valid reply to a request sent.",
                MetricType::Counter)
      .Counter({}, static_cast<double>(hello_stats_.malformed))
      .AppendTo(out);
  FamilyBuilder("meshflow_discovery_hello_conflicts_total",
                "Hello replies that claimed a name another peer (or this node) already has.",
                MetricType::Counter)
      .Counter({}, static_cast<double>(hello_conflicts_))
      .AppendTo(out);
  FamilyBuilder("meshflow_discovery_merge_conflicts_total",
                "Distinct discovered addresses or names dropped because another node holds them.",
                MetricType::Counter)
      .Counter({}, static_cast<double>(merge_conflicts_))
      .AppendTo(out);
}

}  // namespace meshflow::discovery
