#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "collectors/flow/classifier.h"

namespace meshflow::flow {

// A counter with one writer (the capture thread) and any number of readers (scrapes). On the
// writer's side an add is a plain load and store, no locked instruction; readers see whole
// 64-bit values because the accesses are atomic.
class Counter {
 public:
  void Add(uint64_t n) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// (interface, role, source node, destination node) packed into one word for the index.
struct SeriesKey {
  static constexpr NodeId kOverflowNode = 0xffff;
  static uint64_t Pack(uint32_t interface_id, RoleId role, NodeId src, NodeId dst) {
    return static_cast<uint64_t>(interface_id & 0xffff) << 48 | static_cast<uint64_t>(role) << 32 |
           static_cast<uint64_t>(src) << 16 | dst;
  }
  static uint64_t Overflow(uint32_t interface_id) {
    return Pack(interface_id, Classifier::kOther, kOverflowNode, kOverflowNode);
  }
};

struct SeriesLabels {
  std::string iface;
  std::string role;
  std::string src_node;
  std::string dst_node;
};

struct SeriesCounters {
  Counter bytes;
  Counter packets;
  Counter connections;

  // One IP packet; a connection attempt is a TCP SYN without ACK, whose sender is the client.
  void Count(uint32_t ip_bytes, bool connection_attempt) {
    bytes.Add(ip_bytes);
    packets.Add(1);
    if (connection_attempt) connections.Add(1);
  }
};

// The flow series: bounded by max_series, past which new keys fold into one overflow series per
// interface. Single writer, concurrent readers: a series is fully built before the count that
// makes it visible is published (release), and never moves or changes labels afterwards.
class FlowTable {
 public:
  // flows.max_series accepts up to 1,000,000; one overflow series per interface comes on top.
  static constexpr size_t kMaxInterfaces = 1024;
  static constexpr size_t kCapacity = 1'000'000 + kMaxInterfaces;
  static constexpr uint64_t kEmptyKey = ~uint64_t{0};  // interface ids stay below 0xffff

  explicit FlowTable(size_t max_series);
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // Writer side. Lowering the bound keeps existing series (counters survive reconfiguration).
  void SetMaxSeries(size_t max_series);

  // Writer side: the counters of `key`, creating the series with make_labels() if there is
  // room, else the interface's overflow series (make_overflow_labels()). `folded` says which:
  // the same key may be given its own series later, if the bound is raised, so only a
  // series of its own stays the key's for as long as the ids behind keys do (until Reindex).
  template <typename MakeLabels, typename MakeOverflowLabels>
  SeriesCounters& Get(uint64_t key, MakeLabels&& make_labels,
                      MakeOverflowLabels&& make_overflow_labels, bool& folded) {
    folded = false;
    if (key == last_key_) return *last_;
    uint32_t slot = Find(key);
    if (slot == kNoSlot) {
      if (regular_series_ < max_series_) {
        slot = Insert(key, make_labels());
        ++regular_series_;
      } else {
        overflowed_.Add(1);
        const uint64_t overflow_key = SeriesKey::Overflow(static_cast<uint32_t>(key >> 48));
        slot = Find(overflow_key);
        if (slot == kNoSlot) slot = Insert(overflow_key, make_overflow_labels());
        folded = true;
        // Not cached as last_key_: every packet of an unknown key must be counted as folded.
        return At(slot).counters;
      }
    }
    last_key_ = key;
    last_ = &At(slot).counters;
    return *last_;
  }

  // Writer side: rebuilds the index after the ids behind keys changed (new roles or nodes).
  // new_key(interface_id, labels) gives an existing series its key under the new ids, or
  // kEmptyKey when its role or node is gone: such series are still exported but stop growing.
  template <typename NewKey>
  void Reindex(NewKey&& new_key) {
    std::fill(index_keys_.begin(), index_keys_.end(), kEmptyKey);
    last_key_ = kEmptyKey;
    last_ = nullptr;
    const size_t n = size_.load(std::memory_order_relaxed);
    for (size_t slot = 0; slot < n; ++slot) {
      const Entry& e = At(static_cast<uint32_t>(slot));
      const uint64_t key = new_key(e.interface_id, e.labels);
      if (key == kEmptyKey || Find(key) != kNoSlot) continue;
      IndexInsert(key, static_cast<uint32_t>(slot));
    }
  }

