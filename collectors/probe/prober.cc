#include "collectors/probe/prober.h"

#include <fcntl.h>
#include <linux/icmp.h>
#include <linux/tcp.h>
#include <netinet/icmp6.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <set>

#include "collectors/probe/codec.h"
#include "common/config/config.h"
#include "common/core/enum_names.h"
#include "common/core/log.h"
#include "common/discovery/hello.h"

namespace meshflow::probe {
namespace {

constexpr uint64_t kTagShift = 56;
constexpr uint64_t kTagWake = 2;
constexpr uint64_t kTagSocket = 3;
constexpr uint64_t kTagTcp = 4;
constexpr size_t kMaxPendingTx = 1 << 16;
constexpr size_t kMaxTcpConns = 1 << 14;
// Datagrams read per system call. The sockets are level-triggered, so what is left is reported
// again at once.
constexpr size_t kReadBatch = 32;
constexpr size_t kMaxDatagram = 2048;

uint64_t Tag(uint64_t kind, uint64_t value) { return (kind << kTagShift) | value; }

bool AddToEpoll(int epoll, int fd, uint32_t events, uint64_t tag) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev) == 0;
}

size_t WindowFor(nanoseconds interval, nanoseconds timeout) {
  // Room for every probe in flight plus as many again, so late replies are still recognised.
  const int64_t in_flight = timeout.count() / std::max<int64_t>(1, interval.count()) + 2;
  return static_cast<size_t>(std::clamp<int64_t>(2 * in_flight + 8, 16, 1 << 16));
}

Fd OpenIcmp(int family, bool* raw) {
  const int proto = family == AF_INET ? int{IPPROTO_ICMP} : int{IPPROTO_ICMPV6};
  // Unprivileged ICMP datagram sockets need the process's group in net.ipv4.ping_group_range
  // (shared by IPv6); otherwise a raw socket, which needs CAP_NET_RAW.
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  *raw = false;
  if (fd < 0) {
    fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    *raw = true;
  }
  if (fd < 0) return Fd();
  if (*raw && family == AF_INET) {
    icmp_filter filter{};
    filter.data = ~(1u << ICMP_ECHOREPLY);
    setsockopt(fd, SOL_RAW, ICMP_FILTER, &filter, sizeof(filter));
  } else if (*raw) {
    icmp6_filter filter;
    ICMP6_FILTER_SETBLOCKALL(&filter);
    ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
    setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof(filter));
  }
  return Fd(fd);
}

constexpr EnumName<Method> kMethodNames[] = {
    {Method::kIcmp, "icmp"},
    {Method::kUdp, "udp"},
    {Method::kTcp, "tcp"},
};

}  // namespace

std::string_view MethodName(Method method) { return NameOf(kMethodNames, method); }

std::optional<Method> ParseMethod(std::string_view name) { return ValueNamed(kMethodNames, name); }

ProberOptions OptionsFromConfig(const Config& config) {
  const ProbesConfig& p = config.probes;
  ProberOptions o;
  o.node_name = config.node_name;
  o.interval = p.interval;
  o.timeout = p.timeout;
  o.dns_refresh_interval = p.dns_refresh_interval;
  o.reflector_enabled = p.reflector.enabled;
  o.reflector_address = p.reflector.listen_address;
  o.reflector_port = p.reflector.port;
  o.reflector_rate = p.reflector.max_replies_per_source_per_second;
  o.reflector_global_rate = p.reflector.max_replies_per_second;
  o.answer_hello = config.discovery.hello.enabled;
  auto methods = [](const std::vector<std::string>& names) {
    std::vector<Method> out;
    for (const auto& n : names)
      if (auto m = ParseMethod(n)) out.push_back(*m);
    return out;
  };
  if (!p.peers.empty()) {
    for (const ProbePeer& peer : p.peers) {
      o.peers.push_back(PeerTarget{peer.name, peer.address,
                                   methods(peer.methods.empty() ? p.methods : peer.methods),
                                   peer.tcp_port != 0 ? peer.tcp_port : p.tcp_port, p.udp_port});
    }
    return o;
  }
  for (const NodeSpec& node : config.nodes) {
    if (node.name == config.node_name || node.addresses.empty()) continue;
    const IpPrefix& first = node.addresses.front();
    if (first.bits != (first.address.is_v4() ? 32 : 128)) {
      // A subnet names no single host to probe.
      spdlog::warn("probe: node {} skipped: its first address {} is not a host address", node.name,
                   first.ToString());
      continue;
    }
    o.peers.push_back(PeerTarget{node.name, first.address.ToString(), methods(p.methods),
                                 p.tcp_port, p.udp_port});
  }
  return o;
}

