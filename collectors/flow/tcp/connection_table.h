#pragma once

#include <algorithm>
#include <bit>
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
  // Without branches: the direction of consecutive packets is a coin toss to a predictor.
  const unsigned lt0 = s[0] < d[0], eq0 = s[0] == d[0], lt1 = s[1] < d[1], eq1 = s[1] == d[1];
  const unsigned ports_in_order = src_port <= dst_port;
  direction = static_cast<Direction>((lt0 | (eq0 & (lt1 | (eq1 & ports_in_order)))) ^ 1);
  const uint64_t swap = uint64_t{0} - direction;  // all ones when the endpoints swap
  const uint64_t x0 = (s[0] ^ d[0]) & swap;
  const uint64_t x1 = (s[1] ^ d[1]) & swap;
  const auto xp = static_cast<uint16_t>((src_port ^ dst_port) & swap);
  return ConnectionKey{{s[0] ^ x0, s[1] ^ x1},
                       {d[0] ^ x0, d[1] ^ x1},
                       static_cast<uint16_t>(src_port ^ xp),
                       static_cast<uint16_t>(dst_port ^ xp),
                       interface_id};
}

// A fixed-capacity map from ConnectionKey to State in least-recently-used order: idle entries
// fall off the old end and a new connection in a full table takes the place of the least
// recently seen one. Nothing allocates after the entries are first used, so a SYN flood costs
// evictions, not memory.
//
// Per-packet cost is what matters, memory latency first:
//   - An entry holds a 128-bit fingerprint of its key, not the 40-byte key, so header and state
//     fit two cache lines (State should be at most 84 bytes). Two live connections with the
//     same fingerprint would share an entry; with 2^-128 per pair that is never (nor does a
//     key's fingerprint equal the zero one of a removed entry).
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
//     Fingerprint (hashing) and PrefetchIndex, Probe (the index) and Prefetch (the entry),
//     then Use or Insert. PrefetchOldest does the same for the next eviction or expiry.
template <typename State>
class ConnectionTable {
 public:
  static constexpr uint32_t kNone = 0xffffffff;

  struct alignas(64) Entry {
    uint64_t fingerprint[2] = {0, 0};
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

  // Drops every entry and sets a new capacity (at least 1). Entries are allocated as they are
  // first used, so a node with few connections keeps little memory, and a large bound set in
  // the config reserves nothing up front.
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
    ++generation_;
  }

  // Where a key's entry probably is: the first index cell whose hash matches, found without
  // touching any entry, so the entry can be fetched from memory while the caller does other
  // work. Valid while generation() stays the same.
  struct Location {
    uint64_t fingerprint[2];
    size_t bucket;  // of the candidate, or of the empty cell that ended the probe
    uint32_t slot;  // the candidate entry; kNone when no hash matched
  };

  Location Locate(const ConnectionKey& key) const {
    Location at;
    Fingerprint(key, at);
    Probe(at);
    return at;
  }

  // The first step of Locate: hashes the key into `at`, which Probe (or Revalidate) completes.
  static void Fingerprint(const ConnectionKey& key, Location& at) {
    FingerprintWords(key, at.fingerprint);
    at.bucket = 0;
    at.slot = kNone;
  }

  // Starts loading the index cells a Probe of `at` reads first.
  void PrefetchIndex(const Location& at) const {
    __builtin_prefetch(&index_[static_cast<uint32_t>(at.fingerprint[0] >> 32) & mask_]);
  }

  // The second step of Locate, again after any change to the table: the bucket and slot of
  // a fingerprinted Location.
  void Probe(Location& at) const {
    at.slot = kNone;
    const uint32_t hash = static_cast<uint32_t>(at.fingerprint[0] >> 32);
    for (at.bucket = hash & mask_;; at.bucket = (at.bucket + 1) & mask_) {
      const uint64_t cell = index_[at.bucket];
      if (cell == kEmpty) break;
      if (static_cast<uint32_t>(cell >> 32) == hash) {
        at.slot = static_cast<uint32_t>(cell);
        break;
      }
    }
  }

  // Changes whenever an entry is added or removed (or the index rebuilt): a Location found
  // under another generation must be revalidated.
  uint64_t generation() const { return generation_; }

  // Brings a Location probed under an older generation() up to date. Its candidate entry
  // still holding the fingerprint settles it without a probe: a removed entry's fingerprint
  // is cleared, so an entry with the key's fingerprint is the key's live entry.
  void Revalidate(Location& at) const {
    if (at.slot != kNone && SameFingerprint(entries_[at.slot], at.fingerprint)) return;
    Probe(at);
  }

