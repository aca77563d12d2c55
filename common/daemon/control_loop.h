#pragma once

#include <signal.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

namespace meshflow {

// What a reload came to: ok, or the located reason it was refused.
struct ReloadOutcome {
  bool ok = false;
  std::string error;
};

// The daemon's main thread: it alone reloads the config, whether SIGHUP or POST /-/reload asks,
// and stops on SIGTERM or SIGINT. A config is thus always parsed on the main thread's stack,
// never on an HTTP worker's, and two reloads never run at once.
class ControlLoop {
 public:
  // With `take_signals`, blocks SIGHUP, SIGTERM and SIGINT in the calling thread and takes them
  // in Run(): construct it in main() before any thread starts, since threads inherit the mask
  // and a signal must never land in an HTTP or capture thread. Without, only requests and
  // Quit() drive the loop (tests).
  explicit ControlLoop(bool take_signals = true);
  ~ControlLoop();
  ControlLoop(const ControlLoop&) = delete;
  ControlLoop& operator=(const ControlLoop&) = delete;

  // Runs `reload` on the calling thread for every SIGHUP and every RequestReload() until SIGTERM,
  // SIGINT or Quit(); returns the signal that stopped it (0 for Quit()).
  int Run(const std::function<ReloadOutcome()>& reload);
  // From any thread: has the loop reload and waits for the outcome. Requests that wait together
  // share one reload, which starts after all of them were made. Refused once the loop stopped.
  ReloadOutcome RequestReload();
  // From any thread: ends Run().
  void Quit();

 private:
  void Wake();

  sigset_t signals_{};
  int signal_fd_ = -1;
  int wake_fd_ = -1;
  std::mutex mutex_;
  std::condition_variable done_;
  uint64_t requested_ = 0;  // reload requests made so far
  uint64_t served_ = 0;     // requests the last finished reload answered
  ReloadOutcome last_;
  bool quit_ = false;
  bool stopped_ = false;
};

}  // namespace meshflow
