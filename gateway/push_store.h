#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/clock.h"
#include "common/text_format/text_format.h"
#include "gateway/memory_budget.h"

namespace meshflow::gateway {

// The last good push of a node, immutable once stored so readers share it without copying.
struct PushedBody {
  std::string body;  // the exposition as written back: one header per family, a final newline
  std::shared_ptr<const text_format::Exposition> exposition;
  std::chrono::nanoseconds received_monotonic{0};
  double received_wall_seconds = 0;
  std::chrono::nanoseconds ttl{0};
  size_t cost_bytes = 0;  // what it holds of the memory budget
};

// What a push attempt carries, as plain data taken from the HTTP request.
struct PushRequest {
  std::string node;           // the node the push is for (?node=)
  std::string authorization;  // the Authorization header
  std::string content_type;
  std::string content_encoding;
  std::optional<std::chrono::nanoseconds> announced_interval;  // from the pusher's header
  bool length_known = true;  // false: neither Content-Length nor chunked encoding (411)
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
// makes a node's series disappear or change. What one node pushes cannot break what the others
// federate: a family whose type another node's stored push declares differently is refused
// (409), as are the __name__ label and duplicate series (by the parser). Stored pushes and
// pushes being parsed hold bytes of the memory budget; past it a push is refused with 429.
class PushStore {
 public:
  struct Settings {
    std::map<std::string, std::string> tokens;  // node -> bearer token
    std::chrono::nanoseconds ttl{0};            // 0: 3 x announced (or default) interval
    std::chrono::nanoseconds default_interval = std::chrono::seconds(5);
    size_t max_body_bytes = 4 << 20;
    size_t max_series_per_push = 50'000;
  };

  // `budget` (not owned) is shared with the gateway's other consumers; null: unbounded.
  explicit PushStore(const Clock& clock, MemoryBudget* budget = nullptr)
      : clock_(clock), budget_(budget ? budget : &unbounded_) {}

  // Applies a (re)loaded config; bodies of nodes no longer configured are dropped.
  void Configure(Settings settings);

  PushOutcome Push(const PushRequest& request);
  // The credential checks of Push() alone, from the headers: run before a body is read, so an
  // unauthenticated client costs nothing for what it announces. Nullopt when they pass.
  std::optional<PushOutcome> Authorize(const std::string& node, const std::string& authorization);

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
  std::optional<PushOutcome> AuthorizeLocked(const std::string& node,
                                             const std::string& authorization);
  // Adds (+1) or removes (-1) a stored exposition's families in families_.
  void Index(const text_format::Exposition& exposition, int delta);
  void Drop(std::map<std::string, std::shared_ptr<const PushedBody>>::iterator it);

  const Clock& clock_;
  mutable std::mutex mutex_;
  Settings settings_;
  std::map<std::string, std::shared_ptr<const PushedBody>> latest_;
  std::map<std::string, uint64_t> rejected_;
  // For every family name with samples in some stored push: its type and how many nodes have it.
  std::map<std::string, std::pair<text_format::MetricKind, int>, std::less<>> families_;
  MemoryBudget unbounded_{SIZE_MAX / 2};
  MemoryBudget* budget_;
};

// A family named like a histogram's or summary's own samples (x_bucket, x_sum, x_count) is read
// by Prometheus as part of x when x is one: returns that x, asking `kind_of` for the type a family
// name has (nullopt: no such family).
std::optional<std::string> CollidingBase(
    const std::string& name,
    const std::function<std::optional<text_format::MetricKind>(const std::string&)>& kind_of);

// The text exposition written back from a parsed one: every family together under its header,
// each line in canonical form, a final newline. Untyped families without HELP keep no header
// unless their name could be read as part of a histogram or summary.
std::string WriteExposition(const text_format::Exposition& exposition);
// Bytes a parsed exposition holds in memory, allocations included (an estimate from above).
size_t ExpositionCost(const text_format::Exposition& exposition);

// Compares in time that depends only on the lengths, so a token cannot be guessed byte by byte.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace meshflow::gateway
