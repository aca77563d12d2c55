#include "collectors/probe/resolver.h"

#include <netdb.h>

#include <cstring>
#include <thread>

#include "collectors/probe/sockets.h"
#include "common/core/log.h"

namespace meshflow::probe {

Resolver::~Resolver() { Stop(); }

void Resolver::Start(nanoseconds refresh) {
  if (running_) return;
  // A fresh state: a thread left over from an earlier Stop() still holds the old one.
  auto state = std::make_shared<State>();
  {
    std::lock_guard lock(state_->mutex);
    state->names = state_->names;
    state->results = state_->results;
  }
  state->refresh = refresh;
  state->changed = true;
  state_ = state;
  std::thread(Run, state_).detach();
  running_ = true;
}

void Resolver::Stop() {
  if (!running_) return;
  {
    std::lock_guard lock(state_->mutex);
    state_->stop = true;
  }
  state_->wake.notify_all();
  running_ = false;
}

void Resolver::SetNames(std::vector<std::string> names) {
  {
    std::lock_guard lock(state_->mutex);
    if (names == state_->names) return;
    state_->names = std::move(names);
    state_->changed = true;
  }
  state_->wake.notify_all();
}

std::optional<IpAddress> Resolver::Lookup(const std::string& name) const {
  std::lock_guard lock(state_->mutex);
  auto it = state_->results.find(name);
  if (it == state_->results.end()) return std::nullopt;
  return it->second;
}

void Resolver::Run(std::shared_ptr<State> state) {
  std::unique_lock lock(state->mutex);
  while (!state->stop) {
    const std::vector<std::string> names = state->names;
    state->changed = false;
    lock.unlock();
    std::unordered_map<std::string, IpAddress> results;
    for (const std::string& name : names) {
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_DGRAM;
      addrinfo* list = nullptr;
      if (getaddrinfo(name.c_str(), nullptr, &hints, &list) != 0 || list == nullptr) {
        spdlog::warn("probe: cannot resolve {}", name);
        continue;
      }
      SocketAddress s;
      std::memcpy(&s.storage, list->ai_addr, list->ai_addrlen);
      s.length = list->ai_addrlen;
      results.emplace(name, s.address());
      freeaddrinfo(list);
    }
    lock.lock();
    // Keep the last good answer of a name that failed this round.
    for (auto& [name, address] : results) state->results[name] = address;
    state->wake.wait_for(lock, state->refresh, [&] { return state->stop || state->changed; });
  }
}

}  // namespace meshflow::probe
