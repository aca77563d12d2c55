#pragma once

#include <sys/epoll.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "collectors/probe/reflector_core.h"
#include "collectors/probe/resolver.h"
#include "collectors/probe/series.h"
#include "collectors/probe/sockets.h"
#include "common/core/clock.h"
#include "common/core/ip_address.h"

namespace meshflow {
struct Config;
}

namespace meshflow::probe {

enum class Method : uint8_t { kIcmp = 0, kUdp = 1, kTcp = 2 };
inline constexpr size_t kMethodCount = 3;
std::string_view MethodName(Method method);
std::optional<Method> ParseMethod(std::string_view name);

struct PeerTarget {
  std::string name;
  std::string address;  // IP literal or DNS name
  std::vector<Method> methods;
  uint16_t tcp_port = 6443;
  uint16_t udp_port = 9474;
};

struct ProberOptions {
  std::string node_name;
  nanoseconds interval = std::chrono::seconds(1);
  nanoseconds timeout = std::chrono::seconds(3);
  nanoseconds dns_refresh_interval = std::chrono::seconds(60);
  std::vector<PeerTarget> peers;
  bool reflector_enabled = true;
  std::string reflector_address = "0.0.0.0";
  uint16_t reflector_port = 9474;
  double reflector_rate = 50;
  double reflector_global_rate = 5000;  // replies per second over all sources
  // The reflector also answers hellos (common/discovery/hello.h) with node_name.
  bool answer_hello = true;
  // Stop sending to a series after this many probes (0: never); for one-shot measurements.
  uint64_t max_probes_per_series = 0;
  // Called on the probing thread for every reply received in time, with its RTT.
  std::function<void(const std::string& peer, Method method, uint64_t sequence, double rtt)> on_rtt;
};

// The peers the config asks for: probes.peers, or every other node at its first address.
ProberOptions OptionsFromConfig(const Config& config);

struct SeriesSnapshot {
  std::string peer;
  Method method = Method::kIcmp;
  SeriesStats stats;
  uint64_t in_flight = 0;
};

struct ProberSnapshot {
  std::string node_name;
  std::vector<SeriesSnapshot> series;
  std::array<uint64_t, kMethodCount> timestamp_fallbacks{};
  bool reflector_running = false;
  ReflectorCounters reflector;
  uint64_t schedule_skipped = 0;
  uint64_t malformed_replies = 0;  // datagrams on the probe sockets that were no reply of ours
  std::string icmp_socket;         // "datagram", "raw" or "none"
};

// Probes every peer on one thread: an epoll loop whose timeout is the next send or
// deadline, the UDP reflector on the same loop. Thread-safe: Snapshot() and Reconfigure() may be
// called from any thread.
class Prober {
 public:
  // Schedules, deadlines and the fallback stamps (where the kernel gives no timestamp) come from
  // `clock`; kernel timestamps come from the kernel.
  explicit Prober(const Clock& clock = SystemClock::Instance());
  ~Prober();
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // Opens the sockets and starts the loop. Sockets that cannot be opened are logged, and probes
  // needing them are counted as errors.
  void Start(const ProberOptions& options);
  void Stop();
  void Reconfigure(const ProberOptions& options);
  ProberSnapshot Snapshot() const;

 private:
  struct SeriesEntry {
    uint64_t id;
    std::string peer;
    Method method;
    uint64_t session;
    ProbeSeries series;
  };
  struct Target {
    std::string peer;
    std::string address;
    std::optional<IpAddress> literal;
    Method method;
    uint16_t port;
    uint64_t series_id;
  };
  struct TxPending {
    uint32_t key;
    uint64_t series_id;
    uint64_t sequence;
  };
  // A datagram probe encoded and waiting for the batch it goes out with.
  struct OutgoingProbe {
    uint64_t series_id;
    uint64_t sequence;
    SocketAddress to;
    std::array<uint8_t, 64> bytes;
    size_t size;
  };
  // A probe socket shared by every peer of one family and method.
  struct ProbeSocket {
    Fd fd;
    bool timestamps = false;
    bool raw = false;  // ICMP through a raw socket: IP header on receive (IPv4), own id
    uint32_t next_key = 0;
    std::deque<TxPending> pending;
    std::vector<OutgoingProbe> outbox;  // encoded, sent together by FlushSends
  };
  struct TcpConn {
    Fd fd;
    uint64_t series_id;
    uint64_t sequence;
  };
  struct Deadline {
    nanoseconds at;
    uint64_t series_id;
    uint64_t conn_id;
    bool operator>(const Deadline& o) const { return at > o.at; }
  };
  enum SocketSlot : size_t { kUdp4, kUdp6, kIcmp4, kIcmp6, kReflector4, kReflector6, kSlots };

  void Run();
  void Apply(const ProberOptions& options, nanoseconds now);
  void OpenProbeSockets();
  void OpenReflector(const ProberOptions& options);
  void HandleEvent(uint64_t tag, uint32_t events);
  void ReadProbeSocket(SocketSlot slot);
  void ReadReflector(SocketSlot slot);
  void AnswerHello(int fd, const Datagram& d, std::span<const uint8_t> request);
  void FinishTcp(uint64_t conn_id);
  // Reads transmit timestamps: up to `max`, or until `until` holds.
  void DrainTx(SocketSlot slot, int max);
  int DrainLimit(SocketSlot slot) const;
  void Send(size_t target_index, nanoseconds now);
  void SendDatagram(SocketSlot slot, SeriesEntry& entry, const IpAddress& to, uint16_t port,
                    std::span<const uint8_t> bytes, uint64_t sequence);
  // Sends what waits in a socket's outbox, many datagrams per system call (sendmmsg).
  void FlushSends(SocketSlot slot);
  void SendTcp(SeriesEntry& entry, const IpAddress& to, uint16_t port, nanoseconds now);
  void Expire(nanoseconds now);
  void ArmTimer();  // computes next_wake_
  int Wait(std::span<epoll_event> events);
  void Received(SeriesEntry& entry, const ReplyInfo& reply);

  const Clock& clock_;
  mutable std::mutex mutex_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  Fd epoll_;
  Fd wake_;
  std::optional<ProberOptions> pending_;
  ProberOptions options_;

  std::array<ProbeSocket, kSlots> sockets_;
  std::optional<ReflectorCore> reflector_;
  std::string icmp_socket_ = "none";
  uint16_t icmp_id_ = 0;
  uint64_t session_base_ = 0;
  uint64_t next_series_id_ = 1;
  uint64_t next_conn_id_ = 1;

  std::map<std::pair<std::string, Method>, std::unique_ptr<SeriesEntry>> series_;
  std::unordered_map<uint64_t, SeriesEntry*> by_id_;
  std::unordered_map<uint64_t, SeriesEntry*> by_session_;
  std::vector<Target> targets_;
  std::unique_ptr<Scheduler> scheduler_;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> deadlines_;
  std::unordered_map<uint64_t, TcpConn> tcp_conns_;
  std::array<uint64_t, kMethodCount> fallbacks_{};
  uint64_t malformed_replies_ = 0;
  DatagramBatch batch_;  // what the last read of a socket returned
  std::vector<mmsghdr> send_headers_;
  std::vector<iovec> send_iovecs_;
  std::optional<nanoseconds> last_send_wake_;  // when the loop last sent probes
  nanoseconds send_batch_{0};                  // see Apply
  std::optional<nanoseconds> next_wake_;       // the next send or deadline, for the epoll timeout
  bool no_pwait2_ = false;
  bool reopen_reflector_ = false;  // after Stop(), Start() opens the reflector afresh
  Resolver resolver_;
};

}  // namespace meshflow::probe
