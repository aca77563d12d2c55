#include "common/http/log_limiter.h"

namespace meshflow {

bool LogLimiter::Allow(std::string_view source, uint64_t* suppressed) {
  std::lock_guard lock(mutex_);
  ++events_;
  const auto now = clock_.Monotonic();
  auto it = sources_.find(source);
  if (it == sources_.end()) {
    if (sources_.size() >= max_sources_) {
      for (auto i = sources_.begin(); i != sources_.end();) {
        if (now - i->second.last_logged >= period_)
          i = sources_.erase(i);
        else
          ++i;
      }
      if (sources_.size() >= max_sources_) return false;
    }
    sources_.emplace(std::string(source), Entry{now, 0});
    if (suppressed) *suppressed = 0;
    return true;
  }
  if (now - it->second.last_logged < period_) {
    ++it->second.suppressed;
    return false;
  }
  if (suppressed) *suppressed = it->second.suppressed;
  it->second = Entry{now, 0};
  return true;
}

uint64_t LogLimiter::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

}  // namespace meshflow
