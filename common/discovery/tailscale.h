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
  size_t filtered = 0;  // peers with an address that the filter left out
};

// Which peers are cluster nodes. Self (this node) is never left out.
struct TailscaleFilter {
  bool online_only = false;       // leave out peers whose "Online" is false
  std::vector<std::string> tags;  // non-empty: only peers whose "Tags" hold one of these
};

// The nodes of tailscaled's /localapi/v0/status answer: Self and every Peer the filter keeps,
// named by the first label of their MagicDNS name (else HostName, lower-cased), at their
// TailscaleIPs (100.x first). Every peer is checked, kept or not: bad data anywhere fails.
TailscaleParse ParseTailscaleStatus(std::string_view json, const TailscaleFilter& filter = {});

// tailscaled's local API over its Unix socket.
class TailscaleSource final : public Source {
 public:
  TailscaleSource(std::string socket, TailscaleFilter filter)
      : socket_(std::move(socket)), filter_(std::move(filter)) {}
  std::string_view name() const override { return "tailscale"; }
  PollResult Poll() override;

 private:
  std::string socket_;
  TailscaleFilter filter_;
};

}  // namespace meshflow::discovery
