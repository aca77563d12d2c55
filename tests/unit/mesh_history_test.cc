#include "common/mesh/mesh_history.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <memory>
#include <random>
#include <string>

#include "common/core/histogram.h"
#include "common/core/metric_builder.h"
#include "common/mesh/mesh_reading.h"
#include "common/text_format/text_format.h"
#include "common/text_format/writer.h"

#if defined(__SANITIZE_ADDRESS__)
#define MESH_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MESH_TEST_ASAN 1
#endif
#endif

namespace meshflow::mesh {
namespace {

// A link's cumulative counters after `n` probes at `rtt` seconds.
struct FakeLink {
  LatencyHistogram histogram;
  double lost = 0, forward = 0, back = 0;

  void Add(int n, double rtt) {
    for (int i = 0; i < n; ++i) histogram.Observe(rtt);
  }
  LinkReading Reading(bool udp = true) const {
    LinkReading r;
    double cum = 0;
    const auto bounds = histogram.bounds();
    for (size_t i = 0; i < histogram.counts().size(); ++i) {
      cum += static_cast<double>(histogram.counts()[i]);
      r.buckets.emplace_back(i < bounds.size() ? bounds[i] : INFINITY, cum);
    }
    r.received = static_cast<double>(histogram.count());
    r.lost = lost;
    r.forward_lost = forward;
    r.return_lost = back;
    r.has_direction = udp;
    return r;
  }
};

const LinkSummary* FindLink(const MeshView& v, const std::string& src, const std::string& dst,
                            const std::string& method) {
  for (const auto& l : v.links)
    if (l.src == src && l.dst == dst && l.method == method) return &l;
  return nullptr;
}

TEST(MeshBucketQuantile, InterpolatesWithinTheBucketAsHistogramQuantileDoes) {
  // 10 samples in (0.01, 0.02]: the median lies halfway through that bucket.
  std::vector<std::pair<double, double>> b{{0.01, 0}, {0.02, 10}, {INFINITY, 0}};
  EXPECT_DOUBLE_EQ(BucketQuantile(b, 0.5), 0.015);
  EXPECT_DOUBLE_EQ(BucketQuantile(b, 0), 0.01);
  EXPECT_DOUBLE_EQ(BucketQuantile(b, 1), 0.02);
  b = {{0.01, 0}, {0.02, 0}, {INFINITY, 3}};
  EXPECT_DOUBLE_EQ(BucketQuantile(b, 0.5), 0.02);  // +Inf: the highest finite bound
  b = {{0.01, 0}, {INFINITY, 0}};
  EXPECT_TRUE(std::isnan(BucketQuantile(b, 0.5)));
}

TEST(MeshWeightedQuantile, SelectsWhatSortingAndCountingWouldPick) {
  // Reference: sort by value, walk until the cumulative weight reaches q of the total.
  auto reference = [](std::vector<std::pair<float, uint16_t>> points, double q) -> float {
    double total = 0;
    for (const auto& [v, w] : points) total += w;
    if (total == 0) return NAN;
    std::sort(points.begin(), points.end());
    double seen = 0;
    for (const auto& [v, w] : points) {
      seen += w;
      if (seen >= q * total) return v;
    }
    return points.back().first;
  };
  std::mt19937 rng(7);
  for (int round = 0; round < 3000; ++round) {
    const size_t n = rng() % 120;
    // Few distinct values and weights, so ties and equal weights are common, as in real windows.
    const int distinct = 1 + static_cast<int>(rng() % 40);
    std::vector<std::pair<float, uint16_t>> points;
    std::vector<uint64_t> packed;
    for (size_t i = 0; i < n; ++i) {
      const float v = 0.0005f * static_cast<float>(rng() % distinct);
      const auto w = static_cast<uint16_t>(round % 3 == 0 ? 10 : 1 + rng() % 30);
      points.emplace_back(v, w);
      packed.push_back(uint64_t{std::bit_cast<uint32_t>(v)} << 32 | w);
    }
    for (const double q : {0.0, 0.1, 0.5, 0.9, 0.99, 1.0}) {
      auto copy = packed;
      const float got = WeightedQuantile(copy, q);
      const float want = reference(points, q);
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(got)) << round << " q=" << q;
      } else {
        EXPECT_EQ(got, want) << round << " n=" << n << " q=" << q;
      }
    }
  }
}

