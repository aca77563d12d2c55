#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/core/config_reader.h"
#include "common/mesh/mesh_query.h"
#include "common/mesh/mesh_reading.h"

namespace re2 {
class RE2;
}

namespace meshflow::mesh {

struct MeshSettings {
  double retention_seconds = 900;   // how far back the history reaches
  double resolution_seconds = 10;   // observations closer than this are merged into one point
  double stale_after_seconds = 30;  // a node not observed for this long is stale
  // Hard bound on the history's memory: links, traffic series and nodes beyond it are refused
  // (and counted) rather than stored.
  size_t max_bytes = size_t{64} << 20;
  // RTT colour steps for the page (seconds), ascending: green below the first, red above the last.
  std::vector<double> rtt_thresholds_seconds{0.01, 0.05, 0.15};
  // A pair is asymmetric when the slower median is this many times the faster one and at least
  // asymmetry_min_seconds apart.
  double asymmetry_ratio = 1.5;
  double asymmetry_min_seconds = 0.002;
  // A node's group for the page's grouped view: the first capture of this RE2 pattern applied to
  // the node name; no match: the group "other".
  std::string group_pattern = "^([^-.]+)";

  // Points kept per link and traffic series.
  size_t Capacity() const;
};

// Reads a `mesh:` config section (retention, resolution, stale_after, max_bytes,
// rtt_thresholds, asymmetry_ratio, asymmetry_min, group_pattern). Throws ConfigError naming the
// file, line and field.
MeshSettings ReadMeshSettings(const ConfigNode& node);

// One interval of one link: RTT quantiles from the histogram's bucket deltas (NaN when no reply
// arrived) and the loss counter deltas, saturated at 65535.
struct LinkPoint {
  uint32_t t_ds = 0;  // deciseconds since the history's epoch
  float p50 = 0, p90 = 0, min = 0, max = 0;
  uint16_t received = 0, lost = 0, forward_lost = 0, return_lost = 0;
};

// One interval of one traffic series: bytes per second over `dt` seconds.
struct TrafficPoint {
  uint32_t t_ds = 0;
  float bytes_per_second = 0;
  float dt = 0;
};

struct LinkSummary {
  std::string src, dst, method;
  std::string state;  // "fresh", "stale" or "not_probed" (nothing sent in the window)
  double age_seconds = 0;
  double p50 = NAN, p90 = NAN, min = NAN, max = NAN;
  uint64_t received = 0, lost = 0, forward_lost = 0, return_lost = 0;
  bool has_direction = false;
  double path_mtu_bytes = 0;  // 0: unknown
  struct SeriesPoint {
    double t, p50, p90, min, max;
    uint32_t received, lost;
  };
  std::vector<SeriesPoint> series;  // only for the pair the query names
};

struct NodeSummary {
  std::string name, group, state;  // state "fresh" or "stale"; "unseen" for probe targets only
  double age_seconds = -1;         // -1: never observed
};

struct TrafficSummary {
  std::string src, dst, role, observer;
  double bytes_per_second = 0;
};

struct MeshView {
  double now = 0;
  double window_seconds = 0;
  MeshSettings settings;
  std::vector<NodeSummary> nodes;
  std::vector<std::string> methods;
  std::vector<LinkSummary> links;
  std::vector<TrafficSummary> traffic;
  uint64_t refused_links = 0, refused_traffic = 0, refused_nodes = 0;
  size_t bytes = 0;
};

// A bounded history of the mesh: per node, its probe links and its overlay traffic, fed by
// Observe() from whatever brings expositions in (pushes, scrapes) and read by Query().
// Thread-safe.
class MeshHistory {
 public:
  explicit MeshHistory(MeshSettings settings = {});
  ~MeshHistory();

  // Takes one node's reading at `wall_seconds`. Readings closer than the resolution to the last
  // stored point update only the node's age.
  void Observe(const std::string& node, const NodeReading& reading, double wall_seconds);
  void Observe(const std::string& node, const text_format::Exposition& exposition,
               double wall_seconds) {
    Observe(node, ReadExposition(node, exposition), wall_seconds);
  }

  MeshView Query(const MeshQuery& query, double wall_seconds) const {
    MeshView view;
    Query(query, wall_seconds, &view);
    return view;
  }
  // The same into `view`, whose arrays keep their capacity: a caller answering often reuses one.
  void Query(const MeshQuery& query, double wall_seconds, MeshView* view) const;
  double retention_seconds() const { return settings_.retention_seconds; }

