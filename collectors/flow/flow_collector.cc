#include "collectors/flow/flow_collector.h"

#include <linux/capability.h>

#include <string>

#include "collectors/flow/flow_pipeline.h"
#include "collectors/flow/flow_table.h"
#include "common/core/metric_builder.h"

namespace meshflow::flow {
namespace {

// The real pipeline behind the stage interface. It is the one writer of the packets it was handed
// and of each interface's kind, live as in replay; the capture loop reports only what happened
// before the pipeline (drops, handle health).
class PipelineStage final : public FlowStage {
 public:
  explicit PipelineStage(const Config& config) : pipeline_(config) {}
  uint32_t AddInterface(const std::string& name, int link_type) override {
    return pipeline_.AddInterface(name, link_type);
  }
  void OnPacket(uint32_t interface_id, const CapturedPacket& packet) override {
    pipeline_.OnPacket(interface_id, packet);
  }
  void Flush() override { pipeline_.Flush(); }
  void Reconfigure(const Config& config) override { pipeline_.Reconfigure(config); }
  void Collect(std::vector<prometheus::MetricFamily>& out) override {
    pipeline_.CollectCaptureFamilies(out);
    pipeline_.Collect(out);
  }
  void RefreshLocalAddresses() override { pipeline_.RefreshLocalAddresses(); }

 private:
  FlowPipeline pipeline_;
};

}  // namespace

// Live, the capture loop's bound on interface names is the bound on every per-interface series,
// its own and the pipeline's; the pipeline's larger table is for replays with many interfaces.
// Live capture must never reach the pipeline's limit, where packets would go uncounted.
static_assert(CaptureLoop::kMaxInterfaces <= FlowTable::kMaxInterfaces);

std::unique_ptr<FlowStage> MakeFlowPipelineStage(const Config& config) {
  return std::make_unique<PipelineStage>(config);
}

std::unique_ptr<Collector> CreateFlowCollector(const Config& config) {
  return std::make_unique<FlowCollector>(config, MakeFlowPipelineStage(config));
}

void AppendCaptureFamilies(const std::vector<InterfaceHealth>& health,
                           const CaptureLoopCounters& counters,
                           std::vector<prometheus::MetricFamily>& out) {
  using prometheus::MetricType;
  FamilyBuilder dropped("meshflow_capture_dropped_packets_total",
                        "Packets lost before meshflow saw them: where=kernel when the capture ring "
                        "was full (ps_drop), where=interface when the interface dropped them "
                        "(rx_dropped).",
                        MetricType::Counter);
  FamilyBuilder up("meshflow_capture_up",
                   "1 while the interface's capture handle is open and healthy, 0 when the "
                   "interface vanished, went down or could not be opened.",
                   MetricType::Gauge);
  FamilyBuilder ring("meshflow_capture_ring_bytes",
                     "Size of the kernel capture ring actually obtained (libpcap shrinks it "
                     "silently when memory is short).",
                     MetricType::Gauge);
  FamilyBuilder in_kernel("meshflow_capture_filter_in_kernel",
                          "1 when the IP capture filter runs in the kernel, 0 when libpcap fell "
                          "back to filtering in userland.",
                          MetricType::Gauge);
  FamilyBuilder failures("meshflow_capture_open_failures_total",
                         "Attempts to open a capture handle on the interface that failed.",
                         MetricType::Counter);
  for (const auto& h : health) {
    dropped.Counter({{"iface", h.name}, {"where", "kernel"}}, static_cast<double>(h.kernel_drops));
    dropped.Counter({{"iface", h.name}, {"where", "interface"}},
                    static_cast<double>(h.interface_drops));
    up.Gauge({{"iface", h.name}}, h.up ? 1 : 0);
    ring.Gauge({{"iface", h.name}}, static_cast<double>(h.ring_bytes));
    in_kernel.Gauge({{"iface", h.name}}, h.filter_in_kernel ? 1 : 0);
    failures.Counter({{"iface", h.name}}, static_cast<double>(h.open_failures));
  }
  dropped.AppendTo(out);
  up.AppendTo(out);
  ring.AppendTo(out);
  in_kernel.AppendTo(out);
  failures.AppendTo(out);
  FamilyBuilder refused("meshflow_capture_interfaces_refused_total",
                        "Interfaces not captured because the number of remembered interface names "
                        "reached its bound.",
                        MetricType::Counter);
  refused.Counter({}, static_cast<double>(counters.interfaces_refused));
  refused.AppendTo(out);
  FamilyBuilder netlink("meshflow_capture_netlink_errors_total",
                        "Link-change messages that could not be used: reason=malformed, or "
                        "reason=overrun when the kernel dropped some and a full rescan followed.",
                        MetricType::Counter);
  netlink.Counter({{"reason", "malformed"}}, static_cast<double>(counters.netlink_malformed));
  netlink.Counter({{"reason", "overrun"}}, static_cast<double>(counters.netlink_overruns));
  netlink.AppendTo(out);
}

FlowCollector::FlowCollector(const Config& config, std::unique_ptr<FlowStage> stage,
                             const Clock& clock)
    : promiscuous_(config.flows.capture.promiscuous),
      stage_(std::move(stage)),
      loop_(config.flows.capture, *stage_, clock, [this] { stage_->RefreshLocalAddresses(); }) {}

FlowCollector::~FlowCollector() { loop_.Stop(); }

std::vector<int> FlowCollector::CapabilitiesWhileRunning() const {
  if (promiscuous_) return {CAP_NET_RAW, CAP_NET_ADMIN};
  return {CAP_NET_RAW};
}

void FlowCollector::Start() { loop_.Start(); }

void FlowCollector::Stop() { loop_.Stop(); }

void FlowCollector::Reconfigure(const Config& config) {
  stage_->Reconfigure(config);
  loop_.Reconfigure(config.flows.capture);
}

void FlowCollector::Collect(std::vector<prometheus::MetricFamily>& out) {
  AppendCaptureFamilies(loop_.Health(), loop_.Counters(), out);
  stage_->Collect(out);
}

}  // namespace meshflow::flow