Prober::Prober(const Clock& clock) : clock_(clock), batch_(kReadBatch, kMaxDatagram) {
  std::random_device rd;
  session_base_ = (uint64_t{rd()} << 32) ^ rd();
  icmp_id_ = static_cast<uint16_t>(rd());
}

Prober::~Prober() { Stop(); }

void Prober::Start(const ProberOptions& options) {
  epoll_ = Fd(epoll_create1(EPOLL_CLOEXEC));
  wake_ = Fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!epoll_.valid() || !wake_.valid())
    throw std::runtime_error(std::string("probe: cannot create epoll/eventfd: ") +
                             std::strerror(errno));
  AddToEpoll(epoll_.get(), wake_.get(), EPOLLIN, Tag(kTagWake, 0));
  OpenProbeSockets();
  {
    std::lock_guard lock(mutex_);
    Apply(options, clock_.Monotonic());
  }
  resolver_.Start(options.dns_refresh_interval);
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Prober::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  const uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
  thread_.join();
  resolver_.Stop();
  std::lock_guard lock(mutex_);
  tcp_conns_.clear();
  // Counters stay; sockets go, so a later Start() opens and registers them again.
  for (ProbeSocket& s : sockets_) {
    s.fd = Fd();
    s.pending.clear();
    s.outbox.clear();
    s.next_key = 0;  // a new socket's timestamp keys count from zero again
  }
  reopen_reflector_ = true;
  next_wake_.reset();
  last_send_wake_.reset();
}

void Prober::Reconfigure(const ProberOptions& options) {
  {
    std::lock_guard lock(mutex_);
    pending_ = options;
  }
  const uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
}

void Prober::OpenProbeSockets() {
  for (SocketSlot slot : {kUdp4, kUdp6}) {
    const int family = slot == kUdp4 ? AF_INET : AF_INET6;
    ProbeSocket& s = sockets_[slot];
    s.fd = Fd(socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP));
    if (!s.fd.valid()) {
      spdlog::warn("probe: no {} UDP socket: {}", slot == kUdp4 ? "IPv4" : "IPv6",
                   std::strerror(errno));
      continue;
    }
    if (family == AF_INET6) {
      const int on = 1;
      setsockopt(s.fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
  }
  for (SocketSlot slot : {kIcmp4, kIcmp6}) {
    const int family = slot == kIcmp4 ? AF_INET : AF_INET6;
    ProbeSocket& s = sockets_[slot];
    s.fd = OpenIcmp(family, &s.raw);
    if (!s.fd.valid()) {
      spdlog::warn("probe: no {} ICMP socket (neither ping_group_range nor CAP_NET_RAW): {}",
                   family == AF_INET ? "IPv4" : "IPv6", std::strerror(errno));
      continue;
    }
    icmp_socket_ = s.raw ? "raw" : "datagram";
  }
  for (SocketSlot slot : {kUdp4, kUdp6, kIcmp4, kIcmp6}) {
    ProbeSocket& s = sockets_[slot];
    if (!s.fd.valid()) continue;
    s.timestamps = EnableTimestamping(s.fd.get());
    AddToEpoll(epoll_.get(), s.fd.get(), EPOLLIN, Tag(kTagSocket, slot));
  }
  // Otherwise the first replies after start can miss their receive timestamp (measured: about
  // one start in 300 on an idle host).
  const bool timestamps = std::any_of(sockets_.begin(), sockets_.begin() + kReflector4,
                                      [](const ProbeSocket& p) { return p.timestamps; });
  if (timestamps && !AwaitReceiveTimestamps(std::chrono::milliseconds(100)))
    spdlog::debug("probe: receive timestamps not confirmed on loopback before the first probe");
}

void Prober::OpenReflector(const ProberOptions& options) {
  for (SocketSlot slot : {kReflector4, kReflector6}) {
    if (sockets_[slot].fd.valid())
      epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, sockets_[slot].fd.get(), nullptr);
    sockets_[slot].fd = Fd();
  }
  if (!options.reflector_enabled) return;
  const auto listen = IpAddress::Parse(options.reflector_address);
  if (!listen) return;
  struct Want {
    SocketSlot slot;
    IpAddress address;
    bool required;
  };
  std::vector<Want> wants{{listen->is_v4() ? kReflector4 : kReflector6, *listen, true}};
  // 0.0.0.0 means every address: IPv6 peers reach us too.
  if (options.reflector_address == "0.0.0.0")
    wants.push_back({kReflector6, *IpAddress::Parse("::"), false});
  for (const Want& w : wants) {
    const int family = w.address.is_v4() ? AF_INET : AF_INET6;
    Fd fd(socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP));
    const int on = 1;
    if (family == AF_INET6) {
      // "::" alone serves both families; beside 0.0.0.0 it must leave IPv4 to that socket.
      const int v6only = w.required ? 0 : 1;
      setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
      setsockopt(fd.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on));
    } else {
      setsockopt(fd.get(), IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
    }
    const SocketAddress bind_to = SocketAddress::From(w.address, options.reflector_port);
    if (!fd.valid() || bind(fd.get(), bind_to.get(), bind_to.length) != 0) {
      if (w.required)
        spdlog::error("probe: reflector cannot listen on {} port {}/udp: {}",
                      options.reflector_address, options.reflector_port, std::strerror(errno));
      continue;
    }
    sockets_[w.slot].timestamps = EnableRxTimestamping(fd.get());
    AddToEpoll(epoll_.get(), fd.get(), EPOLLIN, Tag(kTagSocket, w.slot));
    sockets_[w.slot].fd = std::move(fd);
  }
}

