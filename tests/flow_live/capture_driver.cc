// Runs the capture loop alone, without the flow pipeline, for tests of the capture layer: each
// line on stdin ("collect") prints the exposition of the capture families plus the packets and
// wire bytes the loop delivered per interface; end of input stops the loop.
#include <prometheus/text_serializer.h>

#include <iostream>
#include <map>
#include <string>

#include "collectors/flow/flow_collector.h"
#include "exporter/config/config.h"
#include "exporter/core/log.h"
#include "exporter/core/metric_builder.h"

namespace meshflow::flow {
namespace {

// Counts what arrives, so delivery can be checked against tshark without any decoding.
class CountingStage final : public FlowStage {
 public:
  uint32_t AddInterface(const std::string& name, int /*link_type*/) override {
    for (uint32_t i = 0; i < names_.size(); ++i)
      if (names_[i] == name) return i;
    names_.push_back(name);
    packets_.push_back(0);
    bytes_.push_back(0);
    return static_cast<uint32_t>(names_.size() - 1);
  }
  void OnPacket(uint32_t id, const CapturedPacket& packet) override {
    ++packets_.at(id);
    bytes_.at(id) += packet.wire_length;
  }
  void Reconfigure(const Config& /*config*/) override {}
  void Collect(std::vector<prometheus::MetricFamily>& out) override {
    FamilyBuilder packets("meshflow_test_delivered_packets_total", "Delivered packets.",
                          prometheus::MetricType::Counter);
    FamilyBuilder bytes("meshflow_test_delivered_wire_bytes_total", "Delivered wire bytes.",
                        prometheus::MetricType::Counter);
    for (size_t i = 0; i < names_.size(); ++i) {
      packets.Counter({{"iface", names_[i]}}, static_cast<double>(packets_[i]));
      bytes.Counter({{"iface", names_[i]}}, static_cast<double>(bytes_[i]));
    }
    packets.AppendTo(out);
    bytes.AppendTo(out);
  }

 private:
  std::vector<std::string> names_;
  std::vector<uint64_t> packets_;
  std::vector<uint64_t> bytes_;
};

}  // namespace
}  // namespace meshflow::flow

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " CONFIG_FILE\n";
    return 2;
  }
  meshflow::SetUpLogging("info", meshflow::LogFormat::kLogfmt);
  const meshflow::Config config = meshflow::LoadConfigFile(argv[1]);
  meshflow::flow::FlowCollector collector(config,
                                          std::make_unique<meshflow::flow::CountingStage>());
  collector.Start();
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "reload") {
      collector.Reconfigure(meshflow::LoadConfigFile(argv[1]));
      std::cout << "# reloaded" << std::endl;
      continue;
    }
    std::vector<prometheus::MetricFamily> families;
    collector.Collect(families);
    std::cout << prometheus::TextSerializer().Serialize(families) << "# end" << std::endl;
  }
  collector.Stop();
  return 0;
}
