#include <spdlog/spdlog.h>

#include <iostream>

#include "common/daemon/config_check.h"
#include "common/daemon/control_loop.h"
#include "gateway/flags.h"
#include "gateway/gateway.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

int main(int argc, char** argv) {
#ifdef __GLIBC__
  // Scrape bodies are allocated on the scraper's worker threads (up to scrape.concurrency) and
  // freed on the scrape loop's; glibc gives each thread an arena of its own, whose free memory
  // only that arena reuses, so the resident size grew with the thread count. Two arenas bound it.
  mallopt(M_ARENA_MAX, 2);
  // Each scrape round builds a few buffers of megabytes (the round's samples, each shard's
  // requests) and frees them. glibc raises its mmap threshold to the largest such buffer freed,
  // after which they come from the heap and its high-water mark stays resident. A fixed
  // threshold keeps them mmapped, returned to the system when freed.
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
#endif
  meshflow::gateway::GatewayFlags flags;
  if (auto exit_code = meshflow::gateway::ParseGatewayFlags(argc, argv, flags)) return *exit_code;
  if (flags.daemon.config_check) {
    return meshflow::CheckConfigFiles(
        flags.gateway.config_file,
        [](const std::string& f) { meshflow::gateway::LoadGatewayConfigFile(f); },
        "no --config.file: no targets until a config names some", flags.gateway.web_config_file);
  }
  try {
    meshflow::SetUpDaemonLogging(flags.daemon);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  meshflow::ControlLoop control;  // before any thread: it takes the control signals
  if (flags.daemon.enable_lifecycle) {
    flags.gateway.request_reload = [&control] { return control.RequestReload(); };
  }
  meshflow::gateway::Gateway gateway(flags.gateway);
  try {
    gateway.Start();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
  control.Run([&gateway] { return gateway.Reload(); });
  gateway.Stop();
  return 0;
}
