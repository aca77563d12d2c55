#include "gateway/memory_budget.h"

namespace meshflow::gateway {

bool MemoryBudget::Reserve(const std::string& consumer, size_t bytes, size_t allowance) {
  std::lock_guard lock(mutex_);
  if (used_ + bytes > budget_ + allowance) {
    ++refused_by_[consumer];
    return false;
  }
  used_ += bytes;
  used_by_[consumer] += bytes;
  return true;
}

void MemoryBudget::Release(const std::string& consumer, size_t bytes) {
  std::lock_guard lock(mutex_);
  size_t& mine = used_by_[consumer];
  const size_t released = bytes < mine ? bytes : mine;
  mine -= released;
  used_ -= released;
}

std::map<std::string, size_t> MemoryBudget::UsedByConsumer() const {
  std::lock_guard lock(mutex_);
  return used_by_;
}

std::map<std::string, uint64_t> MemoryBudget::RefusedByConsumer() const {
  std::lock_guard lock(mutex_);
  return refused_by_;
}

}  // namespace meshflow::gateway
