#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace meshflow::gateway {

// The gateway's memory budget (`memory.budget_bytes`): what grows with what nodes send (stored
// pushes, pushes being parsed, and any history a later feature keeps) reserves its bytes here
// first and is refused (429) when they do not fit. Each consumer reserves under its own name so
// the self metrics say who holds what.
class MemoryBudget {
 public:
  explicit MemoryBudget(size_t budget_bytes = 256 << 20) : budget_(budget_bytes) {}

  void SetBudget(size_t budget_bytes) { budget_ = budget_bytes; }
  size_t budget() const { return budget_; }

  // Takes `bytes` for `consumer`; false (nothing taken, a refusal counted) when they do not fit
  // in the budget plus `allowance` (bytes about to be released, such as a push being replaced).
  bool Reserve(const std::string& consumer, size_t bytes, size_t allowance = 0);
  void Release(const std::string& consumer, size_t bytes);

  size_t used() const { return used_; }
  std::map<std::string, size_t> UsedByConsumer() const;
  std::map<std::string, uint64_t> RefusedByConsumer() const;

 private:
  std::atomic<size_t> budget_;
  std::atomic<size_t> used_{0};
  mutable std::mutex mutex_;
  std::map<std::string, size_t> used_by_;
  std::map<std::string, uint64_t> refused_by_;
};

}  // namespace meshflow::gateway
