#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/core/ip_address.h"

namespace meshflow::flow::tcp {

// 0: the packet goes from endpoint a to endpoint b; 1: from b to a.
using Direction = uint8_t;

// One endpoint of a connection on one interface (address, port, interface) in 64 bits. For IPv4
// this loses nothing: an IPv4 address is stored v4-mapped, so its high word is zero and its low
// word has zeros where the port goes and ones where the interface id goes (below 2^16), and
// multiplying by an odd constant is a bijection. Two IPv6 endpoints share a value by a 2^-64
// coincidence: `seed` (odd, random per process in the tracker) keeps a sender from choosing an
// address whose endpoint takes another connection's entry, and with it that connection's
// tracking state and flow series.
inline constexpr uint64_t kDefaultEndpointSeed = 0x9E3779B97F4A7C15ull;
inline uint64_t EndpointHash(const IpAddress& address, uint16_t port, uint32_t interface_id,
                             uint64_t seed = kDefaultEndpointSeed) {
  uint64_t high, low;
  std::memcpy(&high, address.bytes().data(), 8);
  std::memcpy(&low, address.bytes().data() + 8, 8);
  return (low ^ (high * seed) ^ (uint64_t{interface_id} << 16) ^ port) * 0xBF58476D1CE4E5B9ull;
}

// A TCP connection on one interface: its endpoints' hashes, the smaller first, so both directions
// of the connection have the same key and the order of the two says which way a packet goes.
// Nothing else is kept: with only IPv4 on an interface, two connections never share a key.
struct ConnectionKey {
  uint64_t a = 0;  // the endpoint with the smaller hash
  uint64_t b = 0;

  bool operator==(const ConnectionKey&) const = default;
};

// The key of a packet's connection and the direction the packet travels in.
inline ConnectionKey MakeKey(const IpAddress& src, uint16_t src_port, const IpAddress& dst,
                             uint16_t dst_port, uint32_t interface_id, Direction& direction,
                             uint64_t seed = kDefaultEndpointSeed) {
  const uint64_t s = EndpointHash(src, src_port, interface_id, seed);
  const uint64_t d = EndpointHash(dst, dst_port, interface_id, seed);
  // Without a branch (std::min and std::max compile to one): the direction of consecutive
  // packets is a coin toss to a predictor.
  direction = static_cast<Direction>(s > d);
  const uint64_t swap = (s ^ d) & (uint64_t{0} - direction);
  return ConnectionKey{s ^ swap, d ^ swap};
}

// A fixed-capacity map from ConnectionKey to State in least-recently-used order: idle entries
// fall off the old end and a new connection in a full table takes the place of the least
// recently seen one. Nothing allocates after the entries are first used, so a SYN flood costs
// evictions, not memory.
//
// Per-packet cost is what matters, memory latency first:
//   - An entry holds the 16-byte key, not the addresses and ports, so header and state fit two
//     cache lines (State should be at most 88 bytes), and a key costs a few instructions. Its
//     index hash is computed again from the key when the entry is removed.
//   - The index holds each entry's hash beside its slot, so a probe touches an entry only on a
//     likely match, and it grows with the number of entries, so a node with a few thousand
//     connections keeps it in cache. It is kept at most a quarter full (8 bytes a cell, 32 an
//     entry): with a full table evicting on most new connections, the probe and the backward
//     shift of each eviction then stay short, and their loops predictable.
//   - An entry moves to the recent end of the list at most once per `move_granularity_ns`
//     (moving touches two neighbours, typically cache misses), so the order is exact to that
//     granularity: eviction may take a connection seen up to that much later than the least
//     recent one. Idle expiry stays exact.
//   - A lookup can be split in steps a few packets apart, each fetching what the next needs:
//     At (hashing) and PrefetchIndex, Probe (the index) and Prefetch (the entry),
//     then Use or Insert. PrefetchOldest does the same for the next eviction or expiry.
//     What Probe found is a hint that stays safe to use whatever changes in between, so the
//     steps need no bookkeeping of changes.
template <typename State>
class ConnectionTable {
 public:
  static constexpr uint32_t kNone = 0xffffffff;

