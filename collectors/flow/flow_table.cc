#include "collectors/flow/flow_table.h"

#include <algorithm>
#include <bit>

namespace meshflow::flow {

FlowTable::FlowTable(size_t max_series)
    : max_series_(std::min(max_series, kCapacity - kMaxInterfaces)) {
  Rehash(std::bit_ceil(std::max<size_t>(1024, 2 * (max_series_ + 64))));
}

void FlowTable::SetMaxSeries(size_t max_series) {
  max_series_ = std::min(max_series, kCapacity - kMaxInterfaces);
  const size_t needed = std::bit_ceil(2 * (std::max(max_series_, regular_series_) + 64));
  if (needed > index_keys_.size()) Rehash(needed);
}

uint32_t FlowTable::Find(uint64_t key) const {
  for (size_t i = Hash(key) & index_mask_;; i = (i + 1) & index_mask_) {
    if (index_keys_[i] == key) return index_slots_[i];
    if (index_keys_[i] == kEmptyKey) return kNoSlot;
  }
}

uint32_t FlowTable::Insert(uint64_t key, SeriesLabels labels) {
  const size_t slot = size_.load(std::memory_order_relaxed);
  // Overflow series (one per interface) may exceed the index's planned load; keep it at 1/2.
  if (2 * (slot + 1) > index_keys_.size()) Rehash(index_keys_.size() * 2);
  auto& chunk = chunks_[slot / kChunkSize];
  if (!chunk) chunk.reset(new Entry[kChunkSize]);
  chunk[slot % kChunkSize].labels = std::move(labels);
  chunk[slot % kChunkSize].interface_id = static_cast<uint32_t>(key >> 48);
  IndexInsert(key, static_cast<uint32_t>(slot));
  // Publishes the labels written above to readers that load size_ with acquire.
  size_.store(slot + 1, std::memory_order_release);
  return static_cast<uint32_t>(slot);
}

void FlowTable::IndexInsert(uint64_t key, uint32_t slot) {
  size_t i = Hash(key) & index_mask_;
  while (index_keys_[i] != kEmptyKey) i = (i + 1) & index_mask_;
  index_keys_[i] = key;
  index_slots_[i] = slot;
}

void FlowTable::Rehash(size_t buckets) {
  std::vector<uint64_t> keys(buckets, kEmptyKey);
  std::vector<uint32_t> slots(buckets, kNoSlot);
  const size_t mask = buckets - 1;
  for (size_t j = 0; j < index_keys_.size(); ++j) {
    if (index_keys_[j] == kEmptyKey) continue;
    size_t i = Hash(index_keys_[j]) & mask;
    while (keys[i] != kEmptyKey) i = (i + 1) & mask;
    keys[i] = index_keys_[j];
    slots[i] = index_slots_[j];
  }
  index_keys_ = std::move(keys);
  index_slots_ = std::move(slots);
  index_mask_ = mask;
}

size_t FragmentTable::SetOf(const PacketInfo& p) {
  const uint64_t h = IpAddressHash{}(p.src) ^ (IpAddressHash{}(p.dst) * 31) ^
                     (static_cast<uint64_t>(p.fragment_id) << 8 | p.l4_protocol);
  return (h * 0x9e3779b97f4a7c15ull >> 40) % kSets;
}

void FragmentTable::Remember(const PacketInfo& packet, RoleId role, int64_t now_ns) {
  auto& set = sets_[SetOf(packet)];
  Slot* victim = &set[0];
  for (auto& slot : set) {
    if (Matches(slot, packet) || slot.expires_ns <= now_ns) {
      victim = &slot;
      break;
    }
    if (slot.expires_ns < victim->expires_ns) victim = &slot;
  }
  if (victim->expires_ns > now_ns && !Matches(*victim, packet)) evictions_.Add(1);
  *victim = Slot{packet.src,         packet.dst, packet.fragment_id,
                 packet.l4_protocol, role,       now_ns + kLifetimeNs};
}

bool FragmentTable::Lookup(const PacketInfo& packet, int64_t now_ns, RoleId& role) const {
  for (const auto& slot : sets_[SetOf(packet)]) {
    if (Matches(slot, packet) && slot.expires_ns > now_ns) {
      role = slot.role;
      return true;
    }
  }
  return false;
}

void FragmentTable::Clear() { sets_ = {}; }

}  // namespace meshflow::flow
