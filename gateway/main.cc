#include <spdlog/spdlog.h>

#include <iostream>

#include "common/daemon/config_check.h"
#include "common/daemon/control_loop.h"
#include "gateway/flags.h"
#include "gateway/gateway.h"

int main(int argc, char** argv) {
  meshflow::gateway::SetMallocPolicy();
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
