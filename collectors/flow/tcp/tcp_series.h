#pragma once

#include <prometheus/metric_family.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "collectors/flow/classifier.h"
#include "collectors/flow/tcp/tcp_tracker.h"
#include "common/core/histogram.h"

namespace meshflow::flow::tcp {

// Aggregates the tracker's results into the meshflow_tcp_* series and exposes them. Results
// arrive on the capture thread, Collect runs on scrape threads; both take mutex_, which the
// common packet path never touches (results are rare: a handshake, a few timestamp samples per
// second, a retransmission).
class TcpSeries final : public ResultSink {
 public:
  // Name of an interface id, asked once per new retransmission series.
  using InterfaceName = std::function<std::string(uint32_t interface_id)>;

  TcpSeries(size_t max_series, InterfaceName interface_name);

  // Capture thread: the classifier whose ids later results carry (names are looked up in it).
  void Rebind(const Classifier& names, size_t max_series);

  void OnRtt(const RttSample& sample) override;
  void OnRetransmission(const Retransmission& retransmission) override;

  // Appends meshflow_tcp_rtt_seconds, meshflow_tcp_retransmitted_{packets,bytes}_total and
  // meshflow_tcp_series_overflow_total.
  void Collect(std::vector<prometheus::MetricFamily>& out) const;

 private:
  struct RttSeries {
    std::string role, src_node, dst_node, kind;
    LatencyHistogram histogram;
  };
  struct RetransmissionSeries {
    std::string iface, role, src_node, dst_node;
    uint64_t packets = 0;
    uint64_t bytes = 0;
  };
  using Labels = std::vector<std::string>;

  // The series of `labels` in `index`, made with make() while under the bound; nullptr when full.
  template <typename Series, typename Make>
  Series* FindOrAdd(std::map<Labels, size_t>& index, std::vector<std::unique_ptr<Series>>& all,
                    Labels labels, Make&& make);

  InterfaceName interface_name_;
  const Classifier* names_ = nullptr;  // capture thread only

  mutable std::mutex mutex_;
  size_t max_series_;
  std::vector<std::unique_ptr<RttSeries>> rtt_;
  std::vector<std::unique_ptr<RetransmissionSeries>> retransmissions_;
  std::map<Labels, size_t> rtt_index_;
  std::map<Labels, size_t> retransmission_index_;
  // Ids -> series under the current classifier, so a result rarely builds label strings.
  std::unordered_map<uint64_t, RttSeries*> rtt_by_id_;
  std::unordered_map<uint64_t, RetransmissionSeries*> retransmission_by_id_;
  uint64_t overflowed_ = 0;
};

}  // namespace meshflow::flow::tcp
