#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/core/ip_address.h"

namespace meshflow::probe {

using std::chrono::nanoseconds;

// Re-resolves DNS names off the probing thread, so a slow resolver never delays a probe.
class Resolver {
 public:
  Resolver() = default;
  ~Resolver();
  void Start(nanoseconds refresh);
  // Returns at once: a thread stuck in getaddrinfo (which cannot be interrupted) is left to
  // finish on its own; it holds only its own shared state.
  void Stop();
  void SetNames(std::vector<std::string> names);
  std::optional<IpAddress> Lookup(const std::string& name) const;

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable wake;
    std::vector<std::string> names;
    std::unordered_map<std::string, IpAddress> results;
    nanoseconds refresh{std::chrono::seconds(60)};
    bool stop = false;
    bool changed = false;
  };
  static void Run(std::shared_ptr<State> state);

  std::shared_ptr<State> state_ = std::make_shared<State>();
  bool running_ = false;
};

}  // namespace meshflow::probe
