#include <linux/capability.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "collectors/flow/replay.h"
#include "common/core/config_reader.h"
#include "common/core/log.h"
#include "common/daemon/config_check.h"
#include "common/daemon/control_loop.h"
#include "exporter/exporter.h"
#include "exporter/flags.h"
#include "exporter/privileges.h"
#include "exporter/pusher.h"

namespace {

// `started`: the privileges before any was dropped.
void LogPrivileges(const meshflow::ProcessPrivileges& started, const std::string& runas) {
  const meshflow::ProcessPrivileges p = meshflow::ReadOwnPrivileges();
  std::string caps;
  for (int c = 0; c < 64; ++c) {
    if (((p.cap_permitted >> c) & 1) == 0) continue;
    // Appended piecewise: gcc 12 at -O2 misreports `"," + std::string` under -Werror=restrict.
    if (!caps.empty()) caps += ',';
    caps += meshflow::CapabilityName(c);
  }
  spdlog::info("running as uid={} gid={} capabilities=[{}] no_new_privs={}", p.euid, p.gid, caps,
               p.no_new_privs);
  // Full root: uid 0 with the capabilities that make it root (a container's uid 0 holding only
  // CAP_NET_RAW is not). The capabilities are gone by now, but uid 0 still owns root's files.
  const bool full_root = started.euid == 0 && ((started.cap_permitted >> CAP_SYS_ADMIN) & 1);
  if (full_root && p.euid == 0) {
    spdlog::warn(
        "started as root with full capabilities and still uid 0: start it as a dedicated "
        "user with CAP_NET_RAW (see the systemd unit) or pass --runas USER");
  } else if (!runas.empty() && p.uid != p.euid) {
    spdlog::warn("--runas {} left the real uid at {}", runas, p.uid);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // glibc gives each thread that allocates its own malloc arena; every civetweb worker that
  // serves a scrape keeps one, and resident memory grew from 16 MB to 45 MB over 60 scrapes.
  // Two arenas keep the 1 GB node's exporter small at no measurable cost to a 5 s scrape.
  mallopt(M_ARENA_MAX, 2);
  meshflow::ExporterFlags flags;
  if (auto exit_code = meshflow::ParseExporterFlags(argc, argv, flags)) return *exit_code;
  if (flags.daemon.config_check) {
    return meshflow::CheckConfigFiles(
        flags.exporter.config_file, [](const std::string& f) { meshflow::LoadConfigFile(f); },
        "no --config.file: the built-in default configuration", flags.exporter.web_config_file);
  }
  meshflow::SetUpDaemonLogging(flags.daemon);
  if (!flags.replay_files.empty()) {
    // Offline: the same pipeline as live capture, over files; no server, no privileges needed.
    try {
      const meshflow::Config config = flags.exporter.config_file.empty()
                                          ? meshflow::DefaultConfig()
                                          : meshflow::LoadConfigFile(flags.exporter.config_file);
      return meshflow::flow::ReplayCaptures(config, flags.replay_files, std::cout, std::cerr);
    } catch (const meshflow::ConfigError& e) {
      std::cerr << e.what() << "\n";
      return 1;
    }
  }
  meshflow::ControlLoop control;  // before any thread: it takes the control signals
  if (flags.daemon.enable_lifecycle) {
    flags.exporter.request_reload = [&control] { return control.RequestReload(); };
  }
  if (!flags.runas.empty() && geteuid() != 0) {
    spdlog::warn("--runas {} ignored: not started as root", flags.runas);
  }
  // Before any thread exists: capabilities are per thread, and threads inherit them.
  meshflow::ProcessPrivileges started;
  try {
    started = meshflow::ReadOwnPrivileges();
    meshflow::DropPrivilegesBeforeStart(flags.runas);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  meshflow::Exporter exporter(flags.exporter);
  std::unique_ptr<meshflow::Pusher> pusher;
  try {
    if (!flags.push.url.empty()) {
      pusher = std::make_unique<meshflow::Pusher>(flags.push);
      exporter.AddCollector("push", pusher->MakeCollector());
    }
    exporter.Start();
    // Capture handles and probe sockets are open now; keep only what is needed later.
    meshflow::DropPrivilegesAfterStart(exporter.CapabilitiesWhileRunning());
    if (pusher) {
      pusher->Start(exporter.config().node_name, [&exporter] { return exporter.Scrape(); });
    }
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
  LogPrivileges(started, flags.runas);
  control.Run([&exporter] { return exporter.Reload(); });
  if (pusher) pusher->Stop();
  exporter.Stop();
  spdlog::info("stopped");
  return 0;
}
