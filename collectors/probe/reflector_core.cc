#include "collectors/probe/reflector_core.h"

#include <algorithm>

namespace meshflow::probe {

SourceRateLimiter::SourceRateLimiter(double per_second, size_t max_sources)
    : per_second_(per_second),
      // One second's worth, at least one: a prober restarting its schedule may send a short burst.
      burst_(std::max(1.0, per_second)),
      max_sources_(std::max<size_t>(1, max_sources)) {}

void SourceRateLimiter::set_rate(double per_second) {
  per_second_ = per_second;
  burst_ = std::max(1.0, per_second);
}

bool SourceRateLimiter::Allow(const IpAddress& source, std::chrono::nanoseconds now) {
  auto it = map_.find(source);
  if (it == map_.end()) {
    if (map_.size() >= max_sources_) {
      map_.erase(lru_.back().source);
      lru_.pop_back();
      ++evictions_;
    }
    lru_.push_front(Bucket{source, burst_, now});
    it = map_.emplace(source, lru_.begin()).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second);
  }
  Bucket& b = *it->second;
  const double elapsed = std::chrono::duration<double>(now - b.last).count();
  if (elapsed > 0) b.tokens = std::min(burst_, b.tokens + elapsed * per_second_);
  b.last = std::max(b.last, now);
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

ReflectorCore::ReflectorCore(double max_replies_per_source_per_second, size_t max_sources,
                             size_t max_sessions, double max_replies_per_second)
    : limiter_(max_replies_per_source_per_second, max_sources),
      global_rate_(max_replies_per_second),
      global_tokens_(std::max(1.0, max_replies_per_second)),
      max_sessions_(std::max<size_t>(1, max_sessions)) {}

void ReflectorCore::set_global_rate(double per_second) {
  global_rate_ = per_second;
  global_tokens_ = std::min(global_tokens_, std::max(1.0, per_second));
}

bool ReflectorCore::AllowReply(const IpAddress& source, std::chrono::nanoseconds now) {
  if (!limiter_.Allow(source, now)) {
    ++counters_.rate_limited;
    return false;
  }
  // After the per-source check, so a flooding source spends its own allowance, not everyone's.
  if (!AllowGlobal(now)) {
    ++counters_.rate_limited;
    ++counters_.global_rate_limited;
    return false;
  }
  return true;
}

bool ReflectorCore::AllowGlobal(std::chrono::nanoseconds now) {
  // A token bucket of one second's worth: the cap holds over any window of a second or more.
  const double burst = std::max(1.0, global_rate_);
  const double elapsed = std::chrono::duration<double>(now - global_last_).count();
  if (elapsed > 0) global_tokens_ = std::min(burst, global_tokens_ + elapsed * global_rate_);
  global_last_ = std::max(global_last_, now);
  if (global_tokens_ < 1.0) return false;
  global_tokens_ -= 1.0;
  return true;
}

uint64_t ReflectorCore::CountRequest(const SessionKey& key) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) {
    if (sessions_.size() >= max_sessions_) {
      sessions_.erase(session_lru_.back().key);
      session_lru_.pop_back();
      ++counters_.session_evictions;
    }
    session_lru_.push_front(Session{key, 0});
    it = sessions_.emplace(key, session_lru_.begin()).first;
  } else {
    session_lru_.splice(session_lru_.begin(), session_lru_, it->second);
  }
  return ++it->second->received;
}

std::optional<ProbeBytes> ReflectorCore::Handle(const IpAddress& source,
                                                std::span<const uint8_t> datagram,
                                                std::chrono::nanoseconds now) {
  const DecodeResult decoded = Decode(datagram);
  if (!decoded.packet) {
    ++counters_.malformed[static_cast<size_t>(decoded.error)];
    return std::nullopt;
  }
  if (decoded.packet->type != ProbeType::kRequest) {
    ++counters_.not_request;
    return std::nullopt;
  }
  ++counters_.requests;
  // Counted before the rate limit: the request did cross the forward path, so a prober that
  // gets no reply sees it as return loss, which is where the reply went missing.
  const uint64_t received = CountRequest(SessionKey{source, decoded.packet->session});
  if (!AllowReply(source, now)) return std::nullopt;
  ProbePacket reply = *decoded.packet;
  reply.type = ProbeType::kReply;
  reply.receive_count = received;
  reply.turnaround_ns = 0;  // stamped by the socket layer right before sending
  ++counters_.replies;
  return Encode(reply);
}

}  // namespace meshflow::probe
