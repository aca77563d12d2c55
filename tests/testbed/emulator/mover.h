#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/testbed/emulator/delay_line.h"
#include "tests/testbed/emulator/overlay.h"

namespace meshflow::testbed {

// The packet mover and control server: one thread, epoll over every node's TUN fd, the control
// socket and a signalfd; releases packets on CLOCK_MONOTONIC.
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
  void ServeControl();
  void Wait(std::chrono::nanoseconds timeout, bool* stop);

  Overlay* overlay_;
  std::vector<int> tun_fds_;
  int control_fd_;
  int signal_fd_;
  int epoll_fd_ = -1;
  MoverLimits limits_;
  DelayLine line_;
  std::vector<uint8_t> buffer_;
};

}  // namespace meshflow::testbed
