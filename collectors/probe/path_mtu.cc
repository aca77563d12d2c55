#include "collectors/probe/path_mtu.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <random>

#include "collectors/probe/codec.h"
#include "collectors/probe/sockets.h"

namespace meshflow::probe {
namespace {

constexpr int kIcmpHeader = 8;
constexpr int kTries = 3;
// The smallest packet every IPv4 host must take, and IPv6's minimum link MTU.
constexpr int kFloorV4 = 576;
constexpr int kFloorV6 = 1280;

nanoseconds Now() { return std::chrono::steady_clock::now().time_since_epoch(); }

std::optional<IpAddress> Resolve(const std::string& name) {
  if (auto literal = IpAddress::Parse(name)) return literal;
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* list = nullptr;
  if (getaddrinfo(name.c_str(), nullptr, &hints, &list) != 0 || !list) return std::nullopt;
  std::optional<IpAddress> out;
  for (const addrinfo* a = list; a && !out; a = a->ai_next) {
    if (a->ai_family == AF_INET)
      out = IpAddress::FromV4Bytes(
          reinterpret_cast<const uint8_t*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr));
    else if (a->ai_family == AF_INET6)
      out = IpAddress::FromV6Bytes(reinterpret_cast<const uint8_t*>(
          &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr));
  }
  freeaddrinfo(list);
  return out;
}

// The MTU our route to `to` allows: the outgoing interface's, or a path MTU the kernel learned
// from an ICMP "fragmentation needed"/"packet too big". 0 when there is no route.
int RouteMtu(const IpAddress& to) {
  const bool v6 = !to.is_v4();
  Fd fd(socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return 0;
  const SocketAddress addr = SocketAddress::From(to, 9);
  if (connect(fd.get(), addr.get(), addr.length) != 0) return 0;
  int mtu = 0;
  socklen_t len = sizeof mtu;
  if (getsockopt(fd.get(), v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MTU : IP_MTU, &mtu, &len) != 0)
    return 0;
  return mtu;
}

}  // namespace

int SearchPathMtu(int floor, int ceiling, int tries, const std::function<EchoVerdict(int)>& echo) {
  auto passes = [&](int size) {
    for (int i = 0; i < tries; ++i) {
      const EchoVerdict v = echo(size);
      if (v == EchoVerdict::kAnswered) return true;
      if (v == EchoVerdict::kTooBig) return false;
    }
    return false;
  };
  floor = std::min(floor, ceiling);
  if (passes(ceiling)) return ceiling;
  if (floor == ceiling || !passes(floor)) return 0;
  int good = floor;   // answered
  int bad = ceiling;  // failed
  while (bad - good > 1) {
    const int mid = good + (bad - good) / 2;
    (passes(mid) ? good : bad) = mid;
  }
  return good;
}

PathMtuProber::~PathMtuProber() { Stop(); }

void PathMtuProber::Start(std::vector<PathMtuTarget> targets, nanoseconds interval,
                          nanoseconds timeout) {
  Stop();
  std::lock_guard lock(mutex_);
  targets_ = std::move(targets);
  results_.clear();
  for (const auto& t : targets_) results_.push_back({t.peer, 0, 0});
  interval_ = interval;
  timeout_ = timeout;
  id_ = static_cast<uint16_t>(std::random_device{}());
  for (int v6 = 0; v6 < 2; ++v6) {
    IcmpSocket& s = sockets_[v6];
    if (s.fd.valid()) continue;  // kept from an earlier start: privileges may be gone now
    const int family = v6 ? AF_INET6 : AF_INET;
    const int protocol = v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
    s.fd = Fd(socket(family, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol));
    s.raw = s.fd.valid();
    if (!s.raw) s.fd = Fd(socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol));
    if (!s.fd.valid()) {
      spdlog::warn("path mtu: no ICMP{} socket ({}): no path MTU for {} peers", v6 ? "v6" : "",
                   ErrnoReason(errno), v6 ? "IPv6" : "IPv4");
      continue;
    }
    // Don't fragment, and ignore any path MTU learned before: probe the path as it is now.
    const int probe = v6 ? IPV6_PMTUDISC_PROBE : IP_PMTUDISC_PROBE;
    setsockopt(s.fd.get(), v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MTU_DISCOVER : IP_MTU_DISCOVER,
               &probe, sizeof probe);
    if (v6) {
      const int on = 1;
      setsockopt(s.fd.get(), IPPROTO_IPV6, IPV6_DONTFRAG, &on, sizeof on);
    }
  }
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void PathMtuProber::Stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<PathMtuResult> PathMtuProber::Snapshot() const {
  std::lock_guard lock(mutex_);
  return results_;
}

bool PathMtuProber::Sleep(nanoseconds d) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, d, [this] { return stop_; });
}

