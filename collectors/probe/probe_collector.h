#pragma once

#include <memory>
#include <vector>

#include "collectors/probe/path_mtu.h"
#include "collectors/probe/prober.h"
#include "common/config/config.h"
#include "common/core/collector.h"

namespace meshflow::probe {

// The metric families of one snapshot; the exposition layer, apart so it is tested on plain data.
std::vector<prometheus::MetricFamily> BuildFamilies(const ProberSnapshot& snapshot);

// RTT, loss and jitter to every peer, and this node's UDP reflector.
class ProbeCollector final : public Collector {
 public:
  explicit ProbeCollector(const Config& config);
  ~ProbeCollector() override;

  void Start() override;
  void Stop() override;
  void Reconfigure(const Config& config) override;
  void Collect(std::vector<prometheus::MetricFamily>& out) override;

 private:
  ProberOptions options_;
  Prober prober_;
  ProbesConfig::PathMtu path_mtu_config_;
  PathMtuProber path_mtu_;
  bool started_ = false;
};

std::unique_ptr<Collector> MakeProbeCollector(const Config& config);

}  // namespace meshflow::probe
