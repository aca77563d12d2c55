// Any text as a WireGuard UAPI `get=1` answer: no crash; a failed parse carries no peers and a
// located error; every peer of a good parse has a 64-digit key, and the nodes made from them
// start with a host address.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/discovery/wireguard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meshflow::discovery;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const UapiParse r = ParseUapiGet(text);
  if (!r.ok) {
    if (!r.peers.empty() || r.error.rfind("line ", 0) != 0) std::abort();
    return 0;
  }
  for (const auto& p : r.peers)
    if (p.public_key.size() != 64) std::abort();
  for (const auto& n : NodesFromPeers(r.peers)) {
    const auto& first = n.addresses.front();
    if (first.bits != (first.address.is_v4() ? 32 : 128)) std::abort();
  }
  return 0;
}
