// The bounded LRU connection table against a plain map under random churn, so backward-shift
// deletion and the recency list stay consistent.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <unordered_map>

#include "collectors/flow/tcp/connection_table.h"

namespace meshflow::flow::tcp {
namespace {

ConnectionKey Key(uint32_t n) {
  Direction dir = 0;
  return MakeKey(IpAddress::FromV4(0x0a000000 + n / 60000), static_cast<uint16_t>(1024 + n % 60000),
                 IpAddress::FromV4(0x64400001), 5432, n % 3, dir);
}

TEST(ConnectionTable, KeyIsTheSameForBothDirections) {
  Direction forward = 2, backward = 2;
  const IpAddress a = IpAddress::FromV4(0x64400002), b = IpAddress::FromV4(0x64400001);
  const ConnectionKey k1 = MakeKey(a, 40000, b, 5432, 1, forward);
  const ConnectionKey k2 = MakeKey(b, 5432, a, 40000, 1, backward);
  EXPECT_EQ(k1, k2);
  EXPECT_NE(forward, backward);
  // Same addresses, the ports decide the order.
  const ConnectionKey k3 = MakeKey(a, 2, a, 1, 0, forward);
  const ConnectionKey k4 = MakeKey(a, 1, a, 2, 0, backward);
  EXPECT_EQ(k3, k4);
  EXPECT_NE(forward, backward);
}

TEST(ConnectionTable, MatchesAMapUnderRandomChurn) {
  ConnectionTable<uint32_t> table(64);
  std::map<uint32_t, std::pair<uint32_t, int64_t>> model;  // key -> (value, last seen)
  std::mt19937 rng(7);
  int64_t now = 0;
  for (int step = 0; step < 200000; ++step) {
    ++now;
    const uint32_t n = rng() % 300;
    const ConnectionKey key = Key(n);
    auto* e = table.Find(key, now);
    const auto it = model.find(n);
    ASSERT_EQ(e != nullptr, it != model.end()) << "step " << step;
    if (e != nullptr) {
      ASSERT_EQ(e->state, it->second.first);
      it->second.second = now;
      if (rng() % 4 == 0) {
        table.Remove(*e);
        model.erase(it);
      }
      continue;
    }
    bool evicted = false;
    auto& inserted = table.Insert(key, now, evicted);
    inserted.state = n * 7;
    if (model.size() == 64) {
      ASSERT_TRUE(evicted);
      auto oldest = model.begin();
      for (auto m = model.begin(); m != model.end(); ++m) {
        if (m->second.second < oldest->second.second) oldest = m;
      }
      model.erase(oldest);
    } else {
      ASSERT_FALSE(evicted);
    }
    model[n] = {n * 7, now};
    ASSERT_EQ(table.size(), model.size());
    if (step % 1000 == 0) {
      const size_t expired = table.ExpireBefore(now - 50);
      size_t want = 0;
      for (auto m = model.begin(); m != model.end();) {
        if (m->second.second < now - 50) {
          m = model.erase(m);
          ++want;
        } else {
          ++m;
        }
      }
      ASSERT_EQ(expired, want);
    }
  }
}

TEST(ConnectionTable, KeysWithTheSameIndexHashStayApart) {
  // Birthday search for two keys whose 32-bit index hashes collide, so lookups must go past a
  // candidate whose hash matches but whose fingerprint does not.
  ConnectionTable<uint32_t> table(16);
  std::unordered_map<uint32_t, uint32_t> seen;
  uint32_t first = 0, second = 0;
  for (uint32_t n = 0; n < 2'000'000 && second == 0; ++n) {
    const uint32_t hash = static_cast<uint32_t>(table.Locate(Key(n)).fingerprint[0] >> 32);
    const auto [it, inserted] = seen.emplace(hash, n);
    if (!inserted) first = it->second, second = n;
  }
  ASSERT_NE(second, 0u) << "no collision found";
  bool evicted = false;
  table.Insert(Key(first), 0, evicted).state = 1;
  EXPECT_EQ(table.Find(Key(second), 1), nullptr);
  table.Insert(Key(second), 2, evicted).state = 2;
  ASSERT_NE(table.Find(Key(first), 3), nullptr);
  ASSERT_NE(table.Find(Key(second), 4), nullptr);
  EXPECT_EQ(table.Find(Key(first), 5)->state, 1u);
  EXPECT_EQ(table.Find(Key(second), 6)->state, 2u);
  table.Remove(*table.Find(Key(first), 7));
  EXPECT_EQ(table.Find(Key(first), 8), nullptr);
  ASSERT_NE(table.Find(Key(second), 9), nullptr);
  EXPECT_EQ(table.Find(Key(second), 10)->state, 2u);
}

TEST(ConnectionTable, ResizeDropsEverything) {
  ConnectionTable<int> table(4);
  bool evicted = false;
  table.Insert(Key(1), 0, evicted);
  table.Resize(8);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.capacity(), 8u);
  EXPECT_EQ(table.Find(Key(1), 1), nullptr);
}

// A Location is a hint once the table changes: Revalidate finds the key where it is now, or
// finds it gone even when another key took its old entry.
TEST(ConnectionTable, RevalidateFollowsInsertsRemovalsAndIndexGrowth) {
  using Table = ConnectionTable<uint32_t>;
  Table table(100);
  bool evicted = false;
  table.Insert(Key(1), 1, evicted).state = 1;
  Table::Location gone = table.Locate(Key(1));
  ASSERT_NE(gone.slot, Table::kNone);
  const uint64_t generation = table.generation();
  table.Remove(*table.Find(Key(1), 2));
  EXPECT_NE(table.generation(), generation);
  table.Insert(Key(2), 3, evicted).state = 2;  // takes the freed entry
  table.Revalidate(gone);
  EXPECT_EQ(table.Use(gone, 4), nullptr);

  Table::Location moved = table.Locate(Key(2));
  Table::Location absent = table.Locate(Key(3));
  EXPECT_EQ(absent.slot, Table::kNone);
  for (uint32_t n = 3; n < 80; ++n) table.Insert(Key(n), 5, evicted).state = n;  // regrows
  table.Revalidate(moved);
  table.Revalidate(absent);
  ASSERT_NE(table.Use(moved, 6), nullptr);
  EXPECT_EQ(table.Use(moved, 6)->state, 2u);
  ASSERT_NE(table.Use(absent, 7), nullptr);
  EXPECT_EQ(table.Use(absent, 7)->state, 3u);
}

}  // namespace
}  // namespace meshflow::flow::tcp
