#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/core/fd.h"
#include "common/core/ip_address.h"

namespace meshflow::probe {

// A socket address for an IpAddress: IPv4 (mapped) addresses as sockaddr_in, others as
// sockaddr_in6.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  static SocketAddress From(const IpAddress& address, uint16_t port);
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  IpAddress address() const;
  uint16_t port() const;
};

// Asks the kernel for software transmit timestamps on the error queue (keyed by a per-socket
// counter that starts at zero here) and software receive timestamps. False if refused.
bool EnableTimestamping(int fd);
// Receive timestamps only (a reflector: transmit timestamps would pile up unread).
bool EnableRxTimestamping(int fd);
// The kernel switches receive timestamping on for the whole host lazily, in deferred work, when
// the first socket asks for it: a datagram received before that work ran carries no timestamp,
// and its RTT would silently include our own scheduling delay. Call after enabling timestamps:
// sends datagrams to itself over loopback until one arrives stamped, at most `budget` long.
// False if none did (loopback down, or the budget ran out).
bool AwaitReceiveTimestamps(std::chrono::milliseconds budget);

// One datagram read, with its kernel receive timestamp (CLOCK_REALTIME) when there is one.
struct Datagram {
  size_t size = 0;
  SocketAddress source;
  std::optional<int64_t> rx_kernel_ns;
  std::optional<IpAddress> local;  // destination address, when packet info was asked for
  int local_ifindex = 0;
};
// Reads every waiting datagram, up to a capacity, in one system call (recvmmsg): with many
// peers, replies arrive in bursts, and one call per burst instead of one per datagram (plus the
// epoll wake-up before each) is most of what probing costs.
class DatagramBatch {
 public:
  DatagramBatch(size_t capacity, size_t datagram_size);
  DatagramBatch(const DatagramBatch&) = delete;
  DatagramBatch& operator=(const DatagramBatch&) = delete;

  // Reads without blocking; returns how many datagrams were read (0: none waiting, or an error).
  size_t Receive(int fd);
  // The i-th datagram of the last Receive. Its size is datagram_size + 1 if it was truncated.
  const Datagram& datagram(size_t i) const { return datagrams_[i]; }
  // Its bytes, at most datagram_size.
  std::span<const uint8_t> bytes(size_t i) const;
  size_t capacity() const { return datagrams_.size(); }

 private:
  struct Control {
    alignas(cmsghdr) uint8_t bytes[256];
  };
  size_t datagram_size_;
  std::vector<uint8_t> buffers_;
  std::vector<Control> controls_;
  std::vector<iovec> iovecs_;
  std::vector<mmsghdr> headers_;
  std::vector<Datagram> datagrams_;
};

// Reads up to `max` transmit timestamps waiting on the error queue: fn(key, kernel_ns), in
// order, many per system call. Returns how many messages it read (timestamps or not).
int DrainTxTimestamps(int fd, int max, const std::function<void(uint32_t, int64_t)>& fn);

// Sends with the given source address (packet info), so replies leave from the address the
// request came to on a multi-homed host.
ssize_t SendFrom(int fd, std::span<const uint8_t> bytes, const SocketAddress& to,
                 const std::optional<IpAddress>& local, int ifindex);

// Realtime now in nanoseconds, the clock kernel software timestamps use.
int64_t RealtimeNs();

// errno as a short label value.
std::string ErrnoReason(int error);

}  // namespace meshflow::probe
