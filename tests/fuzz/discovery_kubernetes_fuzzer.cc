// Any bytes as a Kubernetes NodeList and as a watch stream: no crash or exception; a failed
// parse carries no nodes or events; every node kept has a name and an address.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/discovery/kubernetes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meshflow::discovery;
  static const std::vector<std::string> rule{"k3s.io/internal-ip", "InternalIP", "ExternalIP"};
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const KubeNodeList list = ParseNodeList(text, rule);
  if (!list.ok && (!list.nodes.empty() || list.error.empty())) std::abort();
  for (const auto& n : list.nodes)
    if (n.name.empty() || n.addresses.empty()) std::abort();
  const KubeWatchParse watch = ParseWatchEvents(text, rule);
  if (!watch.ok && (!watch.events.empty() || watch.error.empty())) std::abort();
  return 0;
}
