#include "collectors/flow/capture/capture_loop.h"

#include <errno.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <system_error>

namespace meshflow::flow {
namespace {

constexpr uint64_t kWakeTag = 0;
constexpr uint64_t kNetlinkTag = 1;
// Packets per handle per pcap_dispatch call, and per handle per loop turn: a busy interface
// cannot starve the others, the wakeup fd or a scrape waiting for the sink mutex.
constexpr int kDispatchBatch = 1024;
constexpr int kMaxPerTurn = 8 * kDispatchBatch;
// pcap_stats is read this often: far more often than a 32-bit counter can wrap.
constexpr std::chrono::seconds kStatsInterval{1};

// rx_dropped of an interface, the counter libpcap itself reads for ps_ifdrop (and only in
// promiscuous mode); read here in both modes and already 64-bit. -1 when unreadable.
int64_t ReadRxDropped(const std::string& name) {
  std::ifstream in("/sys/class/net/" + name + "/statistics/rx_dropped");
  int64_t value = -1;
  if (!(in >> value)) return -1;
  return value;
}

void AddToEpoll(int epoll_fd, int fd, uint64_t tag) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl add");
}

}  // namespace

HandleOptions HandleOptionsFrom(const CaptureConfig& config) {
  HandleOptions options;
  options.snaplen = config.snaplen;
  options.buffer_bytes = config.buffer_bytes;
  options.timeout_ms = static_cast<int>(std::max<int64_t>(
      1, std::chrono::duration_cast<std::chrono::milliseconds>(config.buffer_timeout).count()));
  options.promiscuous = config.promiscuous;
  return options;
}

CaptureLoop::CaptureLoop(const CaptureConfig& config, PacketSink& sink, const Clock& clock,
                         std::function<void()> addresses_changed)
    : sink_(sink),
      clock_(clock),
      addresses_changed_(std::move(addresses_changed)),
      config_(config),
      selector_(std::make_unique<InterfaceSelector>(config)),
      links_(config.rescan_interval) {}

CaptureLoop::~CaptureLoop() {
  Stop();
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void CaptureLoop::Start() {
  if (thread_.joinable()) return;
  if (epoll_fd_ < 0) {  // a restart after Stop() keeps the fds it made the first time
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    AddToEpoll(epoll_fd_, wake_fd_, kWakeTag);
    netlink_ = std::make_unique<NetlinkLinkSource>();
    AddToEpoll(epoll_fd_, netlink_->fd(), kNetlinkTag);
  }
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void CaptureLoop::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  Wake();
  thread_.join();
}

void CaptureLoop::Wake() {
  const uint64_t one = 1;
  // A full eventfd counter already means "wake up", so a failed write loses nothing.
  [[maybe_unused]] const ssize_t n = write(wake_fd_, &one, sizeof one);
}

void CaptureLoop::Reconfigure(const CaptureConfig& config) {
  {
    std::lock_guard lock(pending_mutex_);
    pending_ = config;
  }
  if (thread_.joinable()) {
    Wake();
  } else {
    ApplyPendingConfig();
  }
}

std::vector<InterfaceHealth> CaptureLoop::Health() const {
  std::lock_guard lock(state_mutex_);
  std::vector<InterfaceHealth> out;
  out.reserve(states_.size());
  for (const auto& [name, s] : states_) {
    InterfaceHealth h;
    h.name = name;
    h.up = s.up;
    h.filter_in_kernel = s.filter_in_kernel;
    h.ring_bytes = s.ring_bytes;
    h.kernel_drops = s.kernel_drops.total();
    h.interface_drops = s.interface_drops;
    h.open_failures = s.open_failures;
    out.push_back(std::move(h));
  }
  return out;
}

CaptureLoopCounters CaptureLoop::Counters() const {
  std::lock_guard lock(state_mutex_);
  CaptureLoopCounters c = counters_;
  if (netlink_) {
    c.netlink_malformed = netlink_->malformed();
    c.netlink_overruns = netlink_->overruns();
  }
  return c;
}

void CaptureLoop::ApplyPendingConfig() {
  std::optional<CaptureConfig> next;
  {
    std::lock_guard lock(pending_mutex_);
    next.swap(pending_);
  }
  if (!next) return;
  const HandleOptions before = HandleOptionsFrom(config_);
  const HandleOptions after = HandleOptionsFrom(*next);
  config_ = std::move(*next);
  selector_ = std::make_unique<InterfaceSelector>(config_);
  links_.set_retry_interval(config_.rescan_interval);
  if (before.snaplen != after.snaplen || before.buffer_bytes != after.buffer_bytes ||
      before.timeout_ms != after.timeout_ms || before.promiscuous != after.promiscuous) {
    // Handle options are fixed at pcap_activate: reopen everything, counters carry on.
    std::vector<std::string> names;
    for (const auto& [name, open] : open_) names.push_back(name);
    for (const auto& name : names) CloseInterface(name, false);
  }
}

void CaptureLoop::Run() {
  netlink_->RequestDump();
  auto next_rescan = clock_.Monotonic() + config_.rescan_interval;
  auto next_stats = clock_.Monotonic() + kStatsInterval;
  std::vector<epoll_event> events(64);
  std::vector<std::string> ready;
  while (!stop_) {
    const auto now = clock_.Monotonic();
    const auto wait =
        std::max(std::chrono::nanoseconds(0), std::min(next_rescan, next_stats) - now);
    const int timeout_ms =
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count() + 1);
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) {
      spdlog::error("capture loop epoll_wait: {}", std::strerror(errno));
      break;
    }
    bool replan = false;
    ready.clear();
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[static_cast<size_t>(i)].data.u64;
      if (tag == kWakeTag) {
        uint64_t count;
        [[maybe_unused]] const ssize_t r = read(wake_fd_, &count, sizeof count);
        ApplyPendingConfig();
        replan = true;
      } else if (tag == kNetlinkTag) {
        replan |= netlink_->ReadInto(links_);
      } else {
        for (const auto& [name, open] : open_)
          if (open.tag == tag) ready.push_back(name);
      }
    }
    if (stop_) break;

    std::vector<std::string> failed;
    if (!ready.empty()) {
      for (const auto& name : ready) {
        Open& open = open_.at(name);
        int total = 0;
        while (total < kMaxPerTurn) {
          const int got = open.handle->Dispatch(kDispatchBatch, sink_, open.interface_id);
          if (got < 0) {
            spdlog::warn("capture iface={} failed: {}", name, open.handle->error());
            failed.push_back(name);
            break;
          }
          total += got;
          if (got < kDispatchBatch) break;
        }
      }
      // The sink may hold a few packets back for speed (passive TCP): they are finished after
      // every turn, so an idle loop never leaves one uncounted.
      sink_.Flush();
    }
    for (const auto& name : failed) {
      CloseInterface(name, true);
      // Maybe only the handle broke: look again soon, but not in a tight loop.
      links_.OpenFailed(name, clock_.Monotonic());
      netlink_->RequestDump();
    }

    const auto after = clock_.Monotonic();
    if (after >= next_rescan) {
      // The safety net under netlink events: a full dump replaces what we believe.
      netlink_->RequestDump();
      next_rescan = after + config_.rescan_interval;
      replan = true;
    }
    if (after >= next_stats) {
      ReadAllStats();
      next_stats = after + kStatsInterval;
    }
    if (replan || !failed.empty()) {
      const size_t before = open_.size();
      Replan();
      if (open_.size() > before && addresses_changed_) addresses_changed_();
    }
    if (netlink_->TakeAddressesChanged() && addresses_changed_) addresses_changed_();
  }
  std::vector<std::string> names;
  for (const auto& [name, open] : open_) names.push_back(name);
  for (const auto& name : names) CloseInterface(name, false);
}

