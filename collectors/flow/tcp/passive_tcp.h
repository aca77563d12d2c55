#pragma once

#include <prometheus/metric_family.h>

#include <vector>

#include "collectors/flow/classifier.h"
#include "collectors/flow/decoder.h"
#include "collectors/flow/tcp/tcp_series.h"
#include "collectors/flow/tcp/tcp_tracker.h"
#include "common/config/config.h"

namespace meshflow::flow::tcp {

// Passive TCP health as the flow pipeline uses it: the tracker feeding its series, plus the
// connection table's own metrics. Submit, Flush and Rebind run on the capture thread; Collect on
// any.
class PassiveTcp {
 public:
  // `flows` classifies and counts the packets submitted unclassified (see TcpTracker::Submit).
  PassiveTcp(const Config& config, TcpSeries::InterfaceName interface_name, FlowAccounts* flows);

  // After (re)building the classifier: ids, the node's own id, table size and rates. Packets
  // submitted before are tracked first, under the old classifier's ids and names.
  void Rebind(const TcpConfig& config, const std::string& node_name, size_t max_series,
              const Classifier& classifier);

  // A decoded and classified TCP packet, tracked up to TcpTracker::kWindow packets later
  // (see TcpTracker::Submit); Flush before reading results.
  void Submit(const PacketInfo& info, const PacketContext& context) {
    tracker_.Submit(info, context);
  }
  void Flush() { tracker_.Flush(); }

  void Collect(std::vector<prometheus::MetricFamily>& out) const;

  const TcpTracker& tracker() const { return tracker_; }

 private:
  TcpSeries series_;
  TcpTracker tracker_;
};

}  // namespace meshflow::flow::tcp
