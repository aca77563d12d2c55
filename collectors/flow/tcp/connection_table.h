#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "exporter/core/ip_address.h"

namespace meshflow::flow::tcp {

// One TCP connection as seen on one interface, as 32-bit-aligned words so comparing and hashing
// need no memcmp. The endpoints are ordered so both directions find the same entry.
struct ConnectionKey {
  uint64_t a[2] = {0, 0};  // one endpoint's address bytes
  uint64_t b[2] = {0, 0};  // the other's
  uint16_t a_port = 0;
  uint16_t b_port = 0;
  uint32_t interface_id = 0;

  bool operator==(const ConnectionKey& o) const {
    return ((a[0] ^ o.a[0]) | (a[1] ^ o.a[1]) | (b[0] ^ o.b[0]) | (b[1] ^ o.b[1])) == 0 &&
           a_port == o.a_port && b_port == o.b_port && interface_id == o.interface_id;
  }
};

// 0: the packet goes from endpoint a to endpoint b; 1: from b to a.
using Direction = uint8_t;

// The key of a packet's connection and the direction the packet travels in. Any total order
// of the endpoints serves, so the address words are compared as they lie in memory.
inline ConnectionKey MakeKey(const IpAddress& src, uint16_t src_port, const IpAddress& dst,
                             uint16_t dst_port, uint32_t interface_id, Direction& direction) {
  uint64_t s[2], d[2];
  std::memcpy(s, src.bytes().data(), 16);
  std::memcpy(d, dst.bytes().data(), 16);
  const bool src_first = s[0] != d[0]   ? s[0] < d[0]
                         : s[1] != d[1] ? s[1] < d[1]
                                        : src_port <= dst_port;
  direction = src_first ? 0 : 1;
  return src_first ? ConnectionKey{{s[0], s[1]}, {d[0], d[1]}, src_port, dst_port, interface_id}
                   : ConnectionKey{{d[0], d[1]}, {s[0], s[1]}, dst_port, src_port, interface_id};
}

// A fixed-capacity map from ConnectionKey to State in least-recently-used order: idle entries
// fall off the old end and a new connection in a full table takes the place of the least
// recently seen one. Nothing allocates after the entries are first used, so a SYN flood costs
// evictions, not memory.
//
// Per-packet cost is what matters: the index holds each entry's hash beside its slot, so a probe
// touches the entry only on a likely match, and an entry moves to the recent end of the list at
// most once per `move_granularity_ns` (moving touches two neighbours, typically cache misses).
// So the order is exact to that granularity: eviction and idle expiry may be that much late.
template <typename State>
class ConnectionTable {
 public:
  static constexpr uint32_t kNone = 0xffffffff;

  struct Entry {
    ConnectionKey key;
    int64_t last_seen_ns = 0;
    int64_t moved_ns = 0;  // when it last moved to the recent end
    uint32_t hash = 0;
    uint32_t older = kNone;  // towards the least recently used end
    uint32_t newer = kNone;
    State state;
  };

  explicit ConnectionTable(size_t capacity, int64_t move_granularity_ns = 0)
      : move_granularity_ns_(move_granularity_ns) {
    Resize(capacity);
  }

  // Drops every entry and sets a new capacity (at least 1). Entries are reserved, not touched,
  // so a node with few connections keeps few resident pages.
  void Resize(size_t capacity) {
    capacity_ = capacity == 0 ? 1 : capacity;
    entries_.clear();
    entries_.shrink_to_fit();
    entries_.reserve(capacity_);
    size_t buckets = 2;
    while (buckets < capacity_ * 2) buckets <<= 1;
    index_.assign(buckets, kEmpty);
    mask_ = buckets - 1;
    free_.clear();
    oldest_ = newest_ = kNone;
    size_ = 0;
  }

  // The entry of `key`, marked as used at `now_ns`; nullptr if absent.
  Entry* Find(const ConnectionKey& key, int64_t now_ns) {
    const uint32_t hash = Hash(key);
    for (size_t b = hash & mask_;; b = (b + 1) & mask_) {
      const uint64_t cell = index_[b];
      if (cell == kEmpty) return nullptr;
      if (static_cast<uint32_t>(cell >> 32) != hash) continue;
      const uint32_t slot = static_cast<uint32_t>(cell);
      Entry& e = entries_[slot];
      if (e.key == key) {
        Touch(slot, now_ns);
        return &e;
      }
    }
  }

