// The capture loop's parsers of kernel text and messages: rtnetlink link messages (then the link
// table's decision on them) and /proc/self/maps lines (the ring size read-back).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "collectors/flow/capture/link_table.h"
#include "collectors/flow/capture/live_handle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using meshflow::flow::LinkTable;
  const meshflow::flow::ParsedLinkMessages parsed = meshflow::flow::ParseLinkMessages(data, size);
  static const meshflow::flow::InterfaceSelector selector{meshflow::CaptureConfig{}};
  LinkTable table{std::chrono::seconds(2)};
  std::map<std::string, int> open;
  for (const auto& event : parsed.events) {
    table.Apply(event);
    const auto plan = table.Plan(selector, open, std::chrono::seconds(1));
    for (const auto& name : plan.close) open.erase(name);
    for (const auto& link : plan.open) open[link.name] = link.index;
  }
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)meshflow::flow::RingBytesFromMaps(text, size > 0 ? data[0] : 0);
  return 0;
}
