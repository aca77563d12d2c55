#include <signal.h>

#include <cstdlib>
#include <iostream>

#include "exporter/core/config_reader.h"
#include "exporter/core/log.h"
#include "exporter/exporter.h"
#include "exporter/flags.h"

namespace {

// Signals are taken synchronously by the main thread; every other thread inherits the mask,
// so SIGHUP never lands in a civetweb or capture thread.
sigset_t BlockControlSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

}  // namespace

int main(int argc, char** argv) {
  meshflow::ExporterFlags flags;
  if (auto exit_code = meshflow::ParseExporterFlags(argc, argv, flags)) return *exit_code;
  meshflow::SetUpLogging(flags.log_level, flags.log_format == "json"
                                              ? meshflow::LogFormat::kJson
                                              : meshflow::LogFormat::kLogfmt);
  const sigset_t signals = BlockControlSignals();
  meshflow::Exporter exporter(flags.exporter);
  try {
    exporter.Start();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
  for (;;) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) continue;
    if (signal == SIGHUP) {
      exporter.Reload();
      continue;
    }
    spdlog::info("received {}, stopping", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    exporter.Stop();
    spdlog::info("stopped");
    return 0;
  }
}