  // Bytes the history holds or has reserved (rings are allocated whole), never above max_bytes.
  size_t bytes() const;

  // Fixed costs used for the bound, exposed so the README and tests can state them.
  static size_t NodeCost(const std::string& name);
  size_t LinkCost(const std::string& dst, const std::string& method, size_t buckets) const;
  size_t TrafficCost(const std::string& src, const std::string& dst, const std::string& role) const;

 private:
  // A link's figures over one window, kept for the next query. They change only when a point
  // enters (an append) or leaves the window. The summary records the append count it saw and
  // the times around the window's oldest point, so checking it reads no point: a page polling
  // every few seconds sums each link once per resolution, and a cached answer costs no walk of
  // the ring (the ring is the one part of a link that is not in the node's contiguous array).
  struct WindowSummary {
    uint32_t window_ds = 0;  // 0: empty
    uint32_t appends = 0;    // the link's append count when summed
    int64_t before_ds = -1;  // newest point at or before the window's start; -1: none
    uint32_t first_ds = std::numeric_limits<uint32_t>::max();  // oldest point inside; max: none
    float p50 = NAN, p90 = NAN, min = NAN, max = NAN;
    uint64_t received = 0, lost = 0, forward_lost = 0, return_lost = 0;
  };
  struct Link {
    std::string dst, method;
    std::vector<LinkPoint> ring;  // capacity reserved once; `head` is the next slot when full
    size_t head = 0;
    uint32_t appends = 0;
    // Two windows, so two pages on different windows do not evict each other.
    mutable std::array<WindowSummary, 2> summaries;
    mutable uint8_t next_summary = 0;
    std::vector<std::pair<double, double>> last_buckets;
    double last_received = 0, last_lost = 0, last_forward = 0, last_return = 0;
    bool has_direction = false;
    double last_seen = 0;
    size_t cost = 0;  // its heap blocks; its slot in the node's array is counted with the array
  };
  struct Traffic {
    std::vector<TrafficPoint> ring;
    size_t head = 0;
    double last_bytes = 0;
    double last_time = 0;
    double last_seen = 0;
    size_t cost = 0;
  };
  struct Node {
    double last_seen = 0;
    double last_stored = -1;  // -1: no point stored yet
    // Ordered by (dst, method) and contiguous: a query walks every link of every node, and an
    // array walks at memory speed where a tree's nodes each cost a cache miss.
    std::vector<Link> links;
    std::map<std::string, double> path_mtu;
    std::map<std::tuple<std::string, std::string, std::string>, Traffic> traffic;
    size_t cost = 0;
  };

  // The order of a node's links.
  static auto LinkKey(const Link& l) { return std::tie(l.dst, l.method); }
  static bool LinkBefore(const Link& l, const std::pair<std::string, std::string>& key);
  using LinkReadingEntry = decltype(NodeReading::links)::value_type;  // (dst, method) and reading
  // Admits the links of `reading` the node has not seen, while the bound allows.
  void AdmitLinks(Node& n, const NodeReading& reading);
  // The summary of the link's points newer than from_ds, from its cache when still valid.
  const WindowSummary& Summarize(const Link& link, uint32_t from_ds, uint32_t window_ds) const;
  template <typename Point>
  static void Push(std::vector<Point>& ring, size_t& head, size_t capacity, const Point& p);
  void Prune(double now);
  uint32_t Deciseconds(double wall_seconds) const;
  double Seconds(uint32_t ds) const { return epoch_ + ds / 10.0; }

  const MeshSettings settings_;
  const size_t capacity_;
  std::unique_ptr<re2::RE2> group_re_;
  mutable std::mutex mutex_;
  mutable std::vector<uint64_t> scratch_p50_, scratch_p90_;  // for Summarize
  double epoch_ = -1;
  std::map<std::string, Node> nodes_;
  size_t bytes_ = 0;
  uint64_t refused_links_ = 0, refused_traffic_ = 0, refused_nodes_ = 0;
};

// The weighted quantile q of points packed as (float bits << 32 | weight): the smallest value
// whose cumulative weight, in value order, reaches q times the total; NaN when the total is 0.
// Reorders `packed`. Summing a window is mostly this, twice per link, so it selects in linear
// time instead of sorting.
float WeightedQuantile(std::vector<uint64_t>& packed, double q);

// RTT quantile q of a histogram given by (le, count in that bucket alone), interpolated within
// the bucket as Prometheus' histogram_quantile does; NaN when the histogram is empty.
double BucketQuantile(const std::vector<std::pair<double, double>>& buckets, double q);

}  // namespace meshflow::mesh
