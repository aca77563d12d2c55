#include "common/mesh/mesh_history.h"

#include <re2/re2.h>

#include <algorithm>
#include <bit>
#include <limits>

namespace meshflow::mesh {
namespace {

// What a std::map node costs beside its value: three pointers, colour, allocator rounding.
constexpr size_t kMapNodeOverhead = 48;
constexpr size_t kMaxBuckets = 128;
// What malloc adds to every block it hands out (glibc: the chunk header, rounded to 16).
constexpr size_t kMallocOverhead = 16;

size_t StringCost(const std::string& s) {
  // Short strings live inside the std::string; longer ones take a heap block.
  return s.size() < 16 ? 0 : s.size() + 1 + kMallocOverhead;
}

uint16_t Saturate(double delta) {
  if (!(delta > 0)) return 0;
  return delta >= 65535 ? uint16_t{65535} : static_cast<uint16_t>(std::llround(delta));
}

// A point's value and weight packed into one integer whose order is the value's: a
// non-negative float's bits order as the float does. Summing a window is mostly sorting these,
// and integers sort several times faster than (value, weight) pairs of doubles.
uint64_t PackWeighted(float value, uint16_t weight) {
  return uint64_t{std::bit_cast<uint32_t>(value > 0 ? value : 0.0f)} << 32 | weight;
}

float UnpackValue(uint64_t packed) {
  return std::bit_cast<float>(static_cast<uint32_t>(packed >> 32));
}

}  // namespace

float WeightedQuantile(std::vector<uint64_t>& packed, double q) {
  uint64_t total = 0;
  bool equal_weights = true;
  for (const uint64_t p : packed) {
    total += p & 0xffff;
    equal_weights = equal_weights && (p & 0xffff) == (packed.front() & 0xffff);
  }
  if (total == 0) return NAN;
  const double rank = q * static_cast<double>(total);
  if (equal_weights) {
    // The common case (as many replies in every interval): the answer is the k-th in order, the
    // first whose (k + 1) weights reach the rank.
    const uint64_t w = packed.front() & 0xffff;
    size_t k = 0;
    while (k + 1 < packed.size() && static_cast<double>((k + 1) * w) < rank) ++k;
    std::nth_element(packed.begin(), packed.begin() + static_cast<std::ptrdiff_t>(k), packed.end());
    return UnpackValue(packed[k]);
  }
  // Quickselect on the packed order: the answer is the first point of that order whose
  // cumulative weight reaches `rank`. `base` is the weight ordered before [first, last).
  uint64_t* first = packed.data();
  uint64_t* last = first + packed.size();
  uint64_t base = 0;
  auto weight = [](const uint64_t* from, const uint64_t* to) {
    uint64_t w = 0;
    for (; from != to; ++from) w += *from & 0xffff;
    return w;
  };
  while (last - first > 12) {
    const uint64_t a = *first, b = first[(last - first) / 2], c = last[-1];
    const uint64_t pivot = std::max(std::min(a, b), std::min(std::max(a, b), c));
    uint64_t* less_end = std::partition(first, last, [&](uint64_t x) { return x < pivot; });
    uint64_t* equal_end = std::partition(less_end, last, [&](uint64_t x) { return x == pivot; });
    const uint64_t below = base + weight(first, less_end);
    const uint64_t through = below + weight(less_end, equal_end);
    if (static_cast<double>(below) >= rank && less_end != first) {
      last = less_end;
    } else if (static_cast<double>(through) >= rank || equal_end == last) {
      return UnpackValue(pivot);
    } else {
      base = through;
      first = equal_end;
    }
  }
  std::sort(first, last);
  uint64_t seen = base;
  for (const uint64_t* p = first; p != last; ++p) {
    seen += *p & 0xffff;
    if (static_cast<double>(seen) >= rank) return UnpackValue(*p);
  }
  return UnpackValue(last[-1]);
}

bool MeshHistory::LinkBefore(const Link& l, const std::pair<std::string, std::string>& key) {
  return LinkKey(l) < std::tie(key.first, key.second);
}

MeshSettings ReadMeshSettings(const ConfigNode& node) {
  node.ExpectMap({"retention", "resolution", "stale_after", "max_bytes", "rtt_thresholds",
                  "asymmetry_ratio", "asymmetry_min", "group_pattern"});
  MeshSettings s;
  auto seconds = [](const ConfigNode& n, double min, double max) {
    const double v = std::chrono::duration<double>(n.AsDuration()).count();
    if (v < min || v > max) {
      n.Fail("a duration from " + std::to_string(min) + "s to " + std::to_string(max) + "s");
    }
    return v;
  };
  if (auto n = node.Get("retention")) s.retention_seconds = seconds(*n, 60, 86400);
  if (auto n = node.Get("resolution")) s.resolution_seconds = seconds(*n, 1, 3600);
  if (auto n = node.Get("stale_after")) s.stale_after_seconds = seconds(*n, 1, 86400);
  if (auto n = node.Get("max_bytes"))
    s.max_bytes = static_cast<size_t>(n->AsInt(int64_t{1} << 20, int64_t{16} << 30));
  if (s.retention_seconds / s.resolution_seconds > 100000)
    node.Require("resolution").Fail("at most 100000 points per retention");
  if (auto n = node.Get("rtt_thresholds")) {
    const auto items = n->Items();
    if (items.size() != 3) n->Fail("three durations, ascending, such as [10ms, 50ms, 150ms]");
    s.rtt_thresholds_seconds.clear();
    for (const auto& item : items) {
      const double v = seconds(item, 1e-6, 60);
      if (!s.rtt_thresholds_seconds.empty() && v <= s.rtt_thresholds_seconds.back())
        item.Fail("a duration above the one before it");
      s.rtt_thresholds_seconds.push_back(v);
    }
  }
  if (auto n = node.Get("asymmetry_ratio")) s.asymmetry_ratio = n->AsDouble(1, 1000);
  if (auto n = node.Get("asymmetry_min")) s.asymmetry_min_seconds = seconds(*n, 0, 60);
  if (auto n = node.Get("group_pattern")) {
    s.group_pattern = n->AsString();
    const re2::RE2 re(s.group_pattern, re2::RE2::Quiet);
    if (!re.ok() || re.NumberOfCapturingGroups() != 1)
      n->Fail("an RE2 pattern with exactly one capture group, such as \"-([a-z]+)$\"");
  }
  return s;
}

size_t MeshSettings::Capacity() const {
  const double n = std::ceil(retention_seconds / resolution_seconds);
  return static_cast<size_t>(std::clamp(n, 1.0, 100000.0));
}

double BucketQuantile(const std::vector<std::pair<double, double>>& buckets, double q) {
  double total = 0;
  for (const auto& [le, n] : buckets) total += n;
  if (total <= 0) return NAN;
  const double rank = q * total;
  double below = 0;
  double lower = 0;
  double last_finite = 0;
  for (const auto& [le, n] : buckets) {
    if (std::isfinite(le)) last_finite = le;
    if (n > 0 && below + n >= rank) {
      if (!std::isfinite(le)) return last_finite;  // as histogram_quantile: the highest bound
      return lower + (le - lower) * std::clamp((rank - below) / n, 0.0, 1.0);
    }
    below += n;
    if (std::isfinite(le)) lower = le;
  }
  return last_finite;
}

MeshHistory::MeshHistory(MeshSettings settings)
    : settings_(std::move(settings)),
      capacity_(settings_.Capacity()),
      group_re_(std::make_unique<re2::RE2>(settings_.group_pattern, re2::RE2::Quiet)) {}

MeshHistory::~MeshHistory() = default;

size_t MeshHistory::NodeCost(const std::string& name) {
  return sizeof(Node) + kMapNodeOverhead + kMallocOverhead + sizeof(std::string) + StringCost(name);
}

size_t MeshHistory::LinkCost(const std::string& dst, const std::string& method,
                             size_t buckets) const {
  // Its slot in the node's array, and two blocks: the ring and the last cumulative buckets.
  return sizeof(Link) + 2 * kMallocOverhead + StringCost(dst) + StringCost(method) +
         capacity_ * sizeof(LinkPoint) + buckets * sizeof(std::pair<double, double>);
}

size_t MeshHistory::TrafficCost(const std::string& src, const std::string& dst,
                                const std::string& role) const {
  return sizeof(Traffic) + kMapNodeOverhead + 2 * kMallocOverhead + 3 * sizeof(std::string) +
         StringCost(src) + StringCost(dst) + StringCost(role) + capacity_ * sizeof(TrafficPoint);
}

size_t MeshHistory::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

uint32_t MeshHistory::Deciseconds(double wall_seconds) const {
  const double ds = std::round((wall_seconds - epoch_) * 10);
  return static_cast<uint32_t>(std::clamp(ds, 0.0, 4.0e9));
}

template <typename Point>
void MeshHistory::Push(std::vector<Point>& ring, size_t& head, size_t capacity, const Point& p) {
  if (ring.size() < capacity) {
    ring.push_back(p);
    return;
  }
  ring[head] = p;
  head = (head + 1) % capacity;
}

void MeshHistory::Prune(double now) {
  const double horizon = now - settings_.retention_seconds;
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (it->second.last_seen < horizon) {
      bytes_ -= it->second.cost;
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
}

void MeshHistory::AdmitLinks(Node& n, const NodeReading& reading) {
  std::vector<const LinkReadingEntry*> fresh;
  auto it = n.links.begin();
  for (const auto& entry : reading.links) {
    const auto& [key, r] = entry;
    if (r.buckets.empty() || r.buckets.size() > kMaxBuckets) continue;
    it = std::lower_bound(it, n.links.end(), key, LinkBefore);
    if (it == n.links.end() || it->dst != key.first || it->method != key.second)
      fresh.push_back(&entry);
  }
  if (fresh.empty()) return;
  // The array grows to exactly what is admitted, so no slot is reserved that no link uses; the
  // slots past its old capacity (and a first block's header) are what growing it costs.
  const size_t old_capacity = n.links.capacity();
  auto slot_cost = [&](size_t slots) -> size_t {
    if (slots <= old_capacity) return 0;
    return (slots - old_capacity) * sizeof(Link) + (old_capacity == 0 ? kMallocOverhead : 0);
  };
  std::vector<std::pair<const LinkReadingEntry*, size_t>> admitted;  // with its blocks' cost
  size_t cost = 0;
  for (const auto* entry : fresh) {
    const auto& [key, r] = *entry;
    const size_t link_cost = LinkCost(key.first, key.second, r.buckets.size()) - sizeof(Link);
    if (bytes_ + slot_cost(n.links.size() + admitted.size() + 1) + cost + link_cost >
        settings_.max_bytes) {
      ++refused_links_;
      continue;
    }
    cost += link_cost;
    admitted.emplace_back(entry, link_cost);
  }
  if (admitted.empty()) return;
  const size_t slots = n.links.size() + admitted.size();
  const size_t array_cost = slot_cost(slots);
  n.links.reserve(slots);
  n.cost += array_cost;
  bytes_ += array_cost;
  for (const auto& [entry, link_cost] : admitted) {
    const auto& [key, r] = *entry;
    Link& l = n.links.emplace_back();
    l.dst = key.first;
    l.method = key.second;
    l.ring.reserve(capacity_);
    l.last_buckets.reserve(r.buckets.size());
    l.cost = link_cost;
    n.cost += link_cost;
    bytes_ += link_cost;
  }
  std::sort(n.links.begin(), n.links.end(),
            [](const Link& a, const Link& b) { return LinkKey(a) < LinkKey(b); });
}

void MeshHistory::Observe(const std::string& node, const NodeReading& reading,
                          double wall_seconds) {
  std::lock_guard lock(mutex_);
  if (epoch_ < 0) epoch_ = wall_seconds;
  Prune(wall_seconds);
  auto node_it = nodes_.find(node);
  if (node_it == nodes_.end()) {
    const size_t cost = NodeCost(node);
    if (bytes_ + cost > settings_.max_bytes) {
      ++refused_nodes_;
      return;
    }
    node_it = nodes_.emplace(node, Node{}).first;
    node_it->second.cost = cost;
    bytes_ += cost;
  }
  Node& n = node_it->second;
  if (wall_seconds < n.last_seen) return;  // an older reading arriving late changes nothing
  n.last_seen = wall_seconds;
  for (const auto& [dst, mtu] : reading.path_mtu_bytes) n.path_mtu[dst] = mtu;
  // Merge readings that arrive faster than the resolution; a little slack keeps a pusher whose
  // interval equals the resolution from skipping every other reading on jitter.
  const bool store =
      n.last_stored < 0 || wall_seconds - n.last_stored >= 0.8 * settings_.resolution_seconds;
  if (!store) return;
  n.last_stored = wall_seconds;
  const uint32_t t = Deciseconds(wall_seconds);

  AdmitLinks(n, reading);
  // Both are ordered by (dst, method): one walk finds every reading's link.
  auto link = n.links.begin();
  for (const auto& [key, r] : reading.links) {
    if (r.buckets.empty() || r.buckets.size() > kMaxBuckets) continue;
    link = std::lower_bound(link, n.links.end(), key, LinkBefore);
    if (link == n.links.end() || link->dst != key.first || link->method != key.second) continue;
    Link& l = *link;
    const bool had_baseline = !l.last_buckets.empty();
    bool reset = !had_baseline || l.last_buckets.size() != r.buckets.size() ||
                 r.received < l.last_received || r.lost < l.last_lost ||
                 r.forward_lost < l.last_forward || r.return_lost < l.last_return;
    std::vector<std::pair<double, double>> delta;
    if (!reset) {
      delta.reserve(r.buckets.size());
      double prev_now = 0, prev_then = 0;
      for (size_t i = 0; i < r.buckets.size(); ++i) {
        const auto& [le, cum] = r.buckets[i];
        const double then = l.last_buckets[i].second;
        if (le != l.last_buckets[i].first || cum < then) {
          reset = true;
          break;
        }
        // Cumulative counts to per-bucket counts, as deltas since the last stored point.
        delta.emplace_back(le, std::max(0.0, (cum - prev_now) - (then - prev_then)));
        prev_now = cum;
        prev_then = then;
      }
    }
    if (!reset) {
      LinkPoint p;
      p.t_ds = t;
      p.p50 = static_cast<float>(BucketQuantile(delta, 0.5));
      p.p90 = static_cast<float>(BucketQuantile(delta, 0.9));
      p.min = static_cast<float>(BucketQuantile(delta, 0));
      p.max = static_cast<float>(BucketQuantile(delta, 1));
      p.received = Saturate(r.received - l.last_received);
      p.lost = Saturate(r.lost - l.last_lost);
      p.forward_lost = Saturate(r.forward_lost - l.last_forward);
      p.return_lost = Saturate(r.return_lost - l.last_return);
      Push(l.ring, l.head, capacity_, p);
      ++l.appends;
    }
    if (l.last_buckets.capacity() < r.buckets.size()) continue;  // never grows past its cost
    l.last_buckets = r.buckets;
    l.last_received = r.received;
    l.last_lost = r.lost;
    l.last_forward = r.forward_lost;
    l.last_return = r.return_lost;
    l.has_direction = r.has_direction;
    l.last_seen = wall_seconds;
  }

  for (const auto& [key, total] : reading.overlay_bytes) {
    auto it = n.traffic.find(key);
    if (it == n.traffic.end()) {
      const size_t cost = TrafficCost(std::get<0>(key), std::get<1>(key), std::get<2>(key));
      if (bytes_ + cost > settings_.max_bytes) {
        ++refused_traffic_;
        continue;
      }
      it = n.traffic.emplace(key, Traffic{}).first;
      it->second.ring.reserve(capacity_);
      it->second.cost = cost;
      it->second.last_bytes = total;
      it->second.last_time = wall_seconds;
      it->second.last_seen = wall_seconds;
      n.cost += cost;
      bytes_ += cost;
      continue;
    }
    Traffic& tr = it->second;
    const double span = wall_seconds - tr.last_time;
    if (total >= tr.last_bytes && span > 0) {
      TrafficPoint p;
      p.t_ds = t;
      p.dt = static_cast<float>(span);
      p.bytes_per_second = static_cast<float>((total - tr.last_bytes) / span);
      Push(tr.ring, tr.head, capacity_, p);
    }
    tr.last_bytes = total;
    tr.last_time = wall_seconds;
    tr.last_seen = wall_seconds;
  }

  // Links and series a node stopped reporting leave once they are older than the history.
  const double horizon = wall_seconds - settings_.retention_seconds;
  // Their slots stay reserved (and counted) for the links that come next.
  std::erase_if(n.links, [&](const Link& l) {
    if (l.last_seen >= horizon) return false;
    n.cost -= l.cost;
    bytes_ -= l.cost;
    return true;
  });
  for (auto it = n.traffic.begin(); it != n.traffic.end();) {
    if (it->second.last_seen < horizon) {
      n.cost -= it->second.cost;
      bytes_ -= it->second.cost;
      it = n.traffic.erase(it);
    } else {
      ++it;
    }
  }
}

const MeshHistory::WindowSummary& MeshHistory::Summarize(const Link& l, uint32_t from_ds,
                                                         uint32_t window_ds) const {
  // Still valid when nothing was appended since and the window's start still falls between the
  // summary's last point before the window and its first point inside.
  for (const auto& w : l.summaries) {
    if (w.window_ds == window_ds && w.appends == l.appends && w.before_ds <= from_ds &&
        from_ds < w.first_ds)
      return w;
  }
  // The ring holds points oldest first from `head`, their times ascending (a node's readings
  // are stored in time order): the points in the window are the newest `size - lo`.
  const size_t size = l.ring.size();
  // No division per probe: the search reads log2(size) points.
  auto at = [&](size_t i) -> const LinkPoint& {
    const size_t k = l.head + i;
    return l.ring[k >= size ? k - size : k];
  };
  size_t lo = 0, hi = size;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (at(mid).t_ds <= from_ds) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  WindowSummary& w = l.summaries[l.next_summary];
  l.next_summary = static_cast<uint8_t>((l.next_summary + 1) % l.summaries.size());
  w = WindowSummary{};
  w.window_ds = window_ds;
  w.appends = l.appends;
  if (lo > 0) w.before_ds = at(lo - 1).t_ds;
  if (lo < size) w.first_ds = at(lo).t_ds;
  // Scratch kept across calls (the caller holds the lock): no allocation per link.
  auto& p50s = scratch_p50_;
  auto& p90s = scratch_p90_;
  p50s.clear();
  p90s.clear();
  double min = INFINITY, max = -INFINITY;
  for (size_t i = lo; i < size; ++i) {
    const LinkPoint& p = at(i);
    w.received += p.received;
    w.lost += p.lost;
    w.forward_lost += p.forward_lost;
    w.return_lost += p.return_lost;
    if (p.received > 0 && std::isfinite(p.p50)) {
      p50s.push_back(PackWeighted(p.p50, p.received));
      p90s.push_back(PackWeighted(p.p90, p.received));
      min = std::min(min, static_cast<double>(p.min));
      max = std::max(max, static_cast<double>(p.max));
    }
  }
  w.p50 = static_cast<float>(WeightedQuantile(p50s, 0.5));
  w.p90 = static_cast<float>(WeightedQuantile(p90s, 0.9));
  if (std::isfinite(min)) {
    w.min = static_cast<float>(min);
    w.max = static_cast<float>(max);
  }
  return w;
}

void MeshHistory::Query(const MeshQuery& query, double wall_seconds, MeshView* out) const {
  MeshView& view = *out;
  view.nodes.clear();
  view.methods.clear();
  view.links.clear();
  view.traffic.clear();
  view.now = wall_seconds;
  view.window_seconds = std::min(query.window_seconds, settings_.retention_seconds);
  view.settings = settings_;
  std::lock_guard lock(mutex_);
  view.refused_links = refused_links_;
  view.refused_traffic = refused_traffic_;
  view.refused_nodes = refused_nodes_;
  view.bytes = bytes_;
  const double from = wall_seconds - view.window_seconds;
  const uint32_t from_ds = epoch_ < 0 ? 0 : Deciseconds(from);

  std::map<std::string, NodeSummary> nodes;
  std::vector<std::string> methods;  // a handful at most
  auto group_of = [&](const std::string& name) {
    std::string g;
    if (group_re_->ok() && RE2::PartialMatch(name, *group_re_, &g) && !g.empty()) return g;
    return std::string("other");
  };
  for (const auto& [name, n] : nodes_) {
    NodeSummary s;
    s.name = name;
    s.age_seconds = std::max(0.0, wall_seconds - n.last_seen);
    s.state = s.age_seconds > settings_.stale_after_seconds ? "stale" : "fresh";
    nodes[name] = s;
  }
  const uint32_t window_ds = static_cast<uint32_t>(std::lround(view.window_seconds * 10));
  size_t link_count = 0;
  for (const auto& [name, n] : nodes_) {
    link_count += query.method.empty()
                      ? n.links.size()
                      : std::count_if(n.links.begin(), n.links.end(),
                                      [&](const Link& l) { return l.method == query.method; });
  }
  view.links.reserve(link_count);
  for (const auto& [name, n] : nodes_) {
    const bool node_stale = wall_seconds - n.last_seen > settings_.stale_after_seconds;
    const std::string* last_dst = nullptr;  // links are ordered by dst: look each up once
    const std::string* last_method = nullptr;
    double mtu = 0;
    auto mtu_it = n.path_mtu.begin();  // ordered by dst too: walked alongside
    for (const Link& l : n.links) {
      const std::string& dst = l.dst;
      const std::string& method = l.method;
      if ((!last_method || *last_method != method) &&
          std::find(methods.begin(), methods.end(), method) == methods.end())
        methods.push_back(method);
      last_method = &method;
      if (!last_dst || *last_dst != dst) {
        last_dst = &dst;
        if (!nodes.count(dst)) nodes[dst] = NodeSummary{dst, "", "unseen", -1};
        while (mtu_it != n.path_mtu.end() && mtu_it->first < dst) ++mtu_it;
        mtu = mtu_it != n.path_mtu.end() && mtu_it->first == dst ? mtu_it->second : 0;
      }
      if (!query.method.empty() && method != query.method) continue;
      LinkSummary s;
      s.src = name;
      s.dst = dst;
      s.method = method;
      s.age_seconds = std::max(0.0, wall_seconds - l.last_seen);
      s.has_direction = l.has_direction;
      if (mtu > 0) s.path_mtu_bytes = mtu;
      if (s.src == query.series_src && s.dst == query.series_dst) {
        for (const auto& p : l.ring) {
          if (p.t_ds <= from_ds) continue;  // a point covers the interval before it
          s.series.push_back({Seconds(p.t_ds), p.p50, p.p90, p.min, p.max, p.received, p.lost});
        }
        std::sort(s.series.begin(), s.series.end(),
                  [](const auto& a, const auto& b) { return a.t < b.t; });
      }
      const WindowSummary& w = Summarize(l, from_ds, window_ds);
      s.received = w.received;
      s.lost = w.lost;
      s.forward_lost = w.forward_lost;
      s.return_lost = w.return_lost;
      s.p50 = w.p50;
      s.p90 = w.p90;
      s.min = w.min;
      s.max = w.max;
      if (node_stale || s.age_seconds > settings_.stale_after_seconds) {
        s.state = "stale";
      } else if (s.received + s.lost == 0) {
        s.state = "not_probed";
      } else {
        s.state = "fresh";
      }
      view.links.push_back(std::move(s));
    }
  }

  // Per pair and role, the source node's own count when it has one, else the destination's.
  std::map<std::tuple<std::string, std::string, std::string>, TrafficSummary> traffic;
  for (const auto& [name, n] : nodes_) {
    for (const auto& [key, tr] : n.traffic) {
      const auto& [src, dst, role] = key;
      double bytes = 0, span = 0;
      for (const auto& p : tr.ring) {
        if (p.t_ds <= from_ds) continue;  // a point covers the interval before it
        bytes += static_cast<double>(p.bytes_per_second) * p.dt;
        span += p.dt;
      }
      if (span <= 0) continue;
      auto [it, inserted] = traffic.try_emplace(key);
      const bool better = inserted || (name == src && it->second.observer != src) ||
                          (name == dst && it->second.observer != src && it->second.observer != dst);
      if (!better) continue;
      it->second = TrafficSummary{src, dst, role, name, bytes / span};
    }
  }
  for (auto& [key, t] : traffic) view.traffic.push_back(std::move(t));
  for (auto& [name, s] : nodes) {
    s.group = group_of(name);
    view.nodes.push_back(std::move(s));
  }
  std::sort(methods.begin(), methods.end());
  view.methods = std::move(methods);
}

}  // namespace meshflow::mesh
