#include "collectors/flow/tcp/passive_tcp.h"

#include "common/core/metric_builder.h"

namespace meshflow::flow::tcp {

PassiveTcp::PassiveTcp(const Config& config, TcpSeries::InterfaceName interface_name,
                       FlowAccounts* flows)
    : series_(static_cast<size_t>(config.flows.max_series), std::move(interface_name)),
      tracker_(config.flows.tcp, series_, flows) {}

void PassiveTcp::Rebind(const TcpConfig& config, const std::string& node_name, size_t max_series,
                        const Classifier& classifier) {
  tracker_.Flush();  // their results carry the old ids, named by the old classifier
  series_.Rebind(classifier, max_series);
  tracker_.Rebind(config, classifier.FindNode(node_name).value_or(NodeTable::kExternal));
}

void PassiveTcp::Collect(std::vector<prometheus::MetricFamily>& out) const {
  using prometheus::MetricType;
  series_.Collect(out);
  FamilyBuilder entries("meshflow_tcp_connection_table_entries",
                        "TCP connections tracked for passive RTT and retransmissions (bounded "
                        "by flows.tcp.max_connections).",
                        MetricType::Gauge);
  FamilyBuilder evictions("meshflow_tcp_connection_table_evictions_total",
                          "TCP connections dropped from the table: reason full (the least "
                          "recently seen made room for a new one) or idle "
                          "(flows.tcp.idle_timeout without a packet).",
                          MetricType::Counter);
  FamilyBuilder negative("meshflow_tcp_rtt_negative_samples_total",
                         "RTT samples dropped because capture timestamps went backwards.",
                         MetricType::Counter);
  entries.Gauge({}, static_cast<double>(tracker_.entries()));
  evictions.Counter({{"reason", "full"}}, static_cast<double>(tracker_.evictions()));
  evictions.Counter({{"reason", "idle"}}, static_cast<double>(tracker_.expired()));
  negative.Counter({}, static_cast<double>(tracker_.negative_samples()));
  entries.AppendTo(out);
  evictions.AppendTo(out);
  negative.AppendTo(out);
}

}  // namespace meshflow::flow::tcp
