#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tests/testbed/emulator/delay_line.h"
#include "tests/testbed/emulator/overlay.h"

namespace meshflow::testbed {

// The packet mover and control server: one thread, epoll over every node's TUN fd, the control
// socket, its connected clients and a signalfd; releases packets on CLOCK_MONOTONIC. A control
// client is read as its bytes arrive, never waited for: a client preempted between connecting
// and writing its command must not hold packets back.
class Mover {
 public:
  Mover(Overlay* overlay, std::vector<int> tun_fds, int control_fd, int signal_fd,
        MoverLimits limits = {});
  ~Mover();
  Mover(const Mover&) = delete;
  Mover& operator=(const Mover&) = delete;
  // Runs until the signalfd reports SIGINT or SIGTERM. Throws std::runtime_error on a setup
  // failure (epoll).
  void Run();

 private:
  void ReadDevice(size_t node);
  void ReleaseDue();
  void AcceptControl();
  void ReadControl(int client);
  void Reply(int client, const std::string& request);
  void CloseControl(int client);
  // Closes clients that have not sent a whole command within kControlClientTimeout, and so
  // bounds what a stuck client holds.
  void ExpireControl();
  void Wait(std::chrono::nanoseconds timeout, bool* stop);

  Overlay* overlay_;
  std::vector<int> tun_fds_;
  int control_fd_;
  int signal_fd_;
  int epoll_fd_ = -1;
  MoverLimits limits_;
  DelayLine line_;
  std::vector<uint8_t> buffer_;
  struct ControlClient {
    std::string request;
    std::chrono::nanoseconds accepted{0};
  };
  std::map<int, ControlClient> clients_;  // by fd
};

}  // namespace meshflow::testbed
