#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/ip_address.h"

namespace meshflow::discovery {

// One node as a source saw it. Sources that know no names (WireGuard, DNS) leave `name` empty;
// self-identification (hello.h) or the address itself names it later.
struct DiscoveredNode {
  std::string name;
  std::vector<IpPrefix> addresses;  // the first host address is the one probed
  std::string source;               // the source's name, for logs and conflicts

  bool operator==(const DiscoveredNode&) const = default;
};

// The outcome of one poll: the full current set, or an error that leaves the last good set alone.
struct PollResult {
  std::optional<std::vector<DiscoveredNode>> nodes;  // empty optional: the poll failed
  std::string error;                                 // why, when it failed

  static PollResult Ok(std::vector<DiscoveredNode> nodes) { return {std::move(nodes), {}}; }
  static PollResult Fail(std::string why) { return {std::nullopt, std::move(why)}; }
};

// At most `max` bytes of a peer's text for an error message: control characters become spaces
// (one log line stays one line) and trailing space is dropped.
inline std::string Snippet(std::string_view text, size_t max = 200) {
  std::string out(text.substr(0, max));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// A place nodes are found. Poll() returns the whole set each time and may block for a bounded
// time (a Kubernetes watch waits up to its timeout); it is called from one thread only.
class Source {
 public:
  using Update = std::function<void(std::vector<DiscoveredNode>)>;

  virtual ~Source() = default;
  virtual std::string_view name() const = 0;
  virtual PollResult Poll() = 0;
  // True when Poll() itself waits for changes (a watch), so it is called again at once.
  virtual bool Waits() const { return false; }

  // A waiting Poll() hands each new whole set to `update` as soon as it has it, before it
  // returns (the runner sets this once, before the first poll).
  void SetUpdate(Update update) { update_ = std::move(update); }
  // Asks a waiting Poll() to return now (a failure); later polls return at once too. Any thread.
  void Cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 protected:
  void Publish(std::vector<DiscoveredNode> nodes) const {
    if (update_) update_(std::move(nodes));
  }

 private:
  Update update_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace meshflow::discovery
