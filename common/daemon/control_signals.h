#pragma once

#include <signal.h>

namespace meshflow {

// Blocks SIGHUP, SIGTERM and SIGINT in the calling thread and returns that set for sigwait().
// Called by main() before any thread starts: every thread inherits the mask, so the signals are
// taken synchronously by the main thread and SIGHUP never lands in an HTTP or capture thread.
inline sigset_t BlockControlSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

}  // namespace meshflow
