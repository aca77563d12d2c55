#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "collectors/flow/capture/interface_selector.h"
#include "collectors/flow/capture/link_table.h"
#include "collectors/flow/capture/live_handle.h"
#include "collectors/flow/capture/wrapping_counter.h"
#include "collectors/flow/packet_sink.h"
#include "common/config/config.h"
#include "common/core/clock.h"

namespace meshflow::flow {

// Capture health of one interface name; it outlives the handles opened under that name.
struct InterfaceHealth {
  std::string name;
  bool up = false;  // a handle is open and has not failed
  bool filter_in_kernel = false;
  int64_t ring_bytes = 0;        // obtained, not requested
  uint64_t kernel_drops = 0;     // ps_drop: the ring was full
  uint64_t interface_drops = 0;  // the interface's rx_dropped while we captured
  uint64_t open_failures = 0;
};

struct CaptureLoopCounters {
  uint64_t netlink_malformed = 0;
  uint64_t netlink_overruns = 0;
  uint64_t interfaces_refused = 0;  // past kMaxInterfaces
};

// Handle options from the config's capture section.
HandleOptions HandleOptionsFrom(const CaptureConfig& config);

// Keeps one live handle per selected interface and feeds them all from ONE thread: epoll over the
// handles' selectable fds, a netlink socket for link changes and an eventfd for stop/reconfigure.
class CaptureLoop {
 public:
  // How many interface names are remembered; a host that creates interfaces without end (pods'
  // veths selected by a broad pattern) must not grow the series without end.
  static constexpr size_t kMaxInterfaces = 256;

  // `sink` is called on the loop thread only, and flushed after each turn of reads; it guards
  // itself against the scrapes that read it meanwhile (FlowPipeline). `addresses_changed`, when
  // set, is called on the loop thread after an interface opened or an address was added or
  // removed.
  CaptureLoop(const CaptureConfig& config, PacketSink& sink,
              const Clock& clock = SystemClock::Instance(),
              std::function<void()> addresses_changed = {});
  ~CaptureLoop();
  CaptureLoop(const CaptureLoop&) = delete;
  CaptureLoop& operator=(const CaptureLoop&) = delete;

  // Starts the thread. Throws std::system_error when epoll, eventfd or netlink cannot be made.
  void Start();
  // Closes every handle and joins the thread; returns within one dispatch batch.
  void Stop();
  // Takes effect on the loop thread at once; counters survive.
  void Reconfigure(const CaptureConfig& config);
  std::vector<InterfaceHealth> Health() const;
  CaptureLoopCounters Counters() const;

 private:
  struct Open {
    std::unique_ptr<LiveHandle> handle;
    int ifindex = 0;
    uint32_t interface_id = 0;
    uint64_t tag = 0;
    int64_t rx_dropped_at_open = 0;
  };
  struct State {
    bool up = false;
    bool filter_in_kernel = false;
    int64_t ring_bytes = 0;
    WrappingCounter kernel_drops;
    uint64_t interface_drops = 0;
    uint64_t open_failures = 0;
    std::string last_error;  // of the last failed open, so a repeated failure is logged once
  };

  void Run();
  void Wake();
  void ApplyPendingConfig();
  void Replan();
  void OpenInterface(const LinkState& link);
  void CloseInterface(const std::string& name, bool failed);
  void ReadStats(const std::string& name, Open& open);
  void ReadAllStats();

  PacketSink& sink_;
  const Clock& clock_;
  std::function<void()> addresses_changed_;

  // Loop thread only.
  CaptureConfig config_;
  std::unique_ptr<InterfaceSelector> selector_;
  LinkTable links_;
  std::unique_ptr<NetlinkLinkSource> netlink_;
  std::map<std::string, Open> open_;
  uint64_t next_tag_ = 2;  // 0: the wakeup fd, 1: netlink

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};

  mutable std::mutex pending_mutex_;
  std::optional<CaptureConfig> pending_;

  mutable std::mutex state_mutex_;
  std::map<std::string, State> states_;
  CaptureLoopCounters counters_;
};

}  // namespace meshflow::flow
