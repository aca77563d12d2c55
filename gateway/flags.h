#pragma once

#include <optional>

#include "common/daemon/daemon_flags.h"
#include "gateway/gateway.h"

namespace meshflow::gateway {

// Everything the gateway's command line sets.
struct GatewayFlags {
  DaemonFlags daemon;  // the flags both daemons share; copied into `gateway` after parsing
  GatewayOptions gateway;
};

// Parses the command line. Returns the exit code when the program should stop now (--help,
// --version, a bad flag), nullopt to go on.
std::optional<int> ParseGatewayFlags(int argc, const char* const* argv, GatewayFlags& flags);

}  // namespace meshflow::gateway
