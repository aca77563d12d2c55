// Any bytes as tailscaled's /localapi/v0/status: no crash or exception; a failed parse carries
// no nodes; every node has a name and an IPv4 address first whenever it has one; a filter never
// adds a node, nor turns a failure into a success.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/discovery/tailscale.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meshflow::discovery;
  const TailscaleParse r =
      ParseTailscaleStatus(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!r.ok && (!r.nodes.empty() || r.error.empty())) std::abort();
  for (const auto& n : r.nodes) {
    if (n.name.empty() || n.addresses.empty()) std::abort();
    bool any_v4 = false;
    for (const auto& a : n.addresses) any_v4 |= a.address.is_v4();
    if (any_v4 && !n.addresses.front().address.is_v4()) std::abort();
  }
  const TailscaleParse f =
      ParseTailscaleStatus(std::string_view(reinterpret_cast<const char*>(data), size),
                           TailscaleFilter{true, {"tag:k8s"}});
  if (f.ok != r.ok || f.nodes.size() + f.filtered != r.nodes.size()) std::abort();
  return 0;
}
