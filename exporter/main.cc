#include <linux/capability.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "collectors/flow/replay.h"
#include "common/core/config_reader.h"
#include "common/core/log.h"
#include "common/daemon/control_signals.h"
#include "common/web/web_config_watcher.h"
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

// --config.check: loads the config file and the web config (with the certificate files it
// names) as a start would, without opening a socket. Every file is checked even when an
// earlier one fails, so one run shows every problem; each is located by file, line and field.
int CheckConfigFiles(const std::string& config_file, const std::string& web_config_file) {
  int failed = 0;
  const auto check = [&failed](const std::string& file, const auto& load) {
    try {
      load(file);
      std::cout << file << ": ok\n";
    } catch (const std::exception& e) {
      std::cerr << e.what() << "\n";
      ++failed;
    }
  };
  if (config_file.empty()) {
    std::cout << "no --config.file: the built-in default configuration\n";
  } else {
    check(config_file, [](const std::string& f) { meshflow::LoadConfigFile(f); });
  }
  if (!web_config_file.empty()) {
    check(web_config_file, [](const std::string& f) { meshflow::web::WebConfigWatcher{f}; });
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // glibc gives each thread that allocates its own malloc arena; every civetweb worker that
  // serves a scrape keeps one, and resident memory grew from 16 MB to 45 MB over 60 scrapes.
  // Two arenas keep the 1 GB node's exporter small at no measurable cost to a 5 s scrape.
  mallopt(M_ARENA_MAX, 2);
  meshflow::ExporterFlags flags;
  if (auto exit_code = meshflow::ParseExporterFlags(argc, argv, flags)) return *exit_code;
  if (flags.config_check) {
    return CheckConfigFiles(flags.exporter.config_file, flags.exporter.web_config_file);
  }
  meshflow::SetUpLogging(flags.log_level, flags.log_format == "json"
                                              ? meshflow::LogFormat::kJson
                                              : meshflow::LogFormat::kLogfmt);
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
  const sigset_t signals = meshflow::BlockControlSignals();
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
  std::unique_ptr<meshflow::gateway::Pusher> pusher;
  try {
    if (!flags.push.url.empty()) {
      pusher = std::make_unique<meshflow::gateway::Pusher>(flags.push);
      exporter.AddCollector("push", pusher->MakeCollector());
    }
    exporter.Start();
    // Capture handles and probe sockets are open now; keep only what is needed later.
    meshflow::DropPrivilegesAfterStart(meshflow::CapabilitiesToKeep(
        exporter.CollectorNames(), exporter.config().flows.capture.promiscuous));
    if (pusher) {
      pusher->Start(exporter.config().node_name, [&exporter] { return exporter.Scrape(); });
    }
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
  LogPrivileges(started, flags.runas);
  for (;;) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) continue;
    if (signal == SIGHUP) {
      exporter.Reload();
      continue;
    }
    spdlog::info("received {}, stopping", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    if (pusher) pusher->Stop();
    exporter.Stop();
    spdlog::info("stopped");
    return 0;
  }
}
