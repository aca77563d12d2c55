// meshflow-overlay-emulator: builds the test bed's network namespaces from a topology file and
// carries overlay packets between them with per-direction delay, jitter, loss and rate limits.

#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "common/core/config_reader.h"
#include "tests/testbed/emulator/control.h"
#include "tests/testbed/emulator/mover.h"
#include "tests/testbed/emulator/netns.h"
#include "tests/testbed/emulator/overlay.h"
#include "tests/testbed/emulator/topology.h"

namespace {

using meshflow::testbed::LoadTopologyFile;

// A listening unix socket at `path`. A path left by a dead emulator is replaced; one that still
// answers belongs to a running emulator and is an error.
int ListenUnix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    throw std::runtime_error("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const auto* sa = reinterpret_cast<const sockaddr*>(&addr);
  const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe >= 0) {
    const bool alive = connect(probe, sa, sizeof addr) == 0;
    close(probe);
    if (alive) throw std::runtime_error("an emulator already answers on " + path);
  }
  unlink(path.c_str());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0 || bind(fd, sa, sizeof addr) != 0 || listen(fd, 16) != 0)
    throw std::runtime_error("control socket " + path + ": " + std::strerror(errno));
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Emulates a tailscale-like overlay between network namespaces"};
  std::string topology_path;
  std::string prefix = "mf-";
  std::string socket_path;
  std::string log_level = "info";
  app.add_option("--topology", topology_path, "Topology YAML file")->required();
  app.add_option("--netns-prefix", prefix, "Prefix of every namespace name (starts with mf)")
      ->capture_default_str();
  app.add_option("--socket", socket_path, "Unix socket for meshflow-overlay-ctl (required)");
  app.add_option("--log.level", log_level, "debug, info, warn or error")->capture_default_str();
  int realtime_priority = 10;
  app.add_option("--realtime-priority", realtime_priority,
                 "SCHED_FIFO priority of the packet mover (0: normal scheduling); keeps the "
                 "delay precise while compilers load every core")
      ->capture_default_str()
      ->check(CLI::Range(0, 99));
  std::string mode_name = "tun";
  app.add_option("--overlay", mode_name,
                 "tun: the devices carry the overlay itself; wireguard: they carry the underlay "
                 "and wireguard-go (started by tests/testbed/up) makes the overlay")
      ->capture_default_str()
      ->check(CLI::IsMember({"tun", "wireguard"}));
  bool check_only = false;
  app.add_flag("--check", check_only, "Only parse the topology and print the link table");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e level=%l msg=\"%v\"");

  meshflow::testbed::Topology topology;
  try {
    topology = LoadTopologyFile(topology_path);
  } catch (const meshflow::ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  const auto mode = mode_name == "wireguard" ? meshflow::testbed::OverlayMode::kWireGuard
                                             : meshflow::testbed::OverlayMode::kTun;
  if (check_only) {
    meshflow::testbed::Overlay overlay(topology, mode);
    std::cout << meshflow::testbed::FormatState(overlay);
    return 0;
  }
  if (socket_path.empty()) {
    std::cerr << "--socket is required\n";
    return 2;
  }
  if (prefix.rfind("mf", 0) != 0 || prefix.size() > 16) {
    std::cerr << "--netns-prefix must start with \"mf\" and be at most 16 characters\n";
    return 2;
  }

  // Signals arrive through the event loop, so a stop never interrupts a half-built network.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  const int signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
  // The default 50 us timer slack would be added to every delayed packet's wake-up.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  if (realtime_priority > 0) {
    // The mover blocks in epoll between packets and spins at most MoverLimits::spin, and the
    // kernel's RT throttling keeps 5% of each core for others, so a real-time class is safe.
    sched_param sp{};
    sp.sched_priority = realtime_priority;
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
      spdlog::warn("SCHED_FIFO unavailable ({}); delays may stretch under CPU load",
                   std::strerror(errno));
  }

  try {
    meshflow::testbed::NetworkBuilder network(topology, prefix, mode);
    network.Build();
    const int control_fd = ListenUnix(socket_path);
    meshflow::testbed::Overlay overlay(topology, mode);
    meshflow::testbed::Mover mover(&overlay, network.tun_fds(), control_fd, signal_fd);
    spdlog::info("overlay {} up: {} nodes, control socket {}", topology.name, topology.nodes.size(),
                 socket_path);
    std::cout << "ready" << std::endl;
    mover.Run();
    close(control_fd);
    unlink(socket_path.c_str());
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 0;
}