  struct alignas(64) Entry {
    ConnectionKey key;
    int64_t last_seen_ns = 0;
    int64_t moved_ns = 0;    // when it last moved to the recent end
    uint32_t older = kNone;  // towards the least recently used end
    uint32_t newer = kNone;
    State state;
  };

  explicit ConnectionTable(size_t capacity, int64_t move_granularity_ns = 0)
      : move_granularity_ns_(move_granularity_ns) {
    Resize(capacity);
  }

  // Drops every entry and sets a new capacity (at least 1). Entries are allocated as they are
  // first used, so a node with few connections keeps little memory, and a large bound set in
  // the config reserves nothing up front. Locations probed before must not be used after.
  void Resize(size_t capacity) {
    capacity_ = capacity == 0 ? 1 : capacity;
    entries_.clear();
    entries_.shrink_to_fit();
    max_buckets_ = 2;
    while (max_buckets_ < capacity_ * 4) max_buckets_ <<= 1;
    index_.assign(std::min<size_t>(max_buckets_, kMinBuckets), kEmpty);
    mask_ = index_.size() - 1;
    free_.clear();
    oldest_ = newest_ = kNone;
    size_ = 0;
  }

  // Where a key's entry probably is: the first index cell whose hash matches, found without
  // touching any entry, so the entry can be fetched from memory while the caller does other
  // work.
  struct Location {
    ConnectionKey key;
    uint32_t hash;  // where the key's probe starts in the index
    uint32_t slot;  // the candidate entry; kNone when no hash matched
  };

  Location Locate(const ConnectionKey& key) const {
    Location at = At(key);
    Probe(at);
    return at;
  }

  // The first step of Locate: an unprobed Location of the key, which Probe completes. A product's
  // high bits depend on all of the multiplicand, its low bits only on the multiplicand's low bits:
  // endpoints differing in a high bit (the last octet of an IPv4 address) have hashes differing
  // only there. One xorshift-multiply round brings every bit into the index hash.
  static Location At(const ConnectionKey& key) {
    uint64_t x = key.a + key.b;
    x ^= x >> 32;
    return Location{key, static_cast<uint32_t>((x * 0xC4CEB9FE1A85EC53ull) >> 32), kNone};
  }

  // Starts loading the index cells a Probe of `at` reads first.
  void PrefetchIndex(const Location& at) const { __builtin_prefetch(&index_[at.hash & mask_]); }

  // The second step of Locate: the candidate slot of a Location from At.
  void Probe(Location& at) const {
    at.slot = kNone;
    for (size_t b = at.hash & mask_;; b = (b + 1) & mask_) {
      const uint64_t cell = index_[b];
      if (cell == kEmpty) break;
      if (static_cast<uint32_t>(cell >> 32) == at.hash) {
        at.slot = static_cast<uint32_t>(cell);
        break;
      }
    }
  }

  // Starts loading a Location's candidate entry into the cache.
  void Prefetch(const Location& at) const {
    if (at.slot != kNone) {
      const char* p = reinterpret_cast<const char*>(&entries_[at.slot]);
      __builtin_prefetch(p);
      __builtin_prefetch(p + 64);
    }
  }

  // The entry of a Location's key, marked as used at `now_ns`; nullptr if absent. The
  // Location may have been probed before any number of changes to the table: a candidate entry
  // holding the key is the key's live entry (a removed entry's key is set to one no connection
  // has), and anything else (no candidate, another key, an unprobed Location) probes again.
  Entry* Use(const Location& at, int64_t now_ns) {
    uint32_t slot = at.slot;
    if (slot == kNone || !(entries_[slot].key == at.key)) [[unlikely]] {
      slot = SlotOf(at.key, at.hash);
      if (slot == kNone) return nullptr;
    }
    Touch(slot, now_ns);
    return &entries_[slot];
  }

  // The entry of `key`, marked as used at `now_ns`; nullptr if absent.
  Entry* Find(const ConnectionKey& key, int64_t now_ns) { return Use(Locate(key), now_ns); }