  // Inserts `key` (absent) with a default state. Evicts the least recently used entry when full;
  // `evicted` tells the caller so it can count it.
  Entry& Insert(const ConnectionKey& key, int64_t now_ns, bool& evicted) {
    evicted = false;
    if (free_.empty()) {
      if (entries_.size() < capacity_) {
        free_.push_back(static_cast<uint32_t>(entries_.size()));
        entries_.emplace_back();
      } else {
        Erase(oldest_);
        evicted = true;
      }
    }
    const uint32_t slot = free_.back();
    free_.pop_back();
    Entry& e = entries_[slot];
    e.key = key;
    e.state = State{};
    e.hash = Hash(key);
    e.last_seen_ns = e.moved_ns = now_ns;
    e.older = newest_;
    e.newer = kNone;
    if (newest_ != kNone) entries_[newest_].newer = slot;
    newest_ = slot;
    if (oldest_ == kNone) oldest_ = slot;
    size_t b = e.hash & mask_;
    while (index_[b] != kEmpty) b = (b + 1) & mask_;
    index_[b] = uint64_t{e.hash} << 32 | slot;
    ++size_;
    return e;
  }

  void Remove(Entry& e) { Erase(static_cast<uint32_t>(&e - entries_.data())); }

  // Removes entries whose last move to the recent end was before `cutoff_ns`, oldest first;
  // returns how many.
  size_t ExpireBefore(int64_t cutoff_ns) {
    size_t n = 0;
    while (oldest_ != kNone && entries_[oldest_].moved_ns < cutoff_ns) {
      Entry& e = entries_[oldest_];
      if (e.last_seen_ns >= cutoff_ns) {
        MoveToRecent(oldest_, e.last_seen_ns);  // seen since its last move: not idle
        continue;
      }
      Erase(oldest_);
      ++n;
    }
    return n;
  }

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  static uint64_t Mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
  }
  static uint32_t Hash(const ConnectionKey& k) {
    const uint64_t ports = (uint64_t{k.a_port} << 48) | (uint64_t{k.b_port} << 32) | k.interface_id;
    return static_cast<uint32_t>(
        Mix(k.a[0] * 0x9E3779B97F4A7C15ull + k.a[1] * 0xC2B2AE3D27D4EB4Full +
            k.b[0] * 0x165667B19E3779F9ull + k.b[1] * 0x27D4EB2F165667C5ull + ports) >>
        32);
  }

  void Touch(uint32_t slot, int64_t now_ns) {
    Entry& e = entries_[slot];
    // Capture timestamps of different interfaces may interleave slightly out of order.
    if (now_ns <= e.last_seen_ns) return;
    e.last_seen_ns = now_ns;
    if (now_ns - e.moved_ns < move_granularity_ns_) return;
    MoveToRecent(slot, now_ns);
  }

  void MoveToRecent(uint32_t slot, int64_t now_ns) {
    Entry& e = entries_[slot];
    e.moved_ns = now_ns;
    if (slot == newest_) return;
    Unlink(slot);
    e.older = newest_;
    e.newer = kNone;
    entries_[newest_].newer = slot;
    newest_ = slot;
    if (oldest_ == kNone) oldest_ = slot;
  }

  void Unlink(uint32_t slot) {
    Entry& e = entries_[slot];
    if (e.older != kNone) entries_[e.older].newer = e.newer;
    if (e.newer != kNone) entries_[e.newer].older = e.older;
    if (oldest_ == slot) oldest_ = e.newer;
    if (newest_ == slot) newest_ = e.older;
  }

  // Linear probing with backward-shift deletion, so lookups never meet tombstones. The hashes
  // in the index say where each cell belongs without touching its entry.
  void Erase(uint32_t slot) {
    Unlink(slot);
    size_t b = entries_[slot].hash & mask_;
    while (static_cast<uint32_t>(index_[b]) != slot) b = (b + 1) & mask_;
    for (size_t next = (b + 1) & mask_; index_[next] != kEmpty; next = (next + 1) & mask_) {
      const size_t home = static_cast<uint32_t>(index_[next] >> 32) & mask_;
      // Move the cell back into the hole unless its home lies cyclically in (b, next].
      const bool stays = b <= next ? (home > b && home <= next) : (home > b || home <= next);
      if (stays) continue;
      index_[b] = index_[next];
      b = next;
    }
    index_[b] = kEmpty;
    free_.push_back(slot);
    --size_;
  }

  int64_t move_granularity_ns_;
  std::vector<Entry> entries_;
  std::vector<uint64_t> index_;  // hash << 32 | slot, or kEmpty
  std::vector<uint32_t> free_;
  size_t capacity_ = 1;
  size_t mask_ = 0;
  uint32_t oldest_ = kNone;
  uint32_t newest_ = kNone;
  size_t size_ = 0;
};

}  // namespace meshflow::flow::tcp
