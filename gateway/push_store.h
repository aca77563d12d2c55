#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/clock.h"
#include "common/text_format/text_format.h"

namespace meshflow::gateway {

// The last good push of a node, immutable once stored so readers share it without copying.
struct PushedBody {
  std::string body;
  std::shared_ptr<const Exposition> exposition;
  std::chrono::nanoseconds received_monotonic{0};
  double received_wall_seconds = 0;
  std::chrono::nanoseconds ttl{0};
};

// What a push attempt carries, as plain data taken from the HTTP request.
struct PushRequest {
  std::string node;           // the node the push is for (?node=)
  std::string authorization;  // the Authorization header
  std::string content_type;
  std::string content_encoding;
  std::optional<std::chrono::nanoseconds> announced_interval;  // from the pusher's header
  std::string body;
};

struct PushOutcome {
  int http_status = 200;
  std::string reason;   // rejection reason, a metric label value; empty when accepted
  std::string message;  // for the pusher's log
  bool accepted() const { return reason.empty(); }
};

// Keeps the latest validated push of each configured push node and says whether it is still
// fresh. Pushes replace the stored body only when they pass every check, so a bad push never
// makes a node's series disappear or change.
class PushStore {
 public:
  struct Settings {
    std::map<std::string, std::string> tokens;  // node -> bearer token
    std::chrono::nanoseconds ttl{0};            // 0: 3 x announced (or default) interval
    std::chrono::nanoseconds default_interval = std::chrono::seconds(5);
    size_t max_body_bytes = 4 << 20;
  };

  explicit PushStore(const Clock& clock) : clock_(clock) {}

  // Applies a (re)loaded config; bodies of nodes no longer configured are dropped.
  void Configure(Settings settings);

  PushOutcome Push(const PushRequest& request);

  enum class State { kFresh, kStale, kNever, kUnknownNode };
  struct Lookup {
    State state = State::kUnknownNode;
    std::shared_ptr<const PushedBody> body;  // set for kFresh and kStale
    std::chrono::nanoseconds age{0};
  };
  Lookup Get(const std::string& node) const;

  bool IsPushNode(const std::string& node) const;
  std::vector<std::string> Nodes() const;
  // Rejections so far, by reason.
  std::map<std::string, uint64_t> RejectedByReason() const;

  // Every rejection reason, so the counters exist at 0 before the first rejection.
  static const std::vector<std::string>& Reasons();

 private:
  PushOutcome Reject(int status, std::string reason, std::string message);

  const Clock& clock_;
  mutable std::mutex mutex_;
  Settings settings_;
  std::map<std::string, std::shared_ptr<const PushedBody>> latest_;
  std::map<std::string, uint64_t> rejected_;
};

// Compares in time that depends only on the lengths, so a token cannot be guessed byte by byte.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace meshflow::gateway