void CaptureLoop::Replan() {
  std::map<std::string, int> open;
  for (const auto& [name, o] : open_) open[name] = o.ifindex;
  const LinkPlan plan = links_.Plan(*selector_, open, clock_.Monotonic());
  for (const auto& name : plan.close) CloseInterface(name, false);
  for (const auto& link : plan.open) OpenInterface(link);
}

void CaptureLoop::OpenInterface(const LinkState& link) {
  {
    std::lock_guard lock(state_mutex_);
    if (!states_.count(link.name) && states_.size() >= kMaxInterfaces) {
      ++counters_.interfaces_refused;
      links_.OpenFailed(link.name, clock_.Monotonic());
      return;
    }
  }
  Open open;
  try {
    open.handle = LiveHandle::Open(link.name, HandleOptionsFrom(config_));
  } catch (const CaptureError& e) {
    links_.OpenFailed(link.name, clock_.Monotonic());
    std::lock_guard lock(state_mutex_);
    State& s = states_[link.name];
    // Retried every rescan interval: say it once per distinct reason, the counter says the rest.
    spdlog::log(s.last_error == e.what() ? spdlog::level::debug : spdlog::level::warn,
                "capture iface={} cannot be opened: {}", link.name, e.what());
    s.last_error = e.what();
    s.up = false;
    ++s.open_failures;
    return;
  }
  links_.OpenSucceeded(link.name);
  open.ifindex = link.index;
  open.tag = next_tag_++;
  open.rx_dropped_at_open = ReadRxDropped(link.name);
  open.interface_id = sink_.AddInterface(link.name, open.handle->facts().link_type);
  AddToEpoll(epoll_fd_, open.handle->selectable_fd(), open.tag);
  {
    std::lock_guard lock(state_mutex_);
    State& s = states_[link.name];
    s.up = true;
    s.last_error.clear();
    s.filter_in_kernel = open.handle->facts().filter_in_kernel;
    s.ring_bytes = open.handle->facts().ring_bytes;
    s.kernel_drops.Rebase();
  }
  open_.emplace(link.name, std::move(open));
}

void CaptureLoop::CloseInterface(const std::string& name, bool failed) {
  auto it = open_.find(name);
  if (it == open_.end()) return;
  ReadStats(name, it->second);
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.handle->selectable_fd(), nullptr);
  spdlog::info("capture closed iface={} reason={}", name, failed ? "failed" : "gone");
  open_.erase(it);
  std::lock_guard lock(state_mutex_);
  states_[name].up = false;
}

void CaptureLoop::ReadStats(const std::string& name, Open& open) {
  pcap_stat stats{};
  const bool ok = open.handle->Stats(stats);
  const int64_t rx_dropped = ReadRxDropped(name);
  std::lock_guard lock(state_mutex_);
  State& s = states_[name];
  if (ok) {
    s.kernel_drops.Update(stats.ps_drop);
  }
  // The interface's own counter is 64-bit; only the part since our open is ours.
  if (rx_dropped >= 0 && open.rx_dropped_at_open >= 0 && rx_dropped >= open.rx_dropped_at_open) {
    s.interface_drops += static_cast<uint64_t>(rx_dropped - open.rx_dropped_at_open);
    open.rx_dropped_at_open = rx_dropped;
  }
}

void CaptureLoop::ReadAllStats() {
  for (auto& [name, open] : open_) ReadStats(name, open);
}

}  // namespace meshflow::flow
