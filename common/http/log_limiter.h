#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "common/core/clock.h"

namespace meshflow {

// Decides whether a refusal from one source is worth a log line: at most one per source per
// `period`, so 10,000 bad attempts do not write 10,000 lines. Every event is counted either way.
// The table of sources is bounded; when full, sources whose period is over are forgotten, and if
// none is, the event is counted but not logged (an attacker rotating addresses gets no lines).
class LogLimiter {
 public:
  explicit LogLimiter(const Clock& clock = SystemClock::Instance(),
                      std::chrono::nanoseconds period = std::chrono::minutes(1),
                      size_t max_sources = 1024)
      : clock_(clock), period_(period), max_sources_(max_sources) {}

  // Counts an event from `source`; true when it should be logged. `*suppressed` is set to the
  // number of events from that source not logged since its last line.
  bool Allow(std::string_view source, uint64_t* suppressed = nullptr);
  uint64_t events() const;

 private:
  struct Entry {
    std::chrono::nanoseconds last_logged{0};
    uint64_t suppressed = 0;
  };
  const Clock& clock_;
  const std::chrono::nanoseconds period_;
  const size_t max_sources_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> sources_;
  uint64_t events_ = 0;
};

}  // namespace meshflow
