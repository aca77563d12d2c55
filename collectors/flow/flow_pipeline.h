#pragma once

#include <prometheus/metric_family.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "collectors/flow/classifier.h"
#include "collectors/flow/decoder.h"
#include "collectors/flow/flow_table.h"
#include "collectors/flow/packet_sink.h"
#include "collectors/flow/tcp/passive_tcp.h"
#include "common/config/config.h"

namespace meshflow::flow {

// decoder -> classifier -> flow table, fed by a capture source through PacketSink and read
// by scrapes through Collect(). With passive TCP on, TCP packets (except first fragments) go to
// the tracker unclassified: it classifies and counts them when it tracks them (Classify), and
// remembers each connection direction's flow series in its connection table, so most TCP
// packets skip the classifier and the flow table's lookup.
//
// Threading: OnPacket and Flush run on one capture thread at a time and take no lock. Every counter
// has that thread as its only writer (a plain load and store, see Counter); Collect reads them with
// atomic loads and sees each series once its labels are published (FlowTable). AddInterface,
// Reconfigure and Collect take a mutex that OnPacket never touches; a new config reaches the
// packet path through a flag checked once per packet and is swapped in on the capture thread,
// so classification state is never shared.
class FlowPipeline final : public PacketSink, private tcp::FlowClassifier {
 public:
  explicit FlowPipeline(const Config& config, AddressSource self_addresses = InterfaceAddresses);
  ~FlowPipeline() override;

  uint32_t AddInterface(const std::string& name, int link_type) override;
  void OnPacket(uint32_t interface_id, const CapturedPacket& packet) override;
  // Passive TCP tracks each packet a few TCP packets after OnPacket (TcpTracker::Submit), and
  // counts it then in its flow series: counters and table metrics are complete after Flush.
  void Flush() override;

  // Appends the flow, decode-error and encapsulation families. Safe beside OnPacket.
  void Collect(std::vector<prometheus::MetricFamily>& out) const;
  // meshflow_capture_packets_total and meshflow_capture_interface_info as the pipeline sees
  // them, for offline replay; live capture reports its own (from pcap_stats) instead.
  void CollectCaptureFamilies(std::vector<prometheus::MetricFamily>& out) const;
  // Counters survive; the new roles, nodes, VXLAN ports and bound apply to later packets.
  void Reconfigure(const Config& config);
  // Re-reads this host's addresses (an interface came back with a new address).
  void RefreshLocalAddresses();

 private:
  struct Rules;
  struct Interface;

  std::unique_ptr<Rules> BuildRules(const Config& config) const;
  void Post(std::unique_ptr<Rules> rules);
  void ApplyPending();
  std::string KindOf(const std::string& name) const;  // needs mutex_
  RoleId FragmentRole(const PacketInfo& info, int64_t timestamp_ns, RoleId role);
  SeriesCounters& Series(uint32_t interface_id, RoleId role, NodeId src, NodeId dst, bool& folded);
  Result Classify(const IpAddress& src, uint16_t src_port, const IpAddress& dst, uint16_t dst_port,
                  uint32_t interface_id) override;
  void BindTcp();

  AddressSource self_addresses_;

  // Capture-thread state.
  std::unique_ptr<Rules> rules_;
  FlowTable table_;
  FragmentTable fragments_;
  PacketInfo info_;
  Counter unmatched_fragments_;
  Counter unknown_interface_packets_;
  std::unique_ptr<tcp::PassiveTcp> tcp_;  // passive TCP health (flows.tcp)
  std::atomic<bool> tcp_enabled_{false};

  // Shared; mutex_ guards config_, pending_ and interface names/kinds.
  mutable std::mutex mutex_;
  Config config_;
  std::unique_ptr<Rules> pending_;
  std::atomic<bool> has_pending_{false};
  std::array<std::unique_ptr<Interface>, FlowTable::kMaxInterfaces> interfaces_;
  std::atomic<uint32_t> interface_count_{0};
};

}  // namespace meshflow::flow
