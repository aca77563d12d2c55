#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <queue>
#include <vector>

namespace meshflow::testbed {

// Bounds of the delay line: what a burst into a slow, long link may hold.
struct MoverLimits {
  size_t max_packets = 200000;
  size_t max_bytes = 128u << 20;
  // The last stretch before a release is busy-waited: wake-ups from epoll are late by tens of
  // microseconds on a busy machine, and the RTT target is 0.2 ms over two traversals.
  std::chrono::nanoseconds spin = std::chrono::microseconds(150);
  size_t max_reads_per_wakeup = 64;  // per device, so one busy node cannot starve the others
};

// Packets waiting for their release time, earliest first, FIFO among equal times.
class DelayLine {
 public:
  struct Entry {
    std::chrono::nanoseconds release;
    uint64_t seq;
    size_t to_node;
    std::vector<uint8_t> data;
  };
  explicit DelayLine(const MoverLimits& limits) : limits_(limits) {}
  // False when full; the caller counts the drop.
  bool Push(std::chrono::nanoseconds release, size_t to_node, const uint8_t* data, size_t size);
  bool empty() const { return queue_.empty(); }
  std::chrono::nanoseconds next_release() const { return queue_.top().release; }
  Entry Pop();
  size_t packets() const { return queue_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.release != b.release ? a.release > b.release : a.seq > b.seq;
    }
  };
  MoverLimits limits_;
  std::priority_queue<Entry, std::vector<Entry>, Later> queue_;
  size_t bytes_ = 0;
  uint64_t seq_ = 0;
};

}  // namespace meshflow::testbed
