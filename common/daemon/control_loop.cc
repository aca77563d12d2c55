#include "common/daemon/control_loop.h"

#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace meshflow {

ControlLoop::ControlLoop(bool take_signals) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  if (!take_signals) return;
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGHUP);
  sigaddset(&signals_, SIGTERM);
  sigaddset(&signals_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  signal_fd_ = ::signalfd(-1, &signals_, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd_ < 0) throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));
}

ControlLoop::~ControlLoop() {
  if (signal_fd_ >= 0) ::close(signal_fd_);
  ::close(wake_fd_);
}

void ControlLoop::Wake() {
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

ReloadOutcome ControlLoop::RequestReload() {
  std::unique_lock lock(mutex_);
  if (stopped_ || quit_) return {false, "the daemon is stopping"};
  const uint64_t ticket = ++requested_;
  Wake();
  done_.wait(lock, [&] { return served_ >= ticket || stopped_; });
  if (served_ >= ticket) return last_;
  return {false, "the daemon is stopping"};
}

void ControlLoop::Quit() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  Wake();
}

int ControlLoop::Run(const std::function<ReloadOutcome()>& reload) {
  int stop_signal = 0;
  for (;;) {
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {signal_fd_, POLLIN, 0}};
    if (::poll(fds, signal_fd_ >= 0 ? 2 : 1, -1) < 0) continue;  // EINTR
    bool reload_now = false;
    if (fds[0].revents & POLLIN) {
      uint64_t n = 0;
      (void)!::read(wake_fd_, &n, sizeof n);
    }
    if (signal_fd_ >= 0 && (fds[1].revents & POLLIN)) {
      signalfd_siginfo info{};
      while (::read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo == SIGHUP) {
          reload_now = true;
        } else if (stop_signal == 0) {
          stop_signal = static_cast<int>(info.ssi_signo);
        }
      }
    }
    uint64_t answering = 0;
    {
      std::lock_guard lock(mutex_);
      if (quit_ || stop_signal != 0) break;
      answering = requested_;
      reload_now |= answering > served_;
    }
    if (!reload_now) continue;
    ReloadOutcome outcome = reload();
    {
      std::lock_guard lock(mutex_);
      last_ = std::move(outcome);
      served_ = answering;
    }
    done_.notify_all();
  }
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
  }
  done_.notify_all();
  if (stop_signal != 0) {
    spdlog::info("received {}, stopping", stop_signal == SIGTERM ? "SIGTERM" : "SIGINT");
  }
  return stop_signal;
}

}  // namespace meshflow