TEST(MeshHistory, RttAndLossComeFromDeltasBetweenObservations) {
  MeshHistory h;
  FakeLink link;
  link.Add(100, 0.2);  // before the first observation: must not count
  NodeReading r;
  r.links[{"b", "udp"}] = link.Reading();
  h.Observe("a", r, 1000);
  link.Add(9, 0.048);
  link.lost = 1;
  link.forward = 1;
  r.links[{"b", "udp"}] = link.Reading();
  r.path_mtu_bytes["b"] = 1280;
  h.Observe("a", r, 1010);

  const MeshView v = h.Query({}, 1012);
  const auto* l = FindLink(v, "a", "b", "udp");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->state, "fresh");
  EXPECT_EQ(l->received, 9u);
  EXPECT_EQ(l->lost, 1u);
  EXPECT_EQ(l->forward_lost, 1u);
  EXPECT_EQ(l->return_lost, 0u);
  EXPECT_GT(l->p50, 0.04);
  EXPECT_LT(l->p50, 0.06);  // within the √2 bucket holding 48 ms, not 200 ms
  EXPECT_LE(l->min, l->p50);
  EXPECT_GE(l->max, l->p90);
  EXPECT_EQ(l->path_mtu_bytes, 1280);
  EXPECT_NEAR(l->age_seconds, 2, 1e-9);
  ASSERT_EQ(v.nodes.size(), 2u);  // "b" appears as a probe target never observed itself
  EXPECT_EQ(v.nodes[1].name, "b");
  EXPECT_EQ(v.nodes[1].state, "unseen");
}

TEST(MeshHistory, NodeGoesStaleAndAResetCounterStartsAFreshBaseline) {
  MeshSettings s;
  s.stale_after_seconds = 30;
  MeshHistory h(s);
  FakeLink link;
  NodeReading r;
  for (int i = 0; i < 3; ++i) {
    link.Add(10, 0.001);
    r.links[{"b", "icmp"}] = link.Reading(false);
    h.Observe("a", r, 1000 + 10 * i);
  }
  EXPECT_EQ(FindLink(h.Query({}, 1025), "a", "b", "icmp")->received, 20u);
  EXPECT_EQ(FindLink(h.Query({}, 1061), "a", "b", "icmp")->state, "stale");

  FakeLink restarted;  // the exporter restarted: counters start again from zero
  restarted.Add(5, 0.001);
  r.links[{"b", "icmp"}] = restarted.Reading(false);
  h.Observe("a", r, 1070);
  const MeshView v = h.Query({}, 1071);
  const auto* l = FindLink(v, "a", "b", "icmp");
  EXPECT_EQ(l->received, 20u);  // no negative or bogus point from the reset
  EXPECT_EQ(l->state, "fresh");
}

TEST(MeshHistory, ReadingsFasterThanTheResolutionMergeIntoOnePoint) {
  MeshHistory h;  // 10 s resolution
  FakeLink link;
  NodeReading r;
  for (int i = 0; i <= 20; ++i) {  // every second for 20 s
    link.Add(1, 0.01);
    r.links[{"b", "udp"}] = link.Reading();
    h.Observe("a", r, 1000 + i);
  }
  MeshQuery q;
  q.series_src = "a";
  q.series_dst = "b";
  const MeshView v = h.Query(q, 1020);
  const auto* l = FindLink(v, "a", "b", "udp");
  ASSERT_NE(l, nullptr);
  // Points at 1008 and 1016: at least 0.8 x the resolution apart, so a pusher on the resolution's
  // own period never skips a beat on jitter; the last 4 s wait for the next point.
  ASSERT_EQ(l->series.size(), 2u);
  EXPECT_EQ(l->series[0].t, 1008);
  EXPECT_EQ(l->received, 16u);
}

TEST(MeshHistory, WindowSelectsPointsAndTheKeptHistoryIsBounded) {
  MeshSettings s;
  s.retention_seconds = 100;
  s.resolution_seconds = 10;
  MeshHistory h(s);
  FakeLink link;
  NodeReading r;
  for (int i = 0; i <= 50; ++i) {
    link.Add(1, 0.01);
    r.links[{"b", "udp"}] = link.Reading();
    h.Observe("a", r, 1000 + 10 * i);
  }
  MeshQuery q;
  q.window_seconds = 30;
  EXPECT_EQ(FindLink(h.Query(q, 1500), "a", "b", "udp")->received, 3u);
  q.window_seconds = 1e9;  // never more than the history keeps
  EXPECT_EQ(FindLink(h.Query(q, 1500), "a", "b", "udp")->received, 10u);
}

