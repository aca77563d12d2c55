#include "common/mesh/mesh_reading.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "common/text_format/writer.h"

namespace meshflow::mesh {
namespace {

constexpr std::string_view kRtt = "meshflow_probe_rtt_seconds";
constexpr std::string_view kLost = "meshflow_probe_lost_total";
constexpr std::string_view kForwardLost = "meshflow_probe_forward_lost_total";
constexpr std::string_view kReturnLost = "meshflow_probe_return_lost_total";
constexpr std::string_view kPathMtu = "meshflow_probe_path_mtu_bytes";
constexpr std::string_view kFlowBytes = "meshflow_flow_bytes_total";
constexpr std::string_view kInterfaceInfo = "meshflow_capture_interface_info";

std::string_view Label(const text_format::TextLabels& labels, std::string_view name) {
  for (const auto& [k, v] : labels)
    if (k == name) return v;
  return {};
}

// Collects one node's samples in any order (interface kinds may follow the bytes they qualify).
class Reader {
 public:
  explicit Reader(const std::string& node) : node_(node) {}

  // A plain sample: a counter, gauge or untyped value, or a histogram's _bucket/_count line
  // given by its full sample name.
  void Sample(std::string_view name, const text_format::TextLabels& labels, double value) {
    if (!std::isfinite(value)) return;
    if (name == kInterfaceInfo) {
      if (value != 0) kinds_[std::string(Label(labels, "iface"))] = Label(labels, "kind");
      return;
    }
    if (name == kFlowBytes) {
      bytes_.push_back({std::string(Label(labels, "iface")), std::string(Label(labels, "src_node")),
                        std::string(Label(labels, "dst_node")), std::string(Label(labels, "role")),
                        value});
      return;
    }
    if (name.substr(0, 15) != "meshflow_probe_") return;
    if (Label(labels, "src_node") != node_) return;
    const std::string dst(Label(labels, "dst_node"));
    if (dst.empty()) return;
    if (name == kPathMtu) {
      if (value > 0 && value < 1e6) out_.path_mtu_bytes[dst] = value;
      return;
    }
    const std::string method(Label(labels, "method"));
    if (method.empty()) return;
    if (name.size() == kRtt.size() + 7 && name.substr(0, kRtt.size()) == kRtt &&
        name.substr(kRtt.size()) == "_bucket") {
      const std::string_view le_text = Label(labels, "le");
      double le = 0;
      if (le_text == "+Inf") {
        le = INFINITY;
      } else {
        try {
          le = std::stod(std::string(le_text));
        } catch (...) {
          return;
        }
      }
      Link(dst, method).buckets.emplace_back(le, value);
    } else if (name.size() == kRtt.size() + 6 && name.substr(0, kRtt.size()) == kRtt &&
               name.substr(kRtt.size()) == "_count") {
      Link(dst, method).received = value;
    } else if (name == kLost) {
      Link(dst, method).lost = value;
    } else if (name == kForwardLost) {
      auto& l = Link(dst, method);
      l.forward_lost = value;
      l.has_direction = true;
    } else if (name == kReturnLost) {
      auto& l = Link(dst, method);
      l.return_lost = value;
      l.has_direction = true;
    }
  }

  NodeReading Finish() {
    for (auto& [key, link] : out_.links) {
      std::sort(link.buckets.begin(), link.buckets.end());
    }
    for (const auto& b : bytes_) {
      const auto kind = kinds_.find(b.iface);
      if (kind == kinds_.end() || kind->second != "overlay") continue;
      if (b.src.empty() || b.dst.empty()) continue;
      out_.overlay_bytes[{b.src, b.dst, b.role}] += b.value;
    }
    return std::move(out_);
  }

 private:
  struct Bytes {
    std::string iface, src, dst, role;
    double value;
  };
  LinkReading& Link(const std::string& dst, const std::string& method) {
    return out_.links[{dst, method}];
  }

  const std::string& node_;
  NodeReading out_;
  std::map<std::string, std::string> kinds_;
  std::vector<Bytes> bytes_;
};

}  // namespace

NodeReading ReadExposition(const std::string& node, const text_format::Exposition& exposition) {
  Reader reader(node);
  for (const auto& family : exposition.families) {
    for (const auto& s : family.samples) reader.Sample(s.name, s.labels, s.value);
  }
  return reader.Finish();
}

NodeReading ReadFamilies(const std::string& node,
                         const std::vector<prometheus::MetricFamily>& families) {
  Reader reader(node);
  text_format::TextLabels labels;
  for (const auto& family : families) {
    for (const auto& m : family.metric) {
      labels.clear();
      for (const auto& l : m.label) labels.emplace_back(l.name, l.value);
      switch (family.type) {
        case prometheus::MetricType::Counter:
          reader.Sample(family.name, labels, m.counter.value);
          break;
        case prometheus::MetricType::Gauge:
          reader.Sample(family.name, labels, m.gauge.value);
          break;
        case prometheus::MetricType::Untyped:
          reader.Sample(family.name, labels, m.untyped.value);
          break;
        case prometheus::MetricType::Histogram: {
          reader.Sample(family.name + "_count", labels,
                        static_cast<double>(m.histogram.sample_count));
          labels.emplace_back("le", "");
          for (const auto& b : m.histogram.bucket) {
            labels.back().second = std::isinf(b.upper_bound)
                                       ? std::string("+Inf")
                                       : text_format::FormatValue(b.upper_bound);
            reader.Sample(family.name + "_bucket", labels, static_cast<double>(b.cumulative_count));
          }
          break;
        }
        default:
          break;
      }
    }
  }
  return reader.Finish();
}

}  // namespace meshflow::mesh
