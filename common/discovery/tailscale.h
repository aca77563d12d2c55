#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/discovery/source.h"

namespace meshflow::discovery {

struct TailscaleParse {
  bool ok = false;
  std::string error;  // names the JSON path: Peer["nodekey:..."].TailscaleIPs[1]
  std::vector<DiscoveredNode> nodes;
};

// The nodes of tailscaled's /localapi/v0/status answer: Self and every Peer, named by the first
// label of their MagicDNS name (else HostName, lower-cased), at their TailscaleIPs (100.x first).
TailscaleParse ParseTailscaleStatus(std::string_view json);

// tailscaled's local API over its Unix socket.
class TailscaleSource final : public Source {
 public:
  explicit TailscaleSource(std::string socket) : socket_(std::move(socket)) {}
  std::string_view name() const override { return "tailscale"; }
  PollResult Poll() override;

 private:
  std::string socket_;
};

}  // namespace meshflow::discovery
