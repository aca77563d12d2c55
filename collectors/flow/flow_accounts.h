#pragma once

#include <functional>
#include <string>

#include "collectors/flow/classifier.h"
#include "collectors/flow/flow_table.h"

namespace meshflow::flow {

// The accounting layer: the flow series a classified packet counts in, keyed by interface, role
// and node pair and labelled with the classifier's names. The pipeline counts the packets it
// classified here; passive TCP, above it, classifies and counts the TCP packets it is handed
// unclassified through ClassifyTcp. Each reaches down to it; it calls nothing above it.
// Capture thread only, as the flow table's writer side.
class FlowAccounts {
 public:
  // `interface_name` is asked only when a series is created.
  using InterfaceName = std::function<const std::string&(uint32_t interface_id)>;

  FlowAccounts(FlowTable& table, InterfaceName interface_name)
      : table_(table), interface_name_(std::move(interface_name)) {}

  // The classifier whose ids the keys hold: bound again after every rebuild of it.
  void Bind(Classifier& classifier) { classifier_ = &classifier; }

  // `folded`: the packet counts in its interface's overflow series (max_series reached).
  SeriesCounters& Series(uint32_t interface_id, RoleId role, NodeId src, NodeId dst, bool& folded) {
    return table_.Get(
        SeriesKey::Pack(interface_id, role, src, dst),
        [&] {
          return SeriesLabels{interface_name_(interface_id), classifier_->RoleName(role),
                              classifier_->NodeName(src), classifier_->NodeName(dst)};
        },
        [&] {
          return SeriesLabels{interface_name_(interface_id), "other", "overflow", "overflow"};
        },
        folded);
  }

  // A TCP packet's role and nodes by its tuple, and the series it counts in.
  struct Classified {
    RoleId role = Classifier::kOther;
    NodeId src_node = NodeTable::kExternal;
    NodeId dst_node = NodeTable::kExternal;
    SeriesCounters* series = nullptr;
    // The series is this connection direction's for as long as the classifier is bound (until
    // the next Bind); false for the overflow series, which counts every packet it folds.
    bool lasting = false;
  };
  Classified ClassifyTcp(const IpAddress& src, uint16_t src_port, const IpAddress& dst,
                         uint16_t dst_port, uint32_t interface_id) {
    Classified r;
    r.role = classifier_->TcpRole(src_port, dst_port);
    r.src_node = classifier_->Node(src);
    r.dst_node = classifier_->Node(dst);
    bool folded;
    r.series = &Series(interface_id, r.role, r.src_node, r.dst_node, folded);
    r.lasting = !folded;
    return r;
  }

 private:
  FlowTable& table_;
  InterfaceName interface_name_;
  Classifier* classifier_ = nullptr;
};

}  // namespace meshflow::flow
