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

// Tags in epoll_event.data.u64 above the node indexes.
constexpr uint64_t kControlTag = 1ull << 32;
constexpr uint64_t kSignalTag = (1ull << 32) + 1;

// Commands are one line of words; the client never sends more.
constexpr size_t kMaxRequest = 4096;

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

void Mover::ServeControl() {
  const int client = accept4(control_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (client < 0) return;
  // The client writes its command right after connecting; a stuck one must not stall packets.
  timeval tv{0, 200000};
  setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string request;
  char buf[512];
  while (request.size() < kMaxRequest && request.find('\n') == std::string::npos) {
    const ssize_t n = read(client, buf, sizeof buf);
    if (n <= 0) break;
    request.append(buf, static_cast<size_t>(n));
  }
  ControlReply reply;
  if (request.size() >= kMaxRequest)
    reply = {false, "error: command too long\n"};
  else
    reply = ExecuteCommand(*overlay_, SplitWords(request.substr(0, request.find('\n'))));
  const std::string out = (reply.ok ? "0 " : "1 ") + reply.text;
  size_t off = 0;
  while (off < out.size()) {
    // MSG_NOSIGNAL: a client that hung up must not kill the emulator with SIGPIPE.
    const ssize_t n = send(client, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  close(client);
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
      ServeControl();
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
    if (line_.empty()) {
      Wait(nanoseconds(-1), &stop);
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
