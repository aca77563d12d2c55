#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "exporter/core/ip_address.h"

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

// A file descriptor closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.Release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release();

 private:
  int fd_ = -1;
};

// Asks the kernel for software transmit timestamps on the error queue (keyed by a per-socket
// counter that starts at zero here) and software receive timestamps. False if refused.
bool EnableTimestamping(int fd);
// Receive timestamps only (a reflector: transmit timestamps would pile up unread).
bool EnableRxTimestamping(int fd);

// One datagram read with its kernel receive timestamp (CLOCK_REALTIME) when there is one.
struct Datagram {
  size_t size = 0;
  SocketAddress source;
  std::optional<int64_t> rx_kernel_ns;
  std::optional<IpAddress> local;  // destination address, when packet info was asked for
  int local_ifindex = 0;
};
// Reads one datagram without blocking; nullopt when none is waiting (or on error).
std::optional<Datagram> ReceiveDatagram(int fd, std::span<uint8_t> buffer);

// Reads up to `max` transmit timestamps waiting on the error queue: fn(key, kernel_ns). Returns
// how many messages it read (timestamps or not).
int DrainTxTimestamps(int fd, int max, const std::function<void(uint32_t, int64_t)>& fn);

// Sends with the given source address (packet info), so replies leave from the address the
// request came to on a multi-homed host.
ssize_t SendFrom(int fd, std::span<const uint8_t> bytes, const SocketAddress& to,
                 const std::optional<IpAddress>& local, int ifindex);

// The Internet checksum (RFC 1071).
uint16_t InternetChecksum(std::span<const uint8_t> bytes);

// Realtime now in nanoseconds, the clock kernel software timestamps use.
int64_t RealtimeNs();

// errno as a short label value.
std::string ErrnoReason(int error);

}  // namespace meshflow::probe
