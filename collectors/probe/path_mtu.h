#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "collectors/probe/sockets.h"
#include "common/core/ip_address.h"
#include "common/core/metric_builder.h"

namespace meshflow::probe {

using std::chrono::nanoseconds;

// What one ICMP echo of a given size (whole IP packet, header included) came to.
enum class EchoVerdict { kAnswered, kLost, kTooBig };

// The largest size in [floor, ceiling] an echo with don't-fragment set gets an answer for.
// Tries the ceiling first (a healthy path costs one echo), then the floor, then halves the gap
// between the largest answered and the smallest failed size. A size fails only after `tries`
// echoes without an answer, so a lossy link does not pass for a small MTU; kTooBig (refused by
// our own stack) fails at once. Returns 0 when the floor gets no answer either: the peer is
// unreachable, which says nothing about its MTU.
int SearchPathMtu(int floor, int ceiling, int tries, const std::function<EchoVerdict(int)>& echo);

struct PathMtuTarget {
  std::string peer;
  std::string address;  // IP literal or DNS name
};

struct PathMtuResult {
  std::string peer;
  int path_mtu = 0;   // bytes; 0 until a search reached the peer
  int route_mtu = 0;  // what our route to the peer allows (interface MTU or a learned PMTU)
};

// Searches every peer's path MTU once per interval on a thread of its own (a search that meets
// a black hole waits out its timeouts, which must not hold up the RTT probes).
class PathMtuProber {
 public:
  PathMtuProber() = default;
  ~PathMtuProber();
  PathMtuProber(const PathMtuProber&) = delete;
  PathMtuProber& operator=(const PathMtuProber&) = delete;

  // Opens the ICMP sockets here, on the caller's thread, while it may still hold CAP_NET_RAW
  // (the exporter drops it after start-up).
  void Start(std::vector<PathMtuTarget> targets, nanoseconds interval, nanoseconds timeout);
  void Stop();
  std::vector<PathMtuResult> Snapshot() const;

 private:
  void Run();
  // One echo of `size` bytes to `to`, answered within the timeout or not.
  EchoVerdict Echo(const IpAddress& to, int size);
  bool Sleep(nanoseconds d);  // false when stopped

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
  std::vector<PathMtuTarget> targets_;
  std::vector<PathMtuResult> results_;
  nanoseconds interval_{0};
  nanoseconds timeout_{0};
  uint16_t id_ = 0;
  uint16_t sequence_ = 0;
  // Per family (0: IPv4, 1: IPv6): a raw socket, or else an ICMP datagram ("ping") socket.
  struct IcmpSocket {
    Fd fd;
    bool raw = false;
  };
  IcmpSocket sockets_[2];
};

// meshflow_probe_path_mtu_bytes and meshflow_probe_route_mtu_bytes{src_node,dst_node}.
void AppendPathMtuFamilies(const std::string& node, const std::vector<PathMtuResult>& results,
                           std::vector<prometheus::MetricFamily>& out);

}  // namespace meshflow::probe
