#include "common/discovery/unix_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/core/fd.h"

namespace meshflow::discovery {
namespace {

// Waits for `events` until `deadline`; false on timeout or error.
bool WaitFor(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

}  // namespace

bool UnixExchange(const std::string& path, std::string_view request,
                  const std::function<bool(std::string_view)>& complete,
                  std::chrono::milliseconds timeout, size_t max_bytes, std::string* answer,
                  std::string* error) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    *error = path + ": socket path too long";
    return false;
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s.valid()) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 &&
      errno != EINPROGRESS && errno != EAGAIN) {
    *error = path + ": cannot connect: " + std::strerror(errno);
    return false;
  }
  size_t sent = 0;
  while (sent < request.size()) {
    if (!WaitFor(s.get(), POLLOUT, deadline)) {
      *error = path + ": timed out writing the request";
      return false;
    }
    const ssize_t n = ::send(s.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      *error = path + ": write: " + std::strerror(errno);
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  answer->clear();
  char buf[16384];
  for (;;) {
    if (complete(*answer)) return true;
    if (!WaitFor(s.get(), POLLIN, deadline)) {
      *error = path + ": timed out waiting for the answer";
      return false;
    }
    const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      *error = path + ": read: " + std::strerror(errno);
      return false;
    }
    if (n == 0) return true;  // closed: the caller's parser judges what arrived
    if (answer->size() + static_cast<size_t>(n) > max_bytes) {
      *error = path + ": answer larger than " + std::to_string(max_bytes) + " bytes";
      return false;
    }
    answer->append(buf, static_cast<size_t>(n));
  }
}

}  // namespace meshflow::discovery
