#include "collectors/flow/tcp/tcp_series.h"

#include <spdlog/spdlog.h>

#include "common/core/metric_builder.h"

namespace meshflow::flow::tcp {
namespace {

const char* KindName(RttKind kind) {
  return kind == RttKind::kHandshake ? "handshake" : "timestamp";
}

uint64_t PairKey(uint32_t a, RoleId role, NodeId src, NodeId dst) {
  return uint64_t{a & 0xffff} << 48 | uint64_t{role} << 32 | uint64_t{src} << 16 | dst;
}

}  // namespace

TcpSeries::TcpSeries(size_t max_series, InterfaceName interface_name)
    : interface_name_(std::move(interface_name)), max_series_(max_series) {}

void TcpSeries::Rebind(const Classifier& names, size_t max_series) {
  std::lock_guard lock(mutex_);
  names_ = &names;
  max_series_ = max_series;
  rtt_by_id_.clear();
  retransmission_by_id_.clear();
}

template <typename Series, typename Make>
Series* TcpSeries::FindOrAdd(std::map<Labels, size_t>& index,
                             std::vector<std::unique_ptr<Series>>& all, Labels labels,
                             Make&& make) {
  if (const auto it = index.find(labels); it != index.end()) return all[it->second].get();
  if (rtt_.size() + retransmissions_.size() >= max_series_) return nullptr;
  index.emplace(labels, all.size());
  all.push_back(make(labels));
  return all.back().get();
}

void TcpSeries::OnRtt(const RttSample& sample) {
  if (names_ == nullptr) return;
  std::lock_guard lock(mutex_);
  const uint64_t id =
      PairKey(static_cast<uint32_t>(sample.kind), sample.role, sample.client, sample.server);
  RttSeries*& cached = rtt_by_id_[id];
  if (cached == nullptr) {
    auto make = [](const Labels& l) {
      return std::make_unique<RttSeries>(RttSeries{l[0], l[1], l[2], l[3], LatencyHistogram()});
    };
    cached = FindOrAdd(rtt_index_, rtt_,
                       {names_->RoleName(sample.role), names_->NodeName(sample.client),
                        names_->NodeName(sample.server), KindName(sample.kind)},
                       make);
    if (cached == nullptr) {
      ++overflowed_;
      // Past the bound: one overflow series per kind, which always gets its place.
      const size_t saved = max_series_;
      max_series_ = SIZE_MAX;
      cached = FindOrAdd(rtt_index_, rtt_, {"other", "overflow", "overflow", KindName(sample.kind)},
                         make);
      max_series_ = saved;
      cached->histogram.Observe(sample.seconds);
      rtt_by_id_.erase(id);  // every later result of this key is counted as folded too
      return;
    }
  }
  cached->histogram.Observe(sample.seconds);
  // Each sample at debug level, so a median can be checked against the kernel's own RTT
  // (the histogram's buckets are √2 apart).
  spdlog::debug("tcp rtt sample role={} src_node={} dst_node={} kind={} seconds={:.6f}",
                cached->role, cached->src_node, cached->dst_node, cached->kind, sample.seconds);
}

void TcpSeries::OnRetransmission(const Retransmission& r) {
  if (names_ == nullptr) return;
  std::lock_guard lock(mutex_);
  const uint64_t id = PairKey(r.interface_id, r.role, r.src, r.dst);
  RetransmissionSeries*& cached = retransmission_by_id_[id];
  if (cached == nullptr) {
    auto make = [](const Labels& l) {
      return std::make_unique<RetransmissionSeries>(
          RetransmissionSeries{l[0], l[1], l[2], l[3], 0, 0});
    };
    const std::string iface = interface_name_(r.interface_id);
    cached = FindOrAdd(
        retransmission_index_, retransmissions_,
        {iface, names_->RoleName(r.role), names_->NodeName(r.src), names_->NodeName(r.dst)}, make);
    if (cached == nullptr) {
      ++overflowed_;
      const size_t saved = max_series_;
      max_series_ = SIZE_MAX;
      RetransmissionSeries* overflow = FindOrAdd(retransmission_index_, retransmissions_,
                                                 {iface, "other", "overflow", "overflow"}, make);
      max_series_ = saved;
      overflow->packets += 1;
      overflow->bytes += r.bytes;
      retransmission_by_id_.erase(id);
      return;
    }
  }
  cached->packets += 1;
  cached->bytes += r.bytes;
}

void TcpSeries::Collect(std::vector<prometheus::MetricFamily>& out) const {
  using prometheus::MetricType;
  FamilyBuilder rtt("meshflow_tcp_rtt_seconds",
                    "Round-trip time measured passively from TCP connections: kind handshake "
                    "(SYN, SYN/ACK, ACK) or timestamp (TSval to matching TSecr); src_node is "
                    "the client.",
                    MetricType::Histogram);
  FamilyBuilder packets("meshflow_tcp_retransmitted_packets_total",
                        "TCP segments (data, SYN or FIN) whose sequence range was already seen "
                        "in their direction; src_node is the sender.",
                        MetricType::Counter);
  FamilyBuilder bytes("meshflow_tcp_retransmitted_bytes_total",
                      "IP bytes of retransmitted TCP segments; src_node is the sender.",
                      MetricType::Counter);
  FamilyBuilder overflow("meshflow_tcp_series_overflow_total",
                         "Passive TCP results folded into an overflow series because "
                         "flows.max_series was reached.",
                         MetricType::Counter);
  std::lock_guard lock(mutex_);
  for (const auto& s : rtt_) {
    rtt.Histogram({{"role", s->role},
                   {"src_node", s->src_node},
                   {"dst_node", s->dst_node},
                   {"kind", s->kind}},
                  s->histogram);
  }
  for (const auto& s : retransmissions_) {
    LabelPairs labels{{"iface", s->iface},
                      {"role", s->role},
                      {"src_node", s->src_node},
                      {"dst_node", s->dst_node}};
    packets.Counter(labels, static_cast<double>(s->packets));
    bytes.Counter(std::move(labels), static_cast<double>(s->bytes));
  }
  overflow.Counter({}, static_cast<double>(overflowed_));
  rtt.AppendTo(out);
  packets.AppendTo(out);
  bytes.AppendTo(out);
  overflow.AppendTo(out);
}

}  // namespace meshflow::flow::tcp
