#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "exporter/core/ip_address.h"

namespace meshflow::flow::tcp {

// One TCP connection as seen on one interface. The endpoints are ordered (lower address and
// port first) so both directions find the same entry; `Direction` says which way a packet goes.
struct ConnectionKey {
  IpAddress a;
  IpAddress b;
  uint16_t a_port = 0;
  uint16_t b_port = 0;
  uint32_t interface_id = 0;

  bool operator==(const ConnectionKey&) const = default;
};

// 0: the packet goes from endpoint a to endpoint b; 1: from b to a.
using Direction = uint8_t;

// The key of a packet's connection and the direction the packet travels in.
inline ConnectionKey MakeKey(const IpAddress& src, uint16_t src_port, const IpAddress& dst,
                             uint16_t dst_port, uint32_t interface_id, Direction& direction) {
  const int order = std::memcmp(src.bytes().data(), dst.bytes().data(), 16);
  const bool src_first = order < 0 || (order == 0 && src_port <= dst_port);
  direction = src_first ? 0 : 1;
  return src_first ? ConnectionKey{src, dst, src_port, dst_port, interface_id}
                   : ConnectionKey{dst, src, dst_port, src_port, interface_id};
}

// A fixed-capacity map from ConnectionKey to State with least-recently-used order: the
// capture thread touches an entry per packet, idle entries fall off the old end, and a new
// connection in a full table takes the place of the least recently seen one. Nothing
// allocates after construction, so a SYN flood costs evictions, not memory.
template <typename State>
class ConnectionTable {
 public:
  static constexpr uint32_t kNone = 0xffffffff;

  struct Entry {
    ConnectionKey key;
    State state;
    int64_t last_seen_ns = 0;
    uint64_t hash = 0;
    uint32_t older = kNone;  // towards the least recently used end
    uint32_t newer = kNone;
  };

  explicit ConnectionTable(size_t capacity) { Resize(capacity); }

  // Drops every entry and sets a new capacity (at least 1). Entries are reserved, not touched,
  // so a node with few connections keeps few resident pages.
  void Resize(size_t capacity) {
    capacity_ = capacity == 0 ? 1 : capacity;
    entries_.clear();
    entries_.shrink_to_fit();
    entries_.reserve(capacity_);
    size_t buckets = 2;
    while (buckets < capacity_ * 2) buckets <<= 1;
    index_.assign(buckets, kNone);
    mask_ = buckets - 1;
    free_.clear();
    oldest_ = newest_ = kNone;
    size_ = 0;
  }

  // The entry of `key`, marked as the most recently used at `now_ns`; nullptr if absent.
  Entry* Find(const ConnectionKey& key, int64_t now_ns) {
    const uint64_t hash = Hash(key);
    for (size_t b = hash & mask_;; b = (b + 1) & mask_) {
      const uint32_t slot = index_[b];
      if (slot == kNone) return nullptr;
      Entry& e = entries_[slot];
      if (e.hash == hash && e.key == key) {
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
    e.last_seen_ns = now_ns;
    e.older = newest_;
    e.newer = kNone;
    if (newest_ != kNone) entries_[newest_].newer = slot;
    newest_ = slot;
    if (oldest_ == kNone) oldest_ = slot;
    size_t b = e.hash & mask_;
    while (index_[b] != kNone) b = (b + 1) & mask_;
    index_[b] = slot;
    ++size_;
    return e;
  }

  void Remove(Entry& e) { Erase(static_cast<uint32_t>(&e - entries_.data())); }

  // Removes entries last seen before `cutoff_ns`, oldest first; returns how many.
  size_t ExpireBefore(int64_t cutoff_ns) {
    size_t n = 0;
    while (oldest_ != kNone && entries_[oldest_].last_seen_ns < cutoff_ns) {
      Erase(oldest_);
      ++n;
    }
    return n;
  }

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }

 private:
  static uint64_t Mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
  }
  static uint64_t Hash(const ConnectionKey& k) {
    uint64_t w[4];
    std::memcpy(w, k.a.bytes().data(), 16);
    std::memcpy(w + 2, k.b.bytes().data(), 16);
    const uint64_t ports = (uint64_t{k.a_port} << 48) | (uint64_t{k.b_port} << 32) | k.interface_id;
    return Mix(w[0] * 0x9E3779B97F4A7C15ull + w[1] * 0xC2B2AE3D27D4EB4Full +
               w[2] * 0x165667B19E3779F9ull + w[3] * 0x27D4EB2F165667C5ull + ports);
  }

  void Touch(uint32_t slot, int64_t now_ns) {
    Entry& e = entries_[slot];
    // Capture timestamps of different interfaces may interleave slightly out of order.
    if (now_ns > e.last_seen_ns) e.last_seen_ns = now_ns;
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

  // Linear probing with backward-shift deletion, so lookups never meet tombstones.
  void Erase(uint32_t slot) {
    Unlink(slot);
    size_t b = entries_[slot].hash & mask_;
    while (index_[b] != slot) b = (b + 1) & mask_;
    for (size_t next = (b + 1) & mask_; index_[next] != kNone; next = (next + 1) & mask_) {
      const size_t home = entries_[index_[next]].hash & mask_;
      // Move the entry back into the hole unless its home lies cyclically in (b, next].
      const bool stays = b <= next ? (home > b && home <= next) : (home > b || home <= next);
      if (stays) continue;
      index_[b] = index_[next];
      b = next;
    }
    index_[b] = kNone;
    free_.push_back(slot);
    --size_;
  }

  std::vector<Entry> entries_;
  std::vector<uint32_t> index_;
  std::vector<uint32_t> free_;
  size_t capacity_ = 1;
  size_t mask_ = 0;
  uint32_t oldest_ = kNone;
  uint32_t newest_ = kNone;
  size_t size_ = 0;
};

}  // namespace meshflow::flow::tcp
