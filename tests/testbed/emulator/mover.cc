#include "tests/testbed/emulator/mover.h"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "tests/testbed/emulator/control.h"

namespace meshflow::testbed {
namespace {

using std::chrono::nanoseconds;

nanoseconds Now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return nanoseconds(int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec);
}

// Tags in epoll_event.data.u64 above the node indexes; a control client's tag adds its fd.
constexpr uint64_t kControlTag = 1ull << 32;
constexpr uint64_t kSignalTag = (1ull << 32) + 1;
constexpr uint64_t kControlClientTag = 1ull << 33;

// Commands are one line of words; the client never sends more.
constexpr size_t kMaxRequest = 4096;
// The client writes its command right after connecting; one that has not within this long is
// closed. At most kMaxControlClients wait at once (the oldest is closed for a new one).
constexpr nanoseconds kControlClientTimeout = std::chrono::seconds(1);
constexpr size_t kMaxControlClients = 16;

std::vector<std::string> SplitWords(const std::string& line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\n')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\n') ++j;
    if (j > i) words.push_back(line.substr(i, j - i));
    i = j;
  }
  return words;
}

}  // namespace

Mover::Mover(Overlay* overlay, std::vector<int> tun_fds, int control_fd, int signal_fd,
             MoverLimits limits)
    : overlay_(overlay),
      tun_fds_(std::move(tun_fds)),
      control_fd_(control_fd),
      signal_fd_(signal_fd),
      limits_(limits),
      line_(limits),
      buffer_(65536) {}

Mover::~Mover() {
  for (const auto& [fd, client] : clients_) close(fd);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

void Mover::ReadDevice(size_t node) {
  for (size_t i = 0; i < limits_.max_reads_per_wakeup; ++i) {
    const ssize_t n = read(tun_fds_[node], buffer_.data(), buffer_.size());
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) overlay_->CountMoverDrop("read_error");
      return;
    }
    const auto size = static_cast<size_t>(n);
    const nanoseconds now = Now();
    const RouteDecision d = overlay_->Route(node, buffer_.data(), size, now);
    if (!d.delivered()) continue;
    if (!line_.Push(d.release, d.to_node, buffer_.data(), size))
      overlay_->CountMoverDrop("delay_line_full");
  }
}

void Mover::ReleaseDue() {
  nanoseconds now = Now();
  while (!line_.empty() && line_.next_release() <= now) {
    DelayLine::Entry e = line_.Pop();
    overlay_->RecordLateness(now - e.release);
    // Writing to a TUN fd injects the packet into the receiving namespace's stack.
    if (write(tun_fds_[e.to_node], e.data.data(), e.data.size()) < 0)
      overlay_->CountMoverDrop("write_error");
    now = Now();
  }
}

void Mover::AcceptControl() {
  const int client = accept4(control_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (client < 0) return;
  if (clients_.size() >= kMaxControlClients) {
    auto oldest = clients_.begin();
    for (auto it = clients_.begin(); it != clients_.end(); ++it)
      if (it->second.accepted < oldest->second.accepted) oldest = it;
    CloseControl(oldest->first);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kControlClientTag + static_cast<uint64_t>(client);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, client, &ev) != 0) {
    close(client);
    return;
  }
  clients_[client].accepted = Now();
}

void Mover::ReadControl(int client) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  std::string& request = it->second.request;
  char buf[512];
  for (;;) {
    const ssize_t n = read(client, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;  // the rest of the line comes later
    if (n > 0) request.append(buf, static_cast<size_t>(n));
    // A whole line, too much, or the client's end of the stream: answer what there is.
    if (n <= 0 || request.size() >= kMaxRequest || request.find('\n') != std::string::npos) break;
  }
  Reply(client, request);
  CloseControl(client);
}

void Mover::Reply(int client, const std::string& request) {
  ControlReply reply;
  if (request.size() >= kMaxRequest)
    reply = {false, "error: command too long\n"};
  else
    reply = ExecuteCommand(*overlay_, SplitWords(request.substr(0, request.find('\n'))));
  const std::string out = (reply.ok ? "0 " : "1 ") + reply.text;
  // A reply is a few KiB at most and the client reads it at once: it fits the socket buffer.
  // One that does not is cut rather than waited for.
  size_t off = 0;
  while (off < out.size()) {
    // MSG_NOSIGNAL: a client that hung up must not kill the emulator with SIGPIPE.
    const ssize_t n = send(client, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

void Mover::CloseControl(int client) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, client, nullptr);
  close(client);
  clients_.erase(client);
}

void Mover::ExpireControl() {
  if (clients_.empty()) return;
  const nanoseconds now = Now();
  for (auto it = clients_.begin(); it != clients_.end();) {
    const int fd = it->first;
    const bool expired = now - it->second.accepted > kControlClientTimeout;
    ++it;  // CloseControl erases fd's entry
    if (expired) CloseControl(fd);
  }
}

void Mover::Wait(nanoseconds timeout, bool* stop) {
  epoll_event events[32];
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout.count() >= 0) {
    ts.tv_sec = timeout.count() / 1'000'000'000;
    ts.tv_nsec = timeout.count() % 1'000'000'000;
    tsp = &ts;
  }
  const int n = epoll_pwait2(epoll_fd_, events, 32, tsp, nullptr);
  for (int i = 0; i < n; ++i) {
    const uint64_t tag = events[i].data.u64;
    if (tag == kControlTag) {
      AcceptControl();
    } else if (tag >= kControlClientTag) {
      ReadControl(static_cast<int>(tag - kControlClientTag));
    } else if (tag == kSignalTag) {
      signalfd_siginfo info{};
      if (read(signal_fd_, &info, sizeof info) == sizeof info) {
        spdlog::info("signal {}: stopping", info.ssi_signo);
        *stop = true;
      }
    } else {
      ReadDevice(static_cast<size_t>(tag));
    }
  }
}

void Mover::Run() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::runtime_error(std::string("epoll: ") + std::strerror(errno));
  auto add = [&](int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0)
      throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
  };
  for (size_t i = 0; i < tun_fds_.size(); ++i) add(tun_fds_[i], i);
  add(control_fd_, kControlTag);
  add(signal_fd_, kSignalTag);

  bool stop = false;
  while (!stop) {
    ReleaseDue();
    ExpireControl();
    if (line_.empty()) {
      // Waking for the oldest control client's timeout, if one waits.
      Wait(clients_.empty() ? nanoseconds(-1) : kControlClientTimeout, &stop);
      continue;
    }
    const nanoseconds left = line_.next_release() - Now();
    if (left > limits_.spin) {
      Wait(left - limits_.spin, &stop);
      continue;
    }
    // Spin to the deadline, still polling the devices: a packet's delay is counted from when
    // it is read, so an arrival must not wait for the spin to end.
    while (!stop && !line_.empty() && Now() < line_.next_release()) Wait(nanoseconds(0), &stop);
  }
}

}  // namespace meshflow::testbed
