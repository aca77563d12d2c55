#include "collectors/probe/probe_collector.h"

#include <string>

#include "common/core/metric_builder.h"

namespace meshflow::probe {
namespace {

using prometheus::MetricType;

LabelPairs SeriesLabels(const ProberSnapshot& snap, const SeriesSnapshot& s) {
  return LabelPairs{{"src_node", snap.node_name},
                    {"dst_node", s.peer},
                    {"method", std::string(MethodName(s.method))}};
}

template <typename Field>
void CounterFamily(std::vector<prometheus::MetricFamily>& out, const ProberSnapshot& snap,
                   const char* name, const char* help, Field field, bool udp_only = false) {
  FamilyBuilder b(name, help, MetricType::Counter);
  for (const auto& s : snap.series) {
    if (udp_only && s.method != Method::kUdp) continue;
    b.Counter(SeriesLabels(snap, s), static_cast<double>(field(s)));
  }
  b.AppendTo(out);
}

}  // namespace

std::vector<prometheus::MetricFamily> BuildFamilies(const ProberSnapshot& snap) {
  std::vector<prometheus::MetricFamily> out;
  {
    FamilyBuilder b("meshflow_probe_rtt_seconds",
                    "Round-trip time of probes answered before their deadline, from kernel "
                    "timestamps where available.",
                    MetricType::Histogram);
    for (const auto& s : snap.series) b.Histogram(SeriesLabels(snap, s), s.stats.rtt);
    b.AppendTo(out);
  }
  CounterFamily(out, snap, "meshflow_probe_sent_total", "Probes sent.",
                [](const SeriesSnapshot& s) { return s.stats.sent; });
  CounterFamily(out, snap, "meshflow_probe_received_total",
                "Probes answered before their deadline.",
                [](const SeriesSnapshot& s) { return s.stats.received; });
  CounterFamily(out, snap, "meshflow_probe_lost_total",
                "Probes whose deadline passed without a reply (late replies included).",
                [](const SeriesSnapshot& s) { return s.stats.lost; });
  CounterFamily(out, snap, "meshflow_probe_late_total", "Replies that arrived after the deadline.",
                [](const SeriesSnapshot& s) { return s.stats.late; });
  CounterFamily(out, snap, "meshflow_probe_duplicates_total", "Replies received more than once.",
                [](const SeriesSnapshot& s) { return s.stats.duplicates; });
  CounterFamily(out, snap, "meshflow_probe_reordered_total",
                "Replies that arrived after a reply to a later probe.",
                [](const SeriesSnapshot& s) { return s.stats.reordered; });
  CounterFamily(
      out, snap, "meshflow_probe_forward_lost_total",
      "Lost probes that never reached the peer's reflector (udp), by the reflector's count.",
      [](const SeriesSnapshot& s) { return s.stats.forward_lost; }, true);
  CounterFamily(
      out, snap, "meshflow_probe_return_lost_total",
      "Lost probes that reached the peer's reflector but whose reply did not arrive in time (udp).",
      [](const SeriesSnapshot& s) { return s.stats.return_lost; }, true);
  {
    FamilyBuilder b("meshflow_probe_in_flight", "Probes sent whose deadline has not passed yet.",
                    MetricType::Gauge);
    for (const auto& s : snap.series)
      b.Gauge(SeriesLabels(snap, s), static_cast<double>(s.in_flight));
    b.AppendTo(out);
  }
  {
    FamilyBuilder b("meshflow_probe_errors_total",
                    "Probes that could not be sent or failed without a reply, by reason.",
                    MetricType::Counter);
    for (const auto& s : snap.series) {
      for (const auto& [reason, count] : s.stats.errors) {
        LabelPairs labels = SeriesLabels(snap, s);
        labels.push_back({"reason", reason});
        b.Counter(std::move(labels), static_cast<double>(count));
      }
    }
    b.AppendTo(out);
  }
  {
    FamilyBuilder b("meshflow_probe_jitter_seconds",
                    "Interarrival jitter of the RTT, RFC 3550 estimator (J += (|D| - J) / 16).",
                    MetricType::Gauge);
    for (const auto& s : snap.series) b.Gauge(SeriesLabels(snap, s), s.stats.jitter_seconds);
    b.AppendTo(out);
  }
  {
    FamilyBuilder b("meshflow_probe_timestamp_fallbacks_total",
                    "RTTs taken from the monotonic clock because the kernel gave no timestamp.",
                    MetricType::Counter);
    for (size_t m = 0; m < kMethodCount; ++m)
      b.Counter({{"method", std::string(MethodName(static_cast<Method>(m)))}},
                static_cast<double>(snap.timestamp_fallbacks[m]));
    b.AppendTo(out);
  }
  {
    FamilyBuilder b("meshflow_probe_unknown_replies_total",
                    "Replies on the probe sockets that matched no probe in flight or recent, or "
                    "were malformed.",
                    MetricType::Counter);
    uint64_t unknown = snap.malformed_replies;
    for (const auto& s : snap.series) unknown += s.stats.unknown_replies;
    b.Counter({}, static_cast<double>(unknown));
    b.AppendTo(out);
  }
  {
    FamilyBuilder b("meshflow_probe_schedule_skipped_total",
                    "Probe rounds skipped because the prober fell more than an interval behind.",
                    MetricType::Counter);
    b.Counter({}, static_cast<double>(snap.schedule_skipped));
    b.AppendTo(out);
  }
  if (snap.reflector_running) {
    const ReflectorCounters& r = snap.reflector;
    FamilyBuilder("meshflow_probe_reflector_requests_total", "Well-formed probe requests received.",
                  MetricType::Counter)
        .Counter({}, static_cast<double>(r.requests))
        .AppendTo(out);
    FamilyBuilder("meshflow_probe_reflector_replies_total", "Probe replies sent.",
                  MetricType::Counter)
        .Counter({}, static_cast<double>(r.replies))
        .AppendTo(out);
    FamilyBuilder("meshflow_probe_reflector_rate_limited_total",
                  "Requests left unanswered because their source exceeded its reply rate.",
                  MetricType::Counter)
        .Counter({}, static_cast<double>(r.rate_limited))
        .AppendTo(out);
    FamilyBuilder malformed("meshflow_probe_reflector_malformed_total",
                            "Datagrams on the reflector port that were not probe requests, never "
                            "answered, by reason.",
                            MetricType::Counter);
    for (size_t i = 0; i < kDecodeErrorCount; ++i)
      malformed.Counter({{"reason", std::string(DecodeErrorName(static_cast<DecodeError>(i)))}},
                        static_cast<double>(r.malformed[i]));
    malformed.Counter({{"reason", "not_request"}}, static_cast<double>(r.not_request));
    malformed.AppendTo(out);
  }
  return out;
}

ProbeCollector::ProbeCollector(const Config& config)
    : options_(OptionsFromConfig(config)), path_mtu_config_(config.probes.path_mtu) {}

namespace {
void StartPathMtu(const ProbesConfig::PathMtu& config, const ProberOptions& options,
                  PathMtuProber& prober) {
  prober.Stop();
  if (!config.enabled) return;
  std::vector<PathMtuTarget> targets;
  for (const auto& p : options.peers) targets.push_back({p.name, p.address});
  prober.Start(std::move(targets), config.interval, config.timeout);
}
}  // namespace

ProbeCollector::~ProbeCollector() { Stop(); }

void ProbeCollector::Start() {
  if (started_) return;
  prober_.Start(options_);
  StartPathMtu(path_mtu_config_, options_, path_mtu_);
  started_ = true;
}

void ProbeCollector::Stop() {
  if (!started_) return;
  prober_.Stop();
  path_mtu_.Stop();
  started_ = false;
}

void ProbeCollector::Reconfigure(const Config& config) {
  options_ = OptionsFromConfig(config);
  path_mtu_config_ = config.probes.path_mtu;
  if (started_) prober_.Reconfigure(options_);
  if (started_) StartPathMtu(path_mtu_config_, options_, path_mtu_);
}

void ProbeCollector::Collect(std::vector<prometheus::MetricFamily>& out) {
  auto families = BuildFamilies(prober_.Snapshot());
  for (auto& f : families) out.push_back(std::move(f));
  AppendPathMtuFamilies(options_.node_name, path_mtu_.Snapshot(), out);
}

std::unique_ptr<Collector> MakeProbeCollector(const Config& config) {
  return std::make_unique<ProbeCollector>(config);
}

}  // namespace meshflow::probe
