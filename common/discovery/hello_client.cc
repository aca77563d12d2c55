#include "common/discovery/hello_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/core/fd.h"

namespace meshflow::discovery {
namespace {

uint64_t RandomNonce() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
    v = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  return v;
}

socklen_t ToSockaddr(const IpAddress& a, uint16_t port, sockaddr_storage* out) {
  std::memset(out, 0, sizeof *out);
  if (a.is_v4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(out);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    std::memcpy(&s->sin_addr, a.bytes().data() + 12, 4);
    return sizeof *s;
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(out);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(port);
  std::memcpy(&s->sin6_addr, a.bytes().data(), 16);
  return sizeof *s;
}

std::optional<IpAddress> FromSockaddr(const sockaddr_storage& s) {
  if (s.ss_family == AF_INET)
    return IpAddress::FromV4Bytes(
        reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in&>(s).sin_addr));
  if (s.ss_family == AF_INET6)
    return IpAddress::FromV6Bytes(
        reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in6&>(s).sin6_addr));
  return std::nullopt;
}

}  // namespace

std::map<IpAddress, HelloIdentity> AskHello(const std::vector<IpAddress>& targets, uint16_t port,
                                            std::chrono::milliseconds timeout, HelloStats* stats) {
  std::map<IpAddress, HelloIdentity> out;
  if (targets.empty()) return out;
  Fd v4(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  Fd v6(socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  std::map<IpAddress, uint64_t> nonces;
  for (const auto& t : targets) {
    const int fd = t.is_v4() ? v4.get() : v6.get();
    if (fd < 0) continue;
    const uint64_t nonce = RandomNonce();
    const auto request = EncodeHelloRequest(nonce);
    sockaddr_storage to;
    const socklen_t len = ToSockaddr(t, port, &to);
    if (sendto(fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&to), len) ==
        static_cast<ssize_t>(request.size())) {
      nonces[t] = nonce;
      if (stats) ++stats->sent;
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<uint8_t> buf(kHelloRequestSize + 1);  // one more: a too-long reply shows as such
  while (out.size() < nonces.size()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd fds[2] = {{v4.get(), POLLIN, 0}, {v6.get(), POLLIN, 0}};
    const int n = poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) break;
    for (const auto& p : fds) {
      if (p.fd < 0 || !(p.revents & POLLIN)) continue;
      for (;;) {
        sockaddr_storage from{};
        socklen_t from_len = sizeof from;
        const ssize_t got = recvfrom(p.fd, buf.data(), buf.size(), 0,
                                     reinterpret_cast<sockaddr*>(&from), &from_len);
        if (got < 0) break;
        const auto source = FromSockaddr(from);
        const auto expected = source ? nonces.find(*source) : nonces.end();
        HelloError error{};
        auto id = DecodeHelloReply(std::span(buf.data(), static_cast<size_t>(got)), &error);
        if (expected == nonces.end() || !id || id->nonce != expected->second) {
          if (stats) ++stats->malformed;
          continue;
        }
        if (out.emplace(*source, std::move(*id)).second && stats) ++stats->answered;
      }
    }
  }
  return out;
}

}  // namespace meshflow::discovery