void Prober::Apply(const ProberOptions& options, nanoseconds now) {
  const bool reflector_changed = !reflector_ ||
                                 options.reflector_enabled != options_.reflector_enabled ||
                                 options.reflector_address != options_.reflector_address ||
                                 options.reflector_port != options_.reflector_port;
  if (!reflector_) reflector_.emplace(options.reflector_rate);
  reflector_->set_rate(options.reflector_rate);
  reflector_->set_global_rate(options.reflector_global_rate);
  if (reflector_changed || reopen_reflector_) OpenReflector(options);
  reopen_reflector_ = false;
  options_ = options;

  // Series of (peer, method) pairs that stay keep their counters.
  const size_t window = WindowFor(options.interval, options.timeout);
  std::set<std::pair<std::string, Method>> wanted;
  std::vector<std::string> dns_names;
  targets_.clear();
  for (const PeerTarget& peer : options.peers) {
    const auto literal = IpAddress::Parse(peer.address);
    if (!literal) dns_names.push_back(peer.address);
    for (Method m : peer.methods) {
      const auto key = std::make_pair(peer.name, m);
      if (!wanted.insert(key).second) continue;
      auto& entry = series_[key];
      if (!entry) {
        const uint64_t id = next_series_id_++;
        entry = std::make_unique<SeriesEntry>(SeriesEntry{id, peer.name, m, session_base_ + id,
                                                          ProbeSeries(window, m == Method::kUdp)});
        by_id_[id] = entry.get();
        by_session_[entry->session] = entry.get();
      }
      const uint16_t port = m == Method::kTcp   ? peer.tcp_port
                            : m == Method::kUdp ? peer.udp_port
                                                : 0;
      targets_.push_back(Target{peer.name, peer.address, literal, m, port, entry->id});
    }
  }
  for (auto it = series_.begin(); it != series_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    by_id_.erase(it->second->id);
    by_session_.erase(it->second->session);
    it = series_.erase(it);
  }
  // Sends that fall due within this long of the last wake-up wait for the next one and go out
  // together, in one sendmmsg per socket. With many peers a wake-up per send costs more than the
  // send: 1,000 peers at 1 Hz are a send every millisecond, and batching them every 50 ms took
  // the prober from 5 % to under 2 % of a core. Holding a probe back by up to a twentieth of its
  // interval changes nothing it measures, since the kernel timestamps both the send and the
  // reply; without those timestamps the loop sends on time. A few peers are further apart than
  // this and are never held back.
  const bool timestamps =
      std::all_of(sockets_.begin(), sockets_.begin() + kReflector4,
                  [](const ProbeSocket& p) { return !p.fd.valid() || p.timestamps; });
  send_batch_ = timestamps
                    ? std::min<nanoseconds>(std::chrono::milliseconds(50), options.interval / 20)
                    : nanoseconds(0);
  scheduler_ = std::make_unique<Scheduler>(options.interval);
  scheduler_->Reset(targets_.size(), now);
  resolver_.SetNames(std::move(dns_names));
  ArmTimer();
}

