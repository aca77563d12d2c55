#include "collectors/probe/sockets.h"

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/ip.h>
#include <unistd.h>

#include <cerrno>
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

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.Release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

int Fd::Release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
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

}  // namespace

std::optional<Datagram> ReceiveDatagram(int fd, std::span<uint8_t> buffer) {
  Datagram d;
  iovec iov{buffer.data(), buffer.size()};
  alignas(cmsghdr) uint8_t control[512];
  msghdr msg{};
  msg.msg_name = &d.source.storage;
  msg.msg_namelen = sizeof(d.source.storage);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
  if (n < 0) return std::nullopt;
  d.size = static_cast<size_t>(n);
  if (msg.msg_flags & MSG_TRUNC) d.size = buffer.size() + 1;  // marks it oversized
  d.source.length = msg.msg_namelen;
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
  return d;
}

int DrainTxTimestamps(int fd, int max, const std::function<void(uint32_t, int64_t)>& fn) {
  int read = 0;
  for (; read < max; ++read) {
    alignas(cmsghdr) uint8_t control[512];
    uint8_t data[256];
    iovec iov{data, sizeof(data)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
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

uint16_t InternetChecksum(std::span<const uint8_t> bytes) {
  uint32_t sum = 0;
  size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) sum += (uint32_t{bytes[i]} << 8) | bytes[i + 1];
  if (i < bytes.size()) sum += uint32_t{bytes[i]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
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
