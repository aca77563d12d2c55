// The test bed's parsers: topology YAML, control commands and the IP header the mover routes on.
// The first byte picks which one gets the rest of the input.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/core/config_reader.h"
#include "tests/testbed/emulator/control.h"
#include "tests/testbed/emulator/overlay.h"
#include "tests/testbed/emulator/topology.h"

namespace {

using meshflow::testbed::Overlay;

const meshflow::testbed::Topology& FixedTopology() {
  static const auto topology = meshflow::testbed::ParseTopology(R"(seed: 1
nodes:
  - {name: a, ipv4: 100.64.0.1, ipv6: "fd7a:115c:a1e0::1"}
  - {name: b, ipv4: 100.64.0.2, ipv6: "fd7a:115c:a1e0::2"}
links:
  - {between: [a, b], rtt: 10ms, loss: 5%, rate: 1mbit}
)",
                                                                "fixed.yaml");
  return topology;
}

std::vector<std::string> Words(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ' ' || c == '\n') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 3;
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (mode == 0) {
    try {
      const auto topology = meshflow::testbed::ParseTopology(rest, "fuzz.yaml");
      Overlay overlay(topology);  // every node pair must resolve
      (void)meshflow::testbed::FormatState(overlay);
    } catch (const meshflow::ConfigError&) {
    }
  } else if (mode == 1) {
    Overlay overlay(FixedTopology());
    for (size_t start = 0; start < rest.size();) {
      const size_t end = rest.find(';', start);
      const std::string line = rest.substr(start, end == std::string::npos ? end : end - start);
      (void)meshflow::testbed::ExecuteCommand(overlay, Words(line));
      if (end == std::string::npos) break;
      start = end + 1;
    }
    (void)meshflow::testbed::FormatState(overlay);
  } else {
    Overlay overlay(FixedTopology());
    std::chrono::nanoseconds now{0};
    for (size_t node = 0; node < 2; ++node) {
      now += std::chrono::microseconds(100);
      (void)overlay.Route(node, data + 1, size - 1, now);
    }
  }
  return 0;
}