void Prober::Run() {
  prctl(PR_SET_TIMERSLACK, 1000UL);  // wake within a microsecond of the schedule, not 50
  std::array<epoll_event, 64> events;
  while (!stop_) {
    const int n = Wait(events);
    if (n < 0 && errno != EINTR) {
      spdlog::error("probe: epoll_wait: {}", std::strerror(errno));
      return;
    }
    std::lock_guard lock(mutex_);
    for (int i = 0; i < n; ++i) HandleEvent(events[i].data.u64, events[i].events);
    const nanoseconds now = clock_.Monotonic();
    if (pending_) {
      Apply(*pending_, now);
      pending_.reset();
    }
    Expire(now);
    bool sent = false;
    scheduler_->RunDue(now, [&](size_t i) {
      Send(i, now);
      sent = true;
    });
    for (SocketSlot slot : {kUdp4, kUdp6, kIcmp4, kIcmp6}) FlushSends(slot);
    if (sent) last_send_wake_ = now;
    ArmTimer();
  }
}

void Prober::HandleEvent(uint64_t tag, uint32_t events) {
  const uint64_t kind = tag >> kTagShift;
  const uint64_t value = tag & ((uint64_t{1} << kTagShift) - 1);
  if (kind == kTagWake) {
    uint64_t count;
    (void)!read(wake_.get(), &count, sizeof(count));
  } else if (kind == kTagSocket) {
    const auto slot = static_cast<SocketSlot>(value);
    if (slot == kReflector4 || slot == kReflector6) {
      ReadReflector(slot);
    } else {
      if (events & EPOLLERR) DrainTx(slot, DrainLimit(slot));
      if (events & EPOLLIN) ReadProbeSocket(slot);
    }
  } else if (kind == kTagTcp) {
    FinishTcp(value);
  }
}

void Prober::DrainTx(SocketSlot slot, int max) {
  ProbeSocket& s = sockets_[slot];
  if (!s.timestamps) return;
  DrainTxTimestamps(s.fd.get(), max, [&](uint32_t key, int64_t ns) {
    // Keys arrive in send order; entries before `key` got no timestamp.
    while (!s.pending.empty() && static_cast<int32_t>(s.pending.front().key - key) < 0)
      s.pending.pop_front();
    if (s.pending.empty() || s.pending.front().key != key) return;
    if (auto it = by_id_.find(s.pending.front().series_id); it != by_id_.end())
      it->second->series.OnTxTimestamp(s.pending.front().sequence, ns);
    s.pending.pop_front();
  });
}

int Prober::DrainLimit(SocketSlot slot) const {
  // Every timestamp of a probe in flight, and one more: a message that is no timestamp (an ICMP
  // error) must not keep the error queue readable forever.
  return static_cast<int>(std::min<size_t>(sockets_[slot].pending.size(), 4096)) + 1;
}

void Prober::Received(SeriesEntry& entry, const ReplyInfo& reply) {
  const uint64_t before = entry.series.stats().timestamp_fallbacks;
  const ReplyKind kind = entry.series.OnReply(reply);
  fallbacks_[static_cast<size_t>(entry.method)] +=
      entry.series.stats().timestamp_fallbacks - before;
  if (kind == ReplyKind::kReceived && options_.on_rtt)
    options_.on_rtt(entry.peer, entry.method, reply.sequence, entry.series.last_rtt());
}

