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
#include "collectors/flow/flow_accounts.h"
#include "collectors/flow/flow_table.h"
#include "collectors/flow/interface_kinds.h"
#include "collectors/flow/packet_sink.h"
#include "collectors/flow/tcp/passive_tcp.h"
#include "common/config/config.h"

namespace meshflow::flow {

// decode -> classify -> account -> passive TCP, fed by a capture source through PacketSink and
// read by scrapes through Collect(). Each layer gets what it needs from the one below: with
// passive TCP on, TCP packets (except first fragments) go to the tracker unclassified, and it
// classifies and counts them through the accounting layer (FlowAccounts::ClassifyTcp) when it
// tracks them, remembering each connection direction's flow series in its connection table, so
// most TCP packets skip the classifier and the flow table's lookup. Nothing calls back up.
//
// Threading: OnPacket and Flush run on one capture thread at a time and take no lock. Every counter
// has that thread as its only writer (a plain load and store, see Counter); Collect reads them with
// atomic loads and sees each series once its labels are published (FlowTable). AddInterface,
// Reconfigure and Collect take a mutex that OnPacket never touches; a new config reaches the
// packet path through a flag checked once per packet and is swapped in on the capture thread,
// so classification state is never shared.
class FlowPipeline final : public PacketSink {
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
  // meshflow_capture_packets_total and meshflow_capture_interface_info: the packets handed to
  // the pipeline and each interface's kind. Their one writer, for live capture and replay.
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
  RoleId FragmentRole(const PacketInfo& info, int64_t timestamp_ns, RoleId role);
  void BindLayers();
  // Visits every interface under mutex_ (their kinds may change beside a scrape).
  template <typename Visit>
  void ForEachInterface(Visit&& visit) const;

  AddressSource self_addresses_;

  // Capture-thread state.
  std::unique_ptr<Rules> rules_;
  FlowTable table_;
  FlowAccounts accounts_;  // over table_, bound to rules_->classifier
  FragmentTable fragments_;
  PacketInfo info_;
  Counter unmatched_fragments_;
  Counter unknown_interface_packets_;
  std::unique_ptr<tcp::PassiveTcp> tcp_;  // passive TCP health (flows.tcp)
  std::atomic<bool> tcp_enabled_{false};

  // Shared; mutex_ guards config_, kinds_, pending_ and interface names/kinds.
  mutable std::mutex mutex_;
  Config config_;
  std::unique_ptr<InterfaceKinds> kinds_;
  uint64_t config_generation_ = 0;  // counts Reconfigure calls
  std::unique_ptr<Rules> pending_;
  std::atomic<bool> has_pending_{false};
  std::array<std::unique_ptr<Interface>, FlowTable::kMaxInterfaces> interfaces_;
  std::atomic<uint32_t> interface_count_{0};
};

}  // namespace meshflow::flow
