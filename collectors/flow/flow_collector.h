#pragma once

#include <prometheus/metric_family.h>

#include <memory>
#include <vector>

#include "collectors/flow/capture/capture_loop.h"
#include "collectors/flow/packet_sink.h"
#include "common/config/config.h"
#include "common/core/clock.h"
#include "common/core/collector.h"

namespace meshflow::flow {

// What the collector needs of the flow pipeline: a packet sink that also reports its metrics.
// The capture thread feeds it (AddInterface, OnPacket, Flush, RefreshLocalAddresses) while
// scrapes and reloads call Collect and Reconfigure from other threads: implementations guard
// themselves, as FlowPipeline does (see collectors/flow/README.md, Threading).
class FlowStage : public PacketSink {
 public:
  virtual void Reconfigure(const Config& config) = 0;
  virtual void Collect(std::vector<prometheus::MetricFamily>& out) = 0;
  // This host's addresses may have changed (an interface came or an address moved).
  virtual void RefreshLocalAddresses() {}
};

// The flow pipeline (decode, classify, aggregate) behind FlowStage.
std::unique_ptr<FlowStage> MakeFlowPipelineStage(const Config& config);

// The capture loop's own families: drops before the pipeline, handle health (up, ring size,
// filter placement, open failures) and the loop's counters. Packets handed over and interface
// kinds are the pipeline's (FlowPipeline::CollectCaptureFamilies).
void AppendCaptureFamilies(const std::vector<InterfaceHealth>& health,
                           const CaptureLoopCounters& counters,
                           std::vector<prometheus::MetricFamily>& out);

// Live flow accounting: one capture loop over the selected interfaces feeding the flow pipeline.
class FlowCollector final : public Collector {
 public:
  FlowCollector(const Config& config, std::unique_ptr<FlowStage> stage,
                const Clock& clock = SystemClock::Instance());
  ~FlowCollector() override;

  // Throws std::system_error when the capture loop cannot be set up (epoll, netlink).
  void Start() override;
  void Stop() override;
  void Reconfigure(const Config& config) override;
  void Collect(std::vector<prometheus::MetricFamily>& out) override;
  // CAP_NET_RAW: a capture handle opens for each interface that appears later (a pod's veth, a
  // VPN coming up); CAP_NET_ADMIN too when the config captures promiscuously.
  std::vector<int> CapabilitiesWhileRunning() const override;

 private:
  bool promiscuous_;  // as the config said at construction: privileges are dropped once
  std::unique_ptr<FlowStage> stage_;
  CaptureLoop loop_;
};

// The collector table's factory: the real pipeline behind the live capture.
std::unique_ptr<Collector> CreateFlowCollector(const Config& config);

}  // namespace meshflow::flow
