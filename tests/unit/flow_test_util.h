#pragma once

#include <prometheus/metric_family.h>

#include <map>
#include <string>
#include <vector>

namespace meshflow::flow::test_packets {

// Flattens families to "name{k=v,...}" -> value for direct comparison in tests.
inline std::map<std::string, double> Flatten(
    const std::vector<prometheus::MetricFamily>& families) {
  std::map<std::string, double> out;
  for (const auto& f : families) {
    for (const auto& m : f.metric) {
      std::string key = f.name + "{";
      for (size_t i = 0; i < m.label.size(); ++i) {
        key += (i ? "," : "") + m.label[i].name + "=" + m.label[i].value;
      }
      key += "}";
      out[key] = f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return out;
}

inline std::string FlowKey(const std::string& name, const std::string& iface,
                           const std::string& role, const std::string& src,
                           const std::string& dst) {
  return name + "{iface=" + iface + ",role=" + role + ",src_node=" + src + ",dst_node=" + dst + "}";
}

}  // namespace meshflow::flow::test_packets