TEST(MeshHistory, CachedWindowSummariesMatchAFreshComputation) {
  // One history answers many queries (its per-link summaries cached across them, appends and
  // points leaving the window in between); each answer must equal that of a history fed the
  // same and asked once.
  MeshSettings s;
  s.retention_seconds = 120;
  s.resolution_seconds = 10;
  std::vector<NodeReading> readings;
  FakeLink link;
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> rtt(0.001, 0.2);
  for (int i = 0; i < 40; ++i) {
    link.Add(1 + i % 4, rtt(rng));
    link.lost += i % 3 == 0 ? 1 : 0;
    NodeReading r;
    r.links[{"b", "udp"}] = link.Reading();
    readings.push_back(r);
  }
  MeshHistory warm(s);
  int fed = 0;
  for (double now = 1000; now < 1400; now += 3.7) {
    while (fed < static_cast<int>(readings.size()) && 1000 + 10 * fed <= now) {
      warm.Observe("a", readings[fed], 1000 + 10 * fed);
      ++fed;
    }
    for (const double window : {30.0, 60.0, 120.0}) {
      MeshQuery q;
      q.window_seconds = window;
      MeshHistory cold(s);
      for (int i = 0; i < fed; ++i) cold.Observe("a", readings[i], 1000 + 10 * i);
      const auto warm_view = warm.Query(q, now);
      const auto* w = FindLink(warm_view, "a", "b", "udp");
      const auto cold_view = cold.Query(q, now);
      const auto* c = FindLink(cold_view, "a", "b", "udp");
      ASSERT_EQ(w == nullptr, c == nullptr) << now;
      if (!w) continue;
      EXPECT_EQ(w->received, c->received) << now << " " << window;
      EXPECT_EQ(w->lost, c->lost) << now << " " << window;
      auto same = [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); };
      EXPECT_TRUE(same(w->p50, c->p50)) << now << " " << window;
      EXPECT_TRUE(same(w->p90, c->p90)) << now << " " << window;
      EXPECT_TRUE(same(w->min, c->min)) << now << " " << window;
      EXPECT_TRUE(same(w->max, c->max)) << now << " " << window;
    }
  }
}

TEST(MeshHistory, ANodeCannotWriteAnotherNodesRow) {
  text_format::Exposition e;
  std::string text =
      "# TYPE meshflow_probe_lost_total counter\n"
      "meshflow_probe_lost_total{src_node=\"c\",dst_node=\"b\",method=\"udp\"} 5\n"
      "# TYPE meshflow_probe_rtt_seconds histogram\n"
      "meshflow_probe_rtt_seconds_bucket{src_node=\"c\",dst_node=\"b\",method=\"udp\",le=\"+Inf\"} "
      "1\n"
      "meshflow_probe_rtt_seconds_count{src_node=\"c\",dst_node=\"b\",method=\"udp\"} 1\n";
  ASSERT_FALSE(text_format::ParseTextFormat(text, {}, &e));
  EXPECT_TRUE(ReadExposition("a", e).links.empty());
  EXPECT_EQ(ReadExposition("c", e).links.size(), 1u);
}

TEST(MeshReading, TextAndFamiliesGiveTheSameReading) {
  LatencyHistogram hist;
  hist.Observe(0.003);
  hist.Observe(0.004);
  std::vector<prometheus::MetricFamily> families;
  FamilyBuilder rtt("meshflow_probe_rtt_seconds", "h", prometheus::MetricType::Histogram);
  rtt.Histogram({{"src_node", "a"}, {"dst_node", "b"}, {"method", "udp"}}, hist);
  rtt.AppendTo(families);
  FamilyBuilder lost("meshflow_probe_lost_total", "h", prometheus::MetricType::Counter);
  lost.Counter({{"src_node", "a"}, {"dst_node", "b"}, {"method", "udp"}}, 2);
  lost.AppendTo(families);
  FamilyBuilder info("meshflow_capture_interface_info", "h", prometheus::MetricType::Gauge);
  info.Gauge({{"iface", "tailscale0"}, {"kind", "overlay"}}, 1);
  info.Gauge({{"iface", "eth0"}, {"kind", "underlay"}}, 1);
  info.AppendTo(families);
  FamilyBuilder bytes("meshflow_flow_bytes_total", "h", prometheus::MetricType::Counter);
  bytes.Counter({{"iface", "tailscale0"}, {"role", "etcd"}, {"src_node", "a"}, {"dst_node", "b"}},
                1000);
  bytes.Counter({{"iface", "eth0"}, {"role", "etcd"}, {"src_node", "a"}, {"dst_node", "b"}}, 7);
  bytes.AppendTo(families);

  const NodeReading from_families = ReadFamilies("a", families);
  text_format::Exposition e;
  ASSERT_FALSE(text_format::ParseTextFormat(SerializeExposition(families), {}, &e));
  const NodeReading from_text = ReadExposition("a", e);
  for (const auto* r : {&from_families, &from_text}) {
    ASSERT_EQ(r->links.size(), 1u);
    const auto& l = r->links.begin()->second;
    EXPECT_EQ(l.received, 2);
    EXPECT_EQ(l.lost, 2);
    EXPECT_EQ(l.buckets.back().second, 2);
    EXPECT_TRUE(std::isinf(l.buckets.back().first));
    ASSERT_EQ(r->overlay_bytes.size(), 1u);  // the underlay interface does not count
    EXPECT_EQ(r->overlay_bytes.begin()->second, 1000);
  }
  EXPECT_EQ(from_families.links.begin()->second.buckets, from_text.links.begin()->second.buckets);
}

