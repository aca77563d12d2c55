#include "collectors/probe/path_mtu.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace meshflow::probe {
namespace {

// A path that answers echoes up to `mtu` bytes, refuses locally above `local`, and loses the
// first `lose` echoes whatever their size.
struct FakePath {
  explicit FakePath(int mtu_bytes, int local_bytes = 65535, int lost = 0)
      : mtu(mtu_bytes), local(local_bytes), lose(lost) {}
  int mtu;
  int local;
  int lose;
  std::vector<int> sizes;
  EchoVerdict operator()(int size) {
    sizes.push_back(size);
    if (size > local) return EchoVerdict::kTooBig;
    if (lose > 0) {
      --lose;
      return EchoVerdict::kLost;
    }
    return size <= mtu ? EchoVerdict::kAnswered : EchoVerdict::kLost;
  }
};

int Search(FakePath& path, int floor, int ceiling, int tries = 3) {
  return SearchPathMtu(floor, ceiling, tries, [&](int size) { return path(size); });
}

TEST(PathMtuSearch, HealthyPathCostsOneEcho) {
  FakePath path{1420};
  EXPECT_EQ(Search(path, 576, 1420), 1420);
  EXPECT_EQ(path.sizes, std::vector<int>{1420});
}

TEST(PathMtuSearch, FindsTheExactSizeOfABlackHole) {
  // WireGuard over an underlay that carries 1400 bytes: 1340 bytes of padded plaintext.
  for (int mtu : {576, 577, 1000, 1328, 1419}) {
    FakePath path{mtu};
    EXPECT_EQ(Search(path, 576, 1420), mtu) << mtu;
  }
}

TEST(PathMtuSearch, LossDoesNotPassForASmallMtu) {
  FakePath path{1420, 65535, 2};  // the first two echoes (of the ceiling) are lost
  EXPECT_EQ(Search(path, 576, 1420), 1420);
  EXPECT_EQ(path.sizes.size(), 3u);
}

TEST(PathMtuSearch, UnreachablePeerIsNoFigure) {
  FakePath path{0};
  EXPECT_EQ(Search(path, 576, 1420), 0);
}

TEST(PathMtuSearch, LocalRefusalFailsAtOnce) {
  FakePath path{9000, 1300};
  EXPECT_EQ(Search(path, 576, 1500), 1300);
  // One echo per size refused, no retries.
  std::vector<int> refused;
  for (int s : path.sizes)
    if (s > 1300) refused.push_back(s);
  std::vector<int> unique = refused;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  EXPECT_FALSE(refused.empty());
  EXPECT_EQ(refused.size(), unique.size());
}

TEST(PathMtuSearch, CeilingBelowFloor) {
  FakePath path{1280};
  EXPECT_EQ(Search(path, 1280, 1000), 1000);
  FakePath dead{0};
  EXPECT_EQ(Search(dead, 1280, 1000), 0);
}

TEST(PathMtuFamilies, LabelsAndUnknownPeers) {
  std::vector<prometheus::MetricFamily> out;
  AppendPathMtuFamilies("a", {{"b", 1328, 1420}, {"c", 0, 1420}}, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "meshflow_probe_path_mtu_bytes");
  ASSERT_EQ(out[0].metric.size(), 1u);  // c has no figure yet
  EXPECT_EQ(out[0].metric[0].label[0].value, "a");
  EXPECT_EQ(out[0].metric[0].label[1].value, "b");
  EXPECT_EQ(out[0].metric[0].gauge.value, 1328);
  EXPECT_EQ(out[1].name, "meshflow_probe_route_mtu_bytes");
  EXPECT_EQ(out[1].metric.size(), 2u);
}

}  // namespace
}  // namespace meshflow::probe
