#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <vector>

#include "common/discovery/hello.h"

namespace meshflow::discovery {

struct HelloStats {
  uint64_t sent = 0;
  uint64_t answered = 0;
  uint64_t malformed = 0;  // replies that failed to decode, or carried a nonce never sent there
};

// Sends one hello to each target's UDP reflector and waits up to `timeout` for the replies.
// A reply counts only when it comes from the address the request went to, with its nonce.
std::map<IpAddress, HelloIdentity> AskHello(const std::vector<IpAddress>& targets, uint16_t port,
                                            std::chrono::milliseconds timeout, HelloStats* stats);

}  // namespace meshflow::discovery
