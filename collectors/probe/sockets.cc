#include "collectors/probe/sockets.h"

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/ip.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

namespace meshflow::probe {

SocketAddress SocketAddress::From(const IpAddress& address, uint16_t port) {
  SocketAddress s;
  if (address.is_v4()) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    std::memcpy(&sin.sin_addr, address.bytes().data() + 12, 4);
    std::memcpy(&s.storage, &sin, sizeof(sin));
    s.length = sizeof(sin);
  } else {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    std::memcpy(&sin6.sin6_addr, address.bytes().data(), 16);
    std::memcpy(&s.storage, &sin6, sizeof(sin6));
    s.length = sizeof(sin6);
  }
  return s;
}

IpAddress SocketAddress::address() const {
  if (storage.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &storage, sizeof(sin));
    return IpAddress::FromV4Bytes(reinterpret_cast<const uint8_t*>(&sin.sin_addr));
  }
  sockaddr_in6 sin6;
  std::memcpy(&sin6, &storage, sizeof(sin6));
  return IpAddress::FromV6Bytes(reinterpret_cast<const uint8_t*>(&sin6.sin6_addr));
}

uint16_t SocketAddress::port() const {
  if (storage.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &storage, sizeof(sin));
    return ntohs(sin.sin_port);
  }
  sockaddr_in6 sin6;
  std::memcpy(&sin6, &storage, sizeof(sin6));
  return ntohs(sin6.sin6_port);
}

bool EnableTimestamping(int fd) {
  // OPT_TSONLY: the error queue carries only the timestamp, not a copy of the packet.
  const int flags = SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_TX_SOFTWARE |
                    SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_OPT_ID |
                    SOF_TIMESTAMPING_OPT_TSONLY;
  return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof(flags)) == 0;
}

bool EnableRxTimestamping(int fd) {
  const int flags = SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_RX_SOFTWARE;
  return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof(flags)) == 0;
}

namespace {

std::optional<int64_t> SoftwareTimestamp(const cmsghdr* c) {
  if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_TIMESTAMPING) return std::nullopt;
  scm_timestamping ts;
  if (c->cmsg_len < CMSG_LEN(sizeof(ts))) return std::nullopt;
  std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
  if (ts.ts[0].tv_sec == 0 && ts.ts[0].tv_nsec == 0) return std::nullopt;
  return int64_t{ts.ts[0].tv_sec} * 1'000'000'000 + ts.ts[0].tv_nsec;
}

// The metadata the kernel attached to a received datagram.
void ReadControl(msghdr& msg, Datagram& d) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (auto ts = SoftwareTimestamp(c)) {
      d.rx_kernel_ns = ts;
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof(info));
      d.local = IpAddress::FromV4Bytes(reinterpret_cast<const uint8_t*>(&info.ipi_addr));
      d.local_ifindex = info.ipi_ifindex;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof(info));
      d.local = IpAddress::FromV6Bytes(reinterpret_cast<const uint8_t*>(&info.ipi6_addr));
      d.local_ifindex = static_cast<int>(info.ipi6_ifindex);
    }
  }
}

// A transmit timestamp message from the error queue: its key and kernel time, if it is one.
void ReadTxTimestamp(msghdr& msg, const std::function<void(uint32_t, int64_t)>& fn) {
  std::optional<int64_t> ts;
  std::optional<uint32_t> key;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (auto t = SoftwareTimestamp(c)) {
      ts = t;
    } else if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
               (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
      sock_extended_err err;
      std::memcpy(&err, CMSG_DATA(c), sizeof(err));
      if (err.ee_errno == ENOMSG && err.ee_origin == SO_EE_ORIGIN_TIMESTAMPING &&
          err.ee_info == SCM_TSTAMP_SND)
        key = err.ee_data;
    }
  }
  if (ts && key) fn(*key, *ts);
}

}  // namespace

DatagramBatch::DatagramBatch(size_t capacity, size_t datagram_size)
    : datagram_size_(datagram_size),
      buffers_(capacity * datagram_size),
      controls_(capacity),
      iovecs_(capacity),
      headers_(capacity),
      datagrams_(capacity) {}

size_t DatagramBatch::Receive(int fd) {
  for (size_t i = 0; i < headers_.size(); ++i) {
    datagrams_[i] = Datagram{};
    iovecs_[i] = iovec{buffers_.data() + i * datagram_size_, datagram_size_};
    msghdr& msg = headers_[i].msg_hdr;
    msg = msghdr{};
    msg.msg_name = &datagrams_[i].source.storage;
    msg.msg_namelen = sizeof(datagrams_[i].source.storage);
    msg.msg_iov = &iovecs_[i];
    msg.msg_iovlen = 1;
    msg.msg_control = controls_[i].bytes;
    msg.msg_controllen = sizeof(controls_[i].bytes);
  }
  const int n =
      recvmmsg(fd, headers_.data(), static_cast<unsigned>(headers_.size()), MSG_DONTWAIT, nullptr);
  if (n <= 0) return 0;
  for (int i = 0; i < n; ++i) {
    msghdr& msg = headers_[i].msg_hdr;
    Datagram& d = datagrams_[i];
    d.size = headers_[i].msg_len;
    if (msg.msg_flags & MSG_TRUNC) d.size = datagram_size_ + 1;  // marks it oversized
    d.source.length = msg.msg_namelen;
    ReadControl(msg, d);
  }
  return static_cast<size_t>(n);
}

