#pragma once

#include <cstdint>

namespace meshflow::flow {

// Turns a 32-bit counter that wraps (the fields of pcap_stats) into a 64-bit total by adding
// the distance between readings modulo 2^32. Readings must come more often than one wrap
// (the capture loop reads every second; 2^32 packets take over an hour even at 1M packets/s).
class WrappingCounter {
 public:
  // Adds the distance from the previous reading of the same source.
  void Update(uint32_t raw) {
    total_ += static_cast<uint32_t>(raw - last_);
    last_ = raw;
  }
  // A new source counts from zero again (a reopened pcap handle); the total carries on.
  void Rebase() { last_ = 0; }
  uint64_t total() const { return total_; }

 private:
  uint32_t last_ = 0;
  uint64_t total_ = 0;
};

}  // namespace meshflow::flow
