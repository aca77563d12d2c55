#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace meshflow {

// Time behind an interface so schedulers, deadlines and TTLs are tested without sleeping.
class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time (CLOCK_MONOTONIC), for intervals and deadlines.
  virtual std::chrono::nanoseconds Monotonic() const = 0;
  // Wall-clock time, for timestamps shown to users.
  virtual std::chrono::system_clock::time_point Wall() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::nanoseconds Monotonic() const override {
    return std::chrono::steady_clock::now().time_since_epoch();
  }
  std::chrono::system_clock::time_point Wall() const override {
    return std::chrono::system_clock::now();
  }
  static const SystemClock& Instance() {
    static const SystemClock clock;
    return clock;
  }
};

// A clock that moves only when told to.
class FakeClock final : public Clock {
 public:
  std::chrono::nanoseconds Monotonic() const override {
    return std::chrono::nanoseconds(monotonic_ns_.load());
  }
  std::chrono::system_clock::time_point Wall() const override {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(wall_offset_ns_ + monotonic_ns_.load())));
  }
  void Advance(std::chrono::nanoseconds by) { monotonic_ns_ += by.count(); }
  void SetWallOffset(std::chrono::nanoseconds offset) { wall_offset_ns_ = offset.count(); }

 private:
  std::atomic<int64_t> monotonic_ns_{1'000'000'000};
  int64_t wall_offset_ns_ = 1'700'000'000'000'000'000;
};

}  // namespace meshflow