void Prober::ReadProbeSocket(SocketSlot slot) {
  ProbeSocket& s = sockets_[slot];
  const size_t received = batch_.Receive(s.fd.get());
  const nanoseconds rx_monotonic = clock_.Monotonic();
  for (size_t i = 0; i < received; ++i) {
    const Datagram& d = batch_.datagram(i);
    std::span<const uint8_t> bytes = batch_.bytes(i);
    ReplyInfo reply;
    reply.rx_monotonic = rx_monotonic;
    reply.rx_kernel_ns = d.rx_kernel_ns;
    uint64_t session = 0;
    if (slot == kUdp4 || slot == kUdp6) {
      const DecodeResult r = Decode(bytes);
      if (!r.packet || r.packet->type != ProbeType::kReply) {
        ++malformed_replies_;
        continue;
      }
      session = r.packet->session;
      reply.sequence = r.packet->sequence;
      reply.reflector_count = r.packet->receive_count;
      // Bounded so a broken or hostile reflector cannot make an RTT negative or overflow.
      reply.turnaround = nanoseconds(std::min<uint64_t>(r.packet->turnaround_ns, 60'000'000'000));
    } else {
      const IcmpDecodeResult r =
          DecodeIcmpEchoReply(bytes, slot == kIcmp4, s.raw && slot == kIcmp4);
      if (!r.reply) {
        if (r.malformed) ++malformed_replies_;
        continue;
      }
      // Raw sockets see every echo reply of the host; only ours carry our id.
      if (s.raw && r.reply->id != icmp_id_) continue;
      session = r.reply->session;
      reply.sequence = r.reply->sequence;
    }
    auto it = by_session_.find(session);
    if (it == by_session_.end()) {
      ++malformed_replies_;
      continue;
    }
    // The transmit timestamp is queued before the reply can arrive, but may not have been read
    // yet: read what waits (bounded by the probes in flight on this socket).
    if (s.timestamps && it->second->series.NeedsTxTimestamp(reply.sequence))
      DrainTx(slot, DrainLimit(slot));
    Received(*it->second, reply);
  }
}

void Prober::ReadReflector(SocketSlot slot) {
  const int fd = sockets_[slot].fd.get();
  const size_t received = batch_.Receive(fd);
  for (size_t i = 0; i < received; ++i) {
    const Datagram& d = batch_.datagram(i);
    if (options_.answer_hello && discovery::IsHello(batch_.bytes(i))) {
      AnswerHello(fd, d, batch_.bytes(i));
      continue;
    }
    // An oversized datagram is never a probe; Decode counts it as too long.
    auto reply = reflector_->Handle(d.source.address(), batch_.bytes(i), clock_.Monotonic());
    if (!reply) continue;
    if (d.rx_kernel_ns) {
      const int64_t held = RealtimeNs() - *d.rx_kernel_ns;
      if (held > 0) SetTurnaround(*reply, static_cast<uint64_t>(held));
    }
    std::optional<IpAddress> local = d.local;
    // IPv4 on a dual-stack socket: the v4-mapped source cannot be set through IPV6_PKTINFO.
    if (local && local->is_v4() && d.source.storage.ss_family == AF_INET6) local.reset();
    SendFrom(fd, *reply, d.source, local, d.local_ifindex);
  }
}

void Prober::AnswerHello(int fd, const Datagram& d, std::span<const uint8_t> request) {
  // Self-identification: this node's name and the address the hello reached. The reply is never
  // larger than the request, so the reflector cannot be used to amplify.
  std::vector<IpPrefix> addresses;
  if (d.local) addresses.push_back(IpPrefix{*d.local, d.local->is_v4() ? 32 : 128});
  const auto reply = discovery::AnswerHello(request, options_.node_name, addresses, nullptr);
  if (!reply || !reflector_->AllowReply(d.source.address(), clock_.Monotonic())) return;
  std::optional<IpAddress> local = d.local;
  if (local && local->is_v4() && d.source.storage.ss_family == AF_INET6) local.reset();
  SendFrom(fd, *reply, d.source, local, d.local_ifindex);
}

void Prober::Send(size_t target_index, nanoseconds now) {
  const Target& t = targets_[target_index];
  auto it = by_id_.find(t.series_id);
  if (it == by_id_.end()) return;
  SeriesEntry& entry = *it->second;
  if (options_.max_probes_per_series != 0 &&
      entry.series.stats().sent >= options_.max_probes_per_series)
    return;
  std::optional<IpAddress> to = t.literal;
  if (!to) to = resolver_.Lookup(t.address);
  if (!to) {
    entry.series.CountError("unresolved");
    return;
  }
  const uint64_t sequence = entry.series.next_sequence();
  switch (t.method) {
    case Method::kUdp: {
      ProbePacket p;
      p.session = entry.session;
      p.sequence = sequence;
      p.send_time_ns = static_cast<uint64_t>(now.count());
      const ProbeBytes bytes = Encode(p);
      SendDatagram(to->is_v4() ? kUdp4 : kUdp6, entry, *to, t.port, bytes, sequence);
      break;
    }
    case Method::kIcmp: {
      const IcmpEchoBytes b = EncodeIcmpEcho(to->is_v4(), icmp_id_, entry.session, sequence);
      SendDatagram(to->is_v4() ? kIcmp4 : kIcmp6, entry, *to, 0, b, sequence);
      break;
    }
    case Method::kTcp:
      SendTcp(entry, *to, t.port, now);
      break;
  }
}

void Prober::SendDatagram(SocketSlot slot, SeriesEntry& entry, const IpAddress& to, uint16_t port,
                          std::span<const uint8_t> bytes, uint64_t sequence) {
  ProbeSocket& s = sockets_[slot];
  if (!s.fd.valid()) {
    entry.series.CountError("socket_unavailable");
    return;
  }
  static_assert(std::tuple_size_v<decltype(OutgoingProbe::bytes)> >=
                std::max(kProbeSize, kIcmpEchoSize));
  OutgoingProbe& out = s.outbox.emplace_back();
  out.series_id = entry.id;
  out.sequence = sequence;
  out.to = SocketAddress::From(to, port);
  out.size = std::min(bytes.size(), out.bytes.size());
  std::copy_n(bytes.begin(), out.size, out.bytes.begin());
  // Without kernel timestamps the RTT starts at our own clock reading: send at once.
  if (send_batch_ == nanoseconds(0)) FlushSends(slot);
}

void Prober::FlushSends(SocketSlot slot) {
  ProbeSocket& s = sockets_[slot];
  std::vector<OutgoingProbe>& out = s.outbox;
  if (out.empty()) return;
  send_headers_.resize(out.size());
  send_iovecs_.resize(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    send_iovecs_[i] = iovec{out[i].bytes.data(), out[i].size};
    msghdr& msg = send_headers_[i].msg_hdr;
    msg = msghdr{};
    msg.msg_name = &out[i].to.storage;
    msg.msg_namelen = out[i].to.length;
    msg.msg_iov = &send_iovecs_[i];
    msg.msg_iovlen = 1;
  }
  const nanoseconds sent_at = clock_.Monotonic();
  for (size_t i = 0; i < out.size();) {
    const int n = sendmmsg(s.fd.get(), &send_headers_[i], static_cast<unsigned>(out.size() - i),
                           MSG_DONTWAIT);
    // An error is reported only when the first datagram fails: count it and go on after it.
    const size_t done = n > 0 ? static_cast<size_t>(n) : 1;
    const int error = n > 0 ? 0 : errno;
    for (size_t k = i; k < i + done; ++k) {
      auto it = by_id_.find(out[k].series_id);
      if (it == by_id_.end()) continue;
      SeriesEntry& entry = *it->second;
      if (error != 0) {
        entry.series.CountError(ErrnoReason(error));
        continue;
      }
      entry.series.OnSent(sent_at, sent_at + options_.timeout);
      deadlines_.push(Deadline{sent_at + options_.timeout, entry.id, 0});
      if (s.timestamps) {
        s.pending.push_back(TxPending{s.next_key++, entry.id, out[k].sequence});
        if (s.pending.size() > kMaxPendingTx) s.pending.pop_front();
      }
    }
    i += done;
  }
  out.clear();
}

void Prober::SendTcp(SeriesEntry& entry, const IpAddress& to, uint16_t port, nanoseconds now) {
  if (tcp_conns_.size() >= kMaxTcpConns) {
    entry.series.CountError("too_many_connections");
    return;
  }
  const int family = to.is_v4() ? AF_INET : AF_INET6;
  Fd fd(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!fd.valid()) {
    entry.series.CountError(ErrnoReason(errno));
    return;
  }
  // Closing with linger 0 sends a RST: the prober leaves no TIME_WAIT socket per probe.
  const linger no_linger{1, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &no_linger, sizeof(no_linger));
  const SocketAddress addr = SocketAddress::From(to, port);
  if (connect(fd.get(), addr.get(), addr.length) != 0 && errno != EINPROGRESS) {
    entry.series.CountError(ErrnoReason(errno));
    return;
  }
  const uint64_t sequence = entry.series.OnSent(now, now + options_.timeout);
  const uint64_t conn_id = next_conn_id_++;
  if (!AddToEpoll(epoll_.get(), fd.get(), EPOLLOUT, Tag(kTagTcp, conn_id))) {
    entry.series.OnFailed(sequence, "epoll");
    return;
  }
  tcp_conns_.emplace(conn_id, TcpConn{std::move(fd), entry.id, sequence});
  deadlines_.push(Deadline{now + options_.timeout, entry.id, conn_id});
}

void Prober::FinishTcp(uint64_t conn_id) {
  auto it = tcp_conns_.find(conn_id);
  if (it == tcp_conns_.end()) return;
  const nanoseconds rx_monotonic = clock_.Monotonic();
  TcpConn conn = std::move(it->second);
  tcp_conns_.erase(it);
  auto s = by_id_.find(conn.series_id);
  if (s == by_id_.end()) return;
  ProbeSeries& series = s->second->series;
  int error = 0;
  socklen_t len = sizeof(error);
  getsockopt(conn.fd.get(), SOL_SOCKET, SO_ERROR, &error, &len);
  if (error != 0) {
    series.OnFailed(conn.sequence, ErrnoReason(error));
    return;
  }
  ReplyInfo reply;
  reply.sequence = conn.sequence;
  reply.rx_monotonic = rx_monotonic;
  // The kernel timed the handshake itself (SYN sent to SYN-ACK received), in microseconds.
  tcp_info info{};
  socklen_t info_len = sizeof(info);
  if (getsockopt(conn.fd.get(), IPPROTO_TCP, TCP_INFO, &info, &info_len) == 0 && info.tcpi_rtt > 0)
    reply.kernel_rtt = std::chrono::microseconds(info.tcpi_rtt);
  Received(*s->second, reply);
}

void Prober::Expire(nanoseconds now) {
  while (!deadlines_.empty() && deadlines_.top().at <= now) {
    const Deadline d = deadlines_.top();
    deadlines_.pop();
    if (auto it = by_id_.find(d.series_id); it != by_id_.end()) it->second->series.Expire(now);
    if (d.conn_id != 0) tcp_conns_.erase(d.conn_id);
  }
}

void Prober::ArmTimer() {
  std::optional<nanoseconds> next = scheduler_ ? scheduler_->NextDue() : std::nullopt;
  if (next && last_send_wake_ && *next < *last_send_wake_ + send_batch_)
    next = *last_send_wake_ + send_batch_;
  // Deadlines are settled on the next wake anyway; they get a wake of their own only when no
  // send comes within a little slack. Whether a reply is late does not depend on this (its
  // receive time decides), only when the lost counter moves.
  if (!deadlines_.empty()) {
    const nanoseconds slack =
        std::min<nanoseconds>(std::chrono::milliseconds(10), options_.timeout / 10);
    const nanoseconds deadline = deadlines_.top().at + slack;
    if (!next || deadline < *next) next = deadline;
  }
  next_wake_ = next;
}

int Prober::Wait(std::span<epoll_event> events) {
  // At least once a second even when idle, so nothing depends on a wake-up never coming.
  nanoseconds timeout = std::chrono::seconds(1);
  if (next_wake_)
    timeout = std::clamp<nanoseconds>(*next_wake_ - clock_.Monotonic(), nanoseconds(0), timeout);
  const int max = static_cast<int>(events.size());
  if (!no_pwait2_) {
    // Nanosecond timeouts without a timerfd: no read and re-arm per wake-up.
    const timespec ts{static_cast<time_t>(timeout.count() / 1'000'000'000),
                      static_cast<long>(timeout.count() % 1'000'000'000)};
    const int n = epoll_pwait2(epoll_.get(), events.data(), max, &ts, nullptr);
    if (n >= 0 || errno != ENOSYS) return n;
    no_pwait2_ = true;  // kernels before 5.11
  }
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
  return epoll_wait(epoll_.get(), events.data(), max, static_cast<int>(ms));
}

ProberSnapshot Prober::Snapshot() const {
  std::lock_guard lock(mutex_);
  ProberSnapshot snap;
  snap.node_name = options_.node_name;
  snap.series.reserve(series_.size());
  for (const auto& [key, entry] : series_)
    snap.series.push_back(SeriesSnapshot{entry->peer, entry->method, entry->series.stats(),
                                         entry->series.in_flight()});
  snap.timestamp_fallbacks = fallbacks_;
  snap.reflector_running = sockets_[kReflector4].fd.valid() || sockets_[kReflector6].fd.valid();
  if (reflector_) snap.reflector = reflector_->counters();
  snap.schedule_skipped = scheduler_ ? scheduler_->skipped() : 0;
  snap.malformed_replies = malformed_replies_;
  snap.icmp_socket = icmp_socket_;
  return snap;
}

}  // namespace meshflow::probe
