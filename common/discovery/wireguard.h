#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/discovery/source.h"

namespace meshflow::discovery {

// One peer of a WireGuard device as the UAPI `get=1` answer lists it.
struct WireGuardPeer {
  std::string public_key;  // 64 hex digits, as UAPI writes keys
  std::string endpoint;    // host:port or empty
  std::vector<IpPrefix> allowed_ips;
};

struct UapiParse {
  bool ok = false;
  std::string error;  // "line N: ..." when !ok
  std::vector<WireGuardPeer> peers;
};

// Parses the text a WireGuard UAPI socket answers to `get=1` (wireguard.com/xplatform): key=value
// lines, device keys first, each `public_key` starting a peer, `errno=N` last, then a blank line.
// Unknown keys are skipped (newer implementations add some); anything malformed fails the whole
// answer so a half-read device never replaces a good peer set.
UapiParse ParseUapiGet(std::string_view text);

// The peers of userspace WireGuard devices (wireguard-go, boringtun) through their UAPI sockets,
// `<socket_dir>/<interface>.sock`. Each peer's host addresses among its allowed IPs become a
// nameless node; its other allowed IPs (pod subnets routed to it) stay with it for attribution.
class WireGuardSource final : public Source {
 public:
  // `interfaces` empty: every *.sock in `socket_dir`.
  WireGuardSource(std::string socket_dir, std::vector<std::string> interfaces);
  std::string_view name() const override { return "wireguard"; }
  PollResult Poll() override;

  // Asks one socket; exposed for tests.
  static PollResult QuerySocket(const std::string& path);

 private:
  std::string socket_dir_;
  std::vector<std::string> interfaces_;
};

// The nodes of a parsed peer list: one per peer with at least one host address.
std::vector<DiscoveredNode> NodesFromPeers(const std::vector<WireGuardPeer>& peers);

}  // namespace meshflow::discovery