void PathMtuProber::Run() {
  while (true) {
    const nanoseconds started = Now();
    std::vector<PathMtuTarget> targets;
    {
      std::lock_guard lock(mutex_);
      if (stop_) return;
      targets = targets_;
    }
    for (size_t i = 0; i < targets.size(); ++i) {
      const auto to = Resolve(targets[i].address);
      const int route = to ? RouteMtu(*to) : 0;
      int path = 0;
      if (route > 0) {
        const int floor = to->is_v4() ? kFloorV4 : kFloorV6;
        path = SearchPathMtu(floor, route, kTries, [&](int size) { return Echo(*to, size); });
      }
      std::lock_guard lock(mutex_);
      if (stop_) return;
      // An unreachable peer keeps its last figure: the RTT probes report the outage.
      if (path > 0) results_[i].path_mtu = path;
      results_[i].route_mtu = route;
    }
    const nanoseconds left = interval_ - (Now() - started);
    if (left > nanoseconds(0) && !Sleep(left)) return;
  }
}

EchoVerdict PathMtuProber::Echo(const IpAddress& to, int size) {
  const bool v6 = !to.is_v4();
  const IcmpSocket& s = sockets_[v6 ? 1 : 0];
  const int ip_header = v6 ? 40 : 20;
  if (size < ip_header + kIcmpHeader + 4) return EchoVerdict::kTooBig;
  if (!s.fd.valid()) return EchoVerdict::kLost;
  std::vector<uint8_t> buffer(65536);
  // Replies to earlier, timed-out echoes (and, on a raw socket, every ICMP message) wait here.
  while (recv(s.fd.get(), buffer.data(), buffer.size(), MSG_DONTWAIT) > 0) {
  }
  const uint16_t sequence = ++sequence_;
  std::vector<uint8_t> packet(static_cast<size_t>(size - ip_header));
  packet[0] = v6 ? 128 : 8;                    // echo request
  packet[4] = static_cast<uint8_t>(id_ >> 8);  // a datagram socket puts in its own id
  packet[5] = static_cast<uint8_t>(id_);
  packet[6] = static_cast<uint8_t>(sequence >> 8);
  packet[7] = static_cast<uint8_t>(sequence);
  for (size_t i = kIcmpHeader; i < packet.size(); ++i) packet[i] = static_cast<uint8_t>(i);
  if (!v6 && s.raw) {
    // The kernel fills in ICMPv6 checksums (they cover a pseudo header) and those of datagram
    // sockets, not a raw socket's ICMPv4 one.
    const uint16_t sum = InternetChecksum(packet);
    packet[2] = static_cast<uint8_t>(sum >> 8);
    packet[3] = static_cast<uint8_t>(sum);
  }
  const SocketAddress addr = SocketAddress::From(to, 0);
  if (sendto(s.fd.get(), packet.data(), packet.size(), 0, addr.get(), addr.length) < 0)
    return errno == EMSGSIZE ? EchoVerdict::kTooBig : EchoVerdict::kLost;

  const nanoseconds deadline = Now() + timeout_;
  while (true) {
    const nanoseconds left = deadline - Now();
    if (left <= nanoseconds(0)) return EchoVerdict::kLost;
    {
      std::lock_guard lock(mutex_);
      if (stop_) return EchoVerdict::kLost;
    }
    // Wakes at least every 100 ms to see a Stop().
    pollfd p{s.fd.get(), POLLIN, 0};
    const auto wait = std::min<nanoseconds>(left, std::chrono::milliseconds(100));
    if (poll(&p, 1, static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count())) <=
        0)
      continue;
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    const ssize_t n = recvfrom(s.fd.get(), buffer.data(), buffer.size(), MSG_DONTWAIT,
                               reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n <= 0) continue;
    // A raw IPv4 socket hands over the IP header too; the others only the ICMP message.
    size_t offset = 0;
    if (!v6 && s.raw) {
      if (n < 20) continue;
      offset = static_cast<size_t>(buffer[0] & 0x0f) * 4;
    }
    if (static_cast<size_t>(n) < offset + kIcmpHeader) continue;
    const uint8_t* icmp = buffer.data() + offset;
    const bool ours = !s.raw || (icmp[4] == packet[4] && icmp[5] == packet[5]);
    const bool reply =
        icmp[0] == (v6 ? 129 : 0) && ours && icmp[6] == packet[6] && icmp[7] == packet[7];
    const size_t whole = static_cast<size_t>(n) - offset + static_cast<size_t>(ip_header);
    if (reply && whole == static_cast<size_t>(size)) return EchoVerdict::kAnswered;
  }
}

}  // namespace meshflow::probe

namespace meshflow::probe {

void AppendPathMtuFamilies(const std::string& node, const std::vector<PathMtuResult>& results,
                           std::vector<prometheus::MetricFamily>& out) {
  using prometheus::MetricType;
  FamilyBuilder path("meshflow_probe_path_mtu_bytes",
                     "Largest IP packet that reached the peer and came back with don't-fragment "
                     "set, by the last search.",
                     MetricType::Gauge);
  FamilyBuilder route("meshflow_probe_route_mtu_bytes",
                      "MTU of this node's route to the peer: the interface's, or a path MTU the "
                      "kernel learned. A path MTU below it is a black hole.",
                      MetricType::Gauge);
  for (const auto& r : results) {
    const LabelPairs labels{{"src_node", node}, {"dst_node", r.peer}};
    if (r.path_mtu > 0) path.Gauge(labels, r.path_mtu);
    if (r.route_mtu > 0) route.Gauge(labels, r.route_mtu);
  }
  path.AppendTo(out);
  route.AppendTo(out);
}

}  // namespace meshflow::probe