  // Reader side, safe beside the writer.
  template <typename Visit>
  void ForEach(Visit&& visit) const {
    const size_t n = size_.load(std::memory_order_acquire);
    for (size_t i = 0; i < n; ++i) {
      const Entry& e = At(static_cast<uint32_t>(i));
      visit(e.labels, e.counters);
    }
  }
  size_t size() const { return size_.load(std::memory_order_acquire); }
  // Packets that went to an overflow series because the table was full.
  uint64_t overflowed_packets() const { return overflowed_.value(); }

 private:
  static constexpr uint32_t kNoSlot = 0xffffffff;
  static constexpr size_t kChunkSize = 1024;
  static constexpr size_t kChunks = (kCapacity + kChunkSize - 1) / kChunkSize;

  struct Entry {
    SeriesCounters counters;
    SeriesLabels labels;
    uint32_t interface_id = 0;
  };

  Entry& At(uint32_t slot) { return chunks_[slot / kChunkSize][slot % kChunkSize]; }
  const Entry& At(uint32_t slot) const { return chunks_[slot / kChunkSize][slot % kChunkSize]; }
  // splitmix64's finalizer: every key bit reaches the low bits the index mask keeps.
  static uint64_t Hash(uint64_t key) {
    key = (key ^ (key >> 30)) * 0xbf58476d1ce4e5b9ull;
    key = (key ^ (key >> 27)) * 0x94d049bb133111ebull;
    return key ^ (key >> 31);
  }
  uint32_t Find(uint64_t key) const;
  uint32_t Insert(uint64_t key, SeriesLabels labels);
  void IndexInsert(uint64_t key, uint32_t slot);
  void Rehash(size_t buckets);

  // Writer-only state.
  size_t max_series_;
  size_t regular_series_ = 0;
  uint64_t last_key_ = kEmptyKey;
  SeriesCounters* last_ = nullptr;
  std::vector<uint64_t> index_keys_;  // open addressing, load factor at most 1/2
  std::vector<uint32_t> index_slots_;
  size_t index_mask_ = 0;

  // Shared with readers.
  std::array<std::unique_ptr<Entry[]>, kChunks> chunks_;
  std::atomic<size_t> size_{0};
  Counter overflowed_;
};

// Later IPv4/IPv6 fragments carry no ports: they take the role the first fragment got. Keyed by
// (src, dst, id, protocol); a fixed set-associative table with expiry, so a fragment flood
// evicts entries (counted) instead of growing memory.
class FragmentTable {
 public:
  static constexpr size_t kSets = 256;
  static constexpr size_t kWays = 4;
  static constexpr int64_t kLifetimeNs = 30'000'000'000;  // Linux ipfrag_time

  // First fragment (offset 0): remember its role.
  void Remember(const PacketInfo& packet, RoleId role, int64_t now_ns);
  // A later fragment: the role of its first fragment, or false if unknown or expired.
  bool Lookup(const PacketInfo& packet, int64_t now_ns, RoleId& role) const;
  void Clear();
  uint64_t evictions() const { return evictions_.value(); }

 private:
  struct Slot {
    IpAddress src;
    IpAddress dst;
    uint32_t id = 0;
    uint8_t protocol = 0;
    RoleId role = 0;
    int64_t expires_ns = 0;  // 0: empty
  };
  static size_t SetOf(const PacketInfo& packet);
  static bool Matches(const Slot& s, const PacketInfo& p) {
    return s.expires_ns != 0 && s.id == p.fragment_id && s.protocol == p.l4_protocol &&
           s.src == p.src && s.dst == p.dst;
  }

  std::array<std::array<Slot, kWays>, kSets> sets_{};
  Counter evictions_;
};

}  // namespace meshflow::flow
