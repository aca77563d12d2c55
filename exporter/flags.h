#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/daemon/daemon_flags.h"
#include "exporter/exporter.h"
#include "exporter/pusher.h"

namespace meshflow {

// Everything the command line sets, in the Prometheus exporter-toolkit style.
struct ExporterFlags {
  DaemonFlags daemon;  // the flags both daemons share; copied into `exporter` after parsing
  ExporterOptions exporter;
  std::vector<std::string> replay_files;  // --replay: run captures offline and exit
  PusherOptions push;                     // --push.*: push to a gateway; empty url: off
  std::string runas;                      // user to switch to after opening sockets, as root
};

// Parses the command line. Returns the exit code when the program should stop now (--help,
// --version, a bad flag), nullopt to go on.
std::optional<int> ParseExporterFlags(int argc, const char* const* argv, ExporterFlags& flags);

}  // namespace meshflow