TEST(MeshHistory, TrafficRatePrefersTheSourcesOwnCount) {
  MeshHistory h;
  for (int i = 0; i < 3; ++i) {
    NodeReading a, b;
    a.overlay_bytes[{"a", "b", "etcd-peer"}] = 1000.0 * 10 * i;  // 1000 B/s seen by a
    b.overlay_bytes[{"a", "b", "etcd-peer"}] = 990.0 * 10 * i;   // b saw a little less
    h.Observe("a", a, 1000 + 10 * i);
    h.Observe("b", b, 1000 + 10 * i);
  }
  const MeshView v = h.Query({}, 1021);
  ASSERT_EQ(v.traffic.size(), 1u);
  EXPECT_EQ(v.traffic[0].observer, "a");
  EXPECT_DOUBLE_EQ(v.traffic[0].bytes_per_second, 1000);
}

size_t HeapInUse() { return mallinfo2().uordblks; }

// 250 nodes each probing the 249 others by three methods, each also reporting 40 traffic series:
// far more than the default bound holds. The history refuses what does not fit, says so, and
// its accounted and real heap stay under max_bytes.
TEST(MeshHistory, StaysWithinItsBoundUnderA250NodeFlood) {
  MeshSettings s;
  s.max_bytes = size_t{16} << 20;
  auto h = std::make_unique<MeshHistory>(s);
  FakeLink link;
  link.Add(3, 0.02);
  const LinkReading lr = link.Reading();
  const size_t heap_before = HeapInUse();
  for (int round = 0; round < 3; ++round) {
    for (int n = 0; n < 250; ++n) {
      NodeReading r;
      for (int d = 0; d < 250; ++d) {
        if (d == n) continue;
        for (const char* m : {"icmp", "udp", "tcp"}) r.links[{"node-" + std::to_string(d), m}] = lr;
      }
      for (int k = 0; k < 40; ++k) {
        r.overlay_bytes[{"node-" + std::to_string(n), "node-" + std::to_string(k),
                         "role-" + std::to_string(k)}] = 1000.0 * round;
      }
      h->Observe("node-" + std::to_string(n), r, 1000 + 10 * round);
    }
  }
  const MeshView v = h->Query({}, 1021);
  EXPECT_LE(h->bytes(), s.max_bytes);
  EXPECT_GT(v.refused_links, 0u);
  EXPECT_GT(v.links.size(), 1000u);
  const size_t heap_after = HeapInUse();
#ifndef MESH_TEST_ASAN
  // glibc's own count of bytes handed out, chunk headers included: the real bound.
  EXPECT_LE(heap_after - heap_before, s.max_bytes);
#else
  (void)heap_after;
  (void)heap_before;
#endif
  std::printf(
      "per link (3 methods x 249 peers): %zu bytes; per traffic series: %zu bytes; per node: %zu "
      "bytes\n",
      h->LinkCost("node-1", "udp", lr.buckets.size()), h->TrafficCost("node-1", "node-2", "role-1"),
      MeshHistory::NodeCost("node-1"));
  std::printf(
      "flood: accounted %zu bytes, heap grew %zu bytes, bound %zu, links %zu kept %llu "
      "refused\n",
      h->bytes(), heap_after - heap_before, s.max_bytes, v.links.size(),
      static_cast<unsigned long long>(v.refused_links));
}

}  // namespace
}  // namespace meshflow::mesh
