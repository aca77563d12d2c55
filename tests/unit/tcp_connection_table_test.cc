// The bounded LRU connection table against a plain map under random churn, so backward-shift
// deletion and the recency list stay consistent.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
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

// IPv4 endpoints that differ in one bit of the address, the port or the interface id never
// share a hash, so their connections never share an entry.
TEST(ConnectionTable, Ipv4EndpointsNeverShareAHash) {
  std::unordered_map<uint64_t, std::string> seen;
  const auto add = [&](uint32_t address, uint16_t port, uint32_t interface_id) {
    const uint64_t hash = EndpointHash(IpAddress::FromV4(address), port, interface_id);
    const std::string what =
        std::to_string(address) + ":" + std::to_string(port) + "@" + std::to_string(interface_id);
    const auto [it, inserted] = seen.emplace(hash, what);
    EXPECT_TRUE(inserted) << what << " has the hash of " << it->second;
  };
  for (uint32_t bit = 0; bit < 32; ++bit) add(0x64400001u ^ (1u << bit), 5432, 1);
  for (uint32_t bit = 0; bit < 16; ++bit)
    add(0x64400001u, static_cast<uint16_t>(5432 ^ (1u << bit)), 1);
  for (uint32_t bit = 0; bit < 10; ++bit) add(0x64400001u, 5432, 1u ^ (1u << bit));
  add(0x64400001u, 5432, 1);
  // And a dense block: every port of a few addresses on two interfaces.
  for (uint32_t address = 0x0a000000; address < 0x0a000004; ++address) {
    for (uint32_t port = 0; port < 65536; port += 7) {
      for (uint32_t interface_id = 0; interface_id < 2; ++interface_id) {
        add(address, static_cast<uint16_t>(port), interface_id);
      }
    }
  }
}

// Clients that differ only in the last octet of their address, all on one port to one server,
// spread over the index instead of piling into one probe chain.
TEST(ConnectionTable, AddressesThatDifferInTheirLastOctetSpreadOverTheIndex) {
  std::set<uint32_t> buckets;
  for (uint32_t host = 0; host < 256; ++host) {
    Direction dir = 0;
    const ConnectionKey key = MakeKey(IpAddress::FromV4(0x0a2a0100 + host), 40000,
                                      IpAddress::FromV4(0x64400001), 6443, 0, dir);
    buckets.insert(ConnectionTable<int>::At(key).hash & 1023);
  }
  // 256 random hashes fill about 226 of 1024 buckets.
  EXPECT_GT(buckets.size(), 200u);
}

// An IPv6 endpoint is hashed from all of its address: one that differs only in its first half
// gets another hash.
TEST(ConnectionTable, Ipv6EndpointsUseTheWholeAddress) {
  const IpAddress a = *IpAddress::Parse("fd7a:115c:a1e0::1");
  const IpAddress b = *IpAddress::Parse("fd7a:115c:a1e1::1");
  EXPECT_NE(EndpointHash(a, 443, 0), EndpointHash(b, 443, 0));
  EXPECT_NE(EndpointHash(a, 443, 0), EndpointHash(a, 443, 1));
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
  // candidate whose hash matches but whose key does not.
  ConnectionTable<uint32_t> table(16);
  std::unordered_map<uint32_t, uint32_t> seen;
  uint32_t first = 0, second = 0;
  for (uint32_t n = 0; n < 2'000'000 && second == 0; ++n) {
    const uint32_t hash = table.Locate(Key(n)).hash;
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

// A Location is a hint once the table changes: Use finds the key where it is now, or finds it
// gone even when another key took its old entry.
TEST(ConnectionTable, UseFollowsInsertsRemovalsAndIndexGrowth) {
  using Table = ConnectionTable<uint32_t>;
  Table table(100);
  bool evicted = false;
  table.Insert(Key(1), 1, evicted).state = 1;
  const Table::Location gone = table.Locate(Key(1));
  ASSERT_NE(gone.slot, Table::kNone);
  table.Remove(*table.Find(Key(1), 2));
  table.Insert(Key(2), 3, evicted).state = 2;  // takes the freed entry
  EXPECT_EQ(table.Locate(Key(2)).slot, gone.slot);
  EXPECT_EQ(table.Use(gone, 4), nullptr);

  const Table::Location moved = table.Locate(Key(2));
  const Table::Location absent = table.Locate(Key(3));
  EXPECT_EQ(absent.slot, Table::kNone);
  for (uint32_t n = 3; n < 80; ++n) table.Insert(Key(n), 5, evicted).state = n;  // regrows
  ASSERT_NE(table.Use(moved, 6), nullptr);
  EXPECT_EQ(table.Use(moved, 6)->state, 2u);
  ASSERT_NE(table.Use(absent, 7), nullptr);
  EXPECT_EQ(table.Use(absent, 7)->state, 3u);
  // Never probed at all.
  ASSERT_NE(table.Use(Table::At(Key(4)), 8), nullptr);
  EXPECT_EQ(table.Use(Table::At(Key(4)), 8)->state, 4u);
}

}  // namespace
}  // namespace meshflow::flow::tcp