std::span<const uint8_t> DatagramBatch::bytes(size_t i) const {
  return std::span<const uint8_t>(buffers_.data() + i * datagram_size_,
                                  std::min(datagrams_[i].size, datagram_size_));
}

bool AwaitReceiveTimestamps(std::chrono::milliseconds budget) {
  Fd fd(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP));
  if (!fd.valid() || !EnableRxTimestamping(fd.get())) return false;
  sockaddr_in self{};
  self.sin_family = AF_INET;
  self.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(self);
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&self), length) != 0 ||
      getsockname(fd.get(), reinterpret_cast<sockaddr*>(&self), &length) != 0)
    return false;
  DatagramBatch batch(1, 1);
  const auto give_up = std::chrono::steady_clock::now() + budget;
  const uint8_t byte = 0;
  do {
    if (sendto(fd.get(), &byte, 1, 0, reinterpret_cast<const sockaddr*>(&self), length) != 1)
      return false;
    pollfd p{fd.get(), POLLIN, 0};
    if (poll(&p, 1, 5) == 1 && batch.Receive(fd.get()) == 1 && batch.datagram(0).rx_kernel_ns)
      return true;
  } while (std::chrono::steady_clock::now() < give_up);
  return false;
}

int DrainTxTimestamps(int fd, int max, const std::function<void(uint32_t, int64_t)>& fn) {
  // With OPT_TSONLY a message carries no data, only its control part.
  constexpr int kBatch = 32;
  struct Control {
    alignas(cmsghdr) uint8_t bytes[256];
  };
  std::array<Control, kBatch> controls;
  std::array<mmsghdr, kBatch> headers;
  int read = 0;
  while (read < max) {
    const int want = std::min(kBatch, max - read);
    for (int i = 0; i < want; ++i) {
      headers[i] = mmsghdr{};
      headers[i].msg_hdr.msg_control = controls[i].bytes;
      headers[i].msg_hdr.msg_controllen = sizeof(controls[i].bytes);
    }
    const int n = recvmmsg(fd, headers.data(), static_cast<unsigned>(want),
                           MSG_ERRQUEUE | MSG_DONTWAIT, nullptr);
    if (n <= 0) break;
    for (int i = 0; i < n; ++i) ReadTxTimestamp(headers[i].msg_hdr, fn);
    read += n;
    if (n < want) break;
  }
  return read;
}

ssize_t SendFrom(int fd, std::span<const uint8_t> bytes, const SocketAddress& to,
                 const std::optional<IpAddress>& local, int ifindex) {
  iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr_storage*>(&to.storage);
  msg.msg_namelen = to.length;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) uint8_t control[64] = {};
  if (local) {
    msg.msg_control = control;
    cmsghdr* c = reinterpret_cast<cmsghdr*>(control);
    if (to.storage.ss_family == AF_INET) {
      in_pktinfo info{};
      std::memcpy(&info.ipi_spec_dst, local->bytes().data() + 12, 4);
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(info));
      std::memcpy(CMSG_DATA(c), &info, sizeof(info));
      msg.msg_controllen = CMSG_SPACE(sizeof(info));
    } else {
      in6_pktinfo info{};
      std::memcpy(&info.ipi6_addr, local->bytes().data(), 16);
      info.ipi6_ifindex = static_cast<unsigned>(ifindex);
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(info));
      std::memcpy(CMSG_DATA(c), &info, sizeof(info));
      msg.msg_controllen = CMSG_SPACE(sizeof(info));
    }
  }
  return sendmsg(fd, &msg, MSG_DONTWAIT);
}

int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::string ErrnoReason(int error) {
  switch (error) {
    case ECONNREFUSED:
      return "refused";
    case EHOSTUNREACH:
      return "host_unreachable";
    case ENETUNREACH:
      return "network_unreachable";
    case ETIMEDOUT:
      return "timed_out";
    case EACCES:
    case EPERM:
      return "permission_denied";
    case ENOBUFS:
    case EAGAIN:
      return "no_buffer_space";
    case EADDRNOTAVAIL:
      return "address_not_available";
    case EAFNOSUPPORT:
      return "address_family_not_supported";
    case EMSGSIZE:
      return "message_too_long";
    default:
      return "other";
  }
}

}  // namespace meshflow::probe