  // Inserts an absent `key`; see the Location overload.
  Entry& Insert(const ConnectionKey& key, int64_t now_ns, bool& evicted) {
    return Insert(Locate(key), now_ns, evicted);
  }

  // Inserts the absent key of a Location with a default state. Evicts the least recently used
  // entry when full; `evicted` tells the caller so it can count it.
  Entry& Insert(const Location& at, int64_t now_ns, bool& evicted) {
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
    e.key = at.key;
    e.state = State{};
    e.last_seen_ns = e.moved_ns = now_ns;
    e.older = newest_;
    e.newer = kNone;
    if (newest_ != kNone) entries_[newest_].newer = slot;
    newest_ = slot;
    if (oldest_ == kNone) oldest_ = slot;
    ++size_;
    if (size_ * 4 > index_.size() && index_.size() < max_buckets_) Rehash(index_.size() * 2);
    IndexInsert(uint64_t{at.hash} << 32 | slot);
    return e;
  }

  void Remove(Entry& e) { Erase(static_cast<uint32_t>(&e - entries_.data())); }

  // Starts loading what evicting or expiring the least recently used entry touches: its index
  // cells and the entry that becomes the oldest then (whose own fetch an earlier call started).
  void PrefetchOldest() const {
    if (oldest_ == kNone) return;
    const Entry& e = entries_[oldest_];
    __builtin_prefetch(&index_[At(e.key).hash & mask_]);
    if (e.newer != kNone) __builtin_prefetch(&entries_[e.newer]);
  }

  bool full() const { return size_ == capacity_; }

  // Removes entries last seen before `cutoff_ns`, oldest first; returns how many.
  size_t ExpireBefore(int64_t cutoff_ns) {
    size_t n = 0;
    // The list is ordered by move time: an entry whose move is older than the cutoff but that
    // was seen since is moved now, so the walk stops at the first that moved after the cutoff.
    while (oldest_ != kNone && entries_[oldest_].moved_ns < cutoff_ns) {
      Entry& e = entries_[oldest_];
      if (e.last_seen_ns >= cutoff_ns) {
        MoveToRecent(oldest_, e.last_seen_ns);
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

  static constexpr size_t kMinBuckets = 64;

  // What a removed entry's key becomes: no connection's key has a > b.
  static constexpr ConnectionKey kRemoved{1, 0};

  // The slot of `key`'s entry, found through the index alone; kNone if absent.
  uint32_t SlotOf(const ConnectionKey& key, uint32_t hash) const {
    for (size_t b = hash & mask_;; b = (b + 1) & mask_) {
      const uint64_t cell = index_[b];
      if (cell == kEmpty) return kNone;
      const auto slot = static_cast<uint32_t>(cell);
      if (static_cast<uint32_t>(cell >> 32) == hash && entries_[slot].key == key) return slot;
    }
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
    size_t b = At(entries_[slot].key).hash & mask_;
    // A Location still pointing here must not take the freed entry for its key (Use).
    entries_[slot].key = kRemoved;
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

  void IndexInsert(uint64_t cell) {
    size_t b = static_cast<uint32_t>(cell >> 32) & mask_;
    while (index_[b] != kEmpty) b = (b + 1) & mask_;
    index_[b] = cell;
  }

  void Rehash(size_t buckets) {
    std::vector<uint64_t> old(buckets, kEmpty);
    old.swap(index_);
    mask_ = buckets - 1;
    for (const uint64_t cell : old) {
      if (cell != kEmpty) IndexInsert(cell);
    }
  }

  int64_t move_granularity_ns_;
  std::vector<Entry> entries_;
  std::vector<uint64_t> index_;  // hash << 32 | slot, or kEmpty
  std::vector<uint32_t> free_;
  size_t capacity_ = 1;
  size_t max_buckets_ = 2;
  size_t mask_ = 0;
  uint32_t oldest_ = kNone;
  uint32_t newest_ = kNone;
  size_t size_ = 0;
};

}  // namespace meshflow::flow::tcp
