#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>

#include "collectors/probe/codec.h"
#include "common/core/ip_address.h"

namespace meshflow::probe {

// Token buckets per source address in a table of fixed size. When the table is full the least
// recently seen source is forgotten, which is harmless once its bucket has refilled.
class SourceRateLimiter {
 public:
  SourceRateLimiter(double per_second, size_t max_sources);

  // True when `source` may get one more reply at `now` (monotonic).
  bool Allow(const IpAddress& source, std::chrono::nanoseconds now);
  void set_rate(double per_second);
  size_t size() const { return map_.size(); }
  uint64_t evictions() const { return evictions_; }

 private:
  struct Bucket {
    IpAddress source;
    double tokens;
    std::chrono::nanoseconds last;
  };
  double per_second_;
  double burst_;
  size_t max_sources_;
  std::list<Bucket> lru_;  // most recent first
  std::unordered_map<IpAddress, std::list<Bucket>::iterator, IpAddressHash> map_;
  uint64_t evictions_ = 0;
};

struct ReflectorCounters {
  uint64_t requests = 0;      // well-formed requests received
  uint64_t replies = 0;       // replies handed to the socket
  uint64_t rate_limited = 0;  // requests not answered: their source, or all sources, over the rate
  uint64_t global_rate_limited = 0;  // of those, the ones refused by the cap over all sources
  std::array<uint64_t, kDecodeErrorCount> malformed{};  // by DecodeError
  uint64_t not_request = 0;  // well-formed datagrams that were not requests (replies, loops)
  uint64_t session_evictions = 0;
};

// The reflector's decisions without a socket: which datagram gets which reply. The reply has
// exactly the request's size; anything that is not a valid request gets nothing.
class ReflectorCore {
 public:
  // Replies stay under max_replies_per_second over all sources together, so rotating over many
  // (spoofed) source addresses, each with its own fresh allowance, gains nothing past it.
  ReflectorCore(double max_replies_per_source_per_second, size_t max_sources = 4096,
                size_t max_sessions = 4096, double max_replies_per_second = 5000);

  std::optional<ProbeBytes> Handle(const IpAddress& source, std::span<const uint8_t> datagram,
                                   std::chrono::nanoseconds now);
  // Whether a reply to `source` fits the per-source and the global caps now (counted when not).
  // Every datagram the reflector's socket sends, hello answers too, asks first.
  bool AllowReply(const IpAddress& source, std::chrono::nanoseconds now);
  const ReflectorCounters& counters() const { return counters_; }
  void set_rate(double per_second) { limiter_.set_rate(per_second); }
  void set_global_rate(double per_second);
  size_t sessions() const { return sessions_.size(); }

 private:
  struct SessionKey {
    IpAddress source;
    uint64_t session;
    bool operator==(const SessionKey&) const = default;
  };
  struct SessionKeyHash {
    size_t operator()(const SessionKey& k) const noexcept {
      return IpAddressHash{}(k.source) ^ (k.session * 0x9E3779B97F4A7C15ull);
    }
  };
  struct Session {
    SessionKey key;
    uint64_t received;
  };

  uint64_t CountRequest(const SessionKey& key);

  bool AllowGlobal(std::chrono::nanoseconds now);

  SourceRateLimiter limiter_;
  double global_rate_;
  double global_tokens_;
  std::chrono::nanoseconds global_last_{0};
  size_t max_sessions_;
  std::list<Session> session_lru_;  // most recent first
  std::unordered_map<SessionKey, std::list<Session>::iterator, SessionKeyHash> sessions_;
  ReflectorCounters counters_;
};

}  // namespace meshflow::probe