  // Starts loading a Location's candidate entry into the cache.
  void Prefetch(const Location& at) const {
    if (at.slot != kNone) {
      const char* p = reinterpret_cast<const char*>(&entries_[at.slot]);
      __builtin_prefetch(p);
      __builtin_prefetch(p + 64);
    }
  }

  // The entry at a Location, marked as used at `now_ns`; nullptr if absent.
  Entry* Use(const Location& at, int64_t now_ns) {
    if (at.slot == kNone) return nullptr;
    const uint32_t hash = static_cast<uint32_t>(at.fingerprint[0] >> 32);
    uint32_t slot = at.slot;
    // A matching hash with another fingerprint is rare: probe on from the candidate.
    for (size_t b = at.bucket; !SameFingerprint(entries_[slot], at.fingerprint);) {
      do {
        b = (b + 1) & mask_;
        if (index_[b] == kEmpty) return nullptr;
      } while (static_cast<uint32_t>(index_[b] >> 32) != hash);
      slot = static_cast<uint32_t>(index_[b]);
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
    e.fingerprint[0] = at.fingerprint[0];
    e.fingerprint[1] = at.fingerprint[1];
    e.state = State{};
    e.hash = static_cast<uint32_t>(e.fingerprint[0] >> 32);
    e.last_seen_ns = e.moved_ns = now_ns;
    e.older = newest_;
    e.newer = kNone;
    if (newest_ != kNone) entries_[newest_].newer = slot;
    newest_ = slot;
    if (oldest_ == kNone) oldest_ = slot;
    ++size_;
    if (size_ * 4 > index_.size() && index_.size() < max_buckets_) Rehash(index_.size() * 2);
    IndexInsert(uint64_t{e.hash} << 32 | slot);
    ++generation_;
    return e;
  }

  void Remove(Entry& e) { Erase(static_cast<uint32_t>(&e - entries_.data())); }

  // Starts loading what evicting or expiring the least recently used entry touches: its index
  // cells and the entry that becomes the oldest then (whose own fetch an earlier call started).
  void PrefetchOldest() const {
    if (oldest_ == kNone) return;
    const Entry& e = entries_[oldest_];
    __builtin_prefetch(&index_[e.hash & mask_]);
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

  static bool SameFingerprint(const Entry& e, const uint64_t fp[2]) {
    return ((e.fingerprint[0] ^ fp[0]) | (e.fingerprint[1] ^ fp[1])) == 0;
  }
  // Two independent 64-bit hashes of the key's words, each a sum of products with odd
  // constants: two keys share a fingerprint only if both sums collide. A product's low bits
  // depend only on the word's low bits, so the words are turned to put what varies there (an
  // IPv4 address and the ports sit in the high halves). Every packet computes one, so it is
  // kept to eleven multiplications. The first also places the key in the index by its top
  // bits, which one xorshift-multiply round makes depend on every word bit.
  static void FingerprintWords(const ConnectionKey& k, uint64_t out[2]) {
    const uint64_t w[5] = {
        k.a[0], std::rotl(k.a[1], 32), k.b[0], std::rotl(k.b[1], 32),
        (uint64_t{k.interface_id} << 32) | (uint64_t{k.a_port} << 16) | k.b_port};
    uint64_t x = w[0] * 0x9E3779B97F4A7C15ull + w[1] * 0xC2B2AE3D27D4EB4Full +
                 w[2] * 0x165667B19E3779F9ull + w[3] * 0x27D4EB2F165667C5ull +
                 w[4] * 0xFF51AFD7ED558CCDull;
    x ^= x >> 32;
    out[0] = x * 0xC4CEB9FE1A85EC53ull;
    out[1] = (w[0] ^ 0x85EBCA77C2B2AE63ull) * 0xD6E8FEB86659FD93ull +
             (w[1] ^ 0xA0761D6478BD642Full) * 0xE7037ED1A0B428DBull +
             (w[2] ^ 0x8EBC6AF09C88C6E3ull) * 0x589965CC75374CC3ull +
             (w[3] ^ 0x1D8E4E27C47D124Full) * 0x9E3779B97F4A7C15ull +
             (w[4] ^ 0xE7037ED1A0B428DBull) * 0x165667B19E3779F9ull;
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
    // A Location still pointing here must not take the freed entry for its key (Revalidate).
    entries_[slot].fingerprint[0] = entries_[slot].fingerprint[1] = 0;
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
    ++generation_;
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
  uint64_t generation_ = 0;
};

}  // namespace meshflow::flow::tcp
