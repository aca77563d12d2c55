// Any bytes as the kernel's generic netlink answers: a WG_CMD_GET_DEVICE dump and the
// controller's CTRL_CMD_GETFAMILY reply. No crash or read past the data; a failed parse carries
// no peers and an error; every peer of a good parse has a 64-digit key and prefixes in range.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/discovery/wireguard_netlink.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meshflow::discovery;
  if (size < 2) return 0;
  // The first two bytes pick the family id the dump is checked against.
  const uint16_t family = static_cast<uint16_t>(data[0] | (data[1] << 8));
  const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);
  const NetlinkDeviceParse r = ParseWgGetDevice(bytes, family);
  if (!r.ok && (!r.peers.empty() || r.error.empty())) std::abort();
  for (const auto& p : r.peers) {
    if (p.public_key.size() != 64) std::abort();
    for (const auto& a : p.allowed_ips)
      if (a.bits > (a.address.is_v4() ? 32 : 128)) std::abort();
  }
  for (const auto& n : NodesFromPeers(r.peers))
    if (n.addresses.empty()) std::abort();
  const NetlinkFamilyParse f = ParseGenlFamily(bytes);
  if (f.ok && f.id == 0) std::abort();
  if (!f.ok && f.error.empty()) std::abort();
  return 0;
}
