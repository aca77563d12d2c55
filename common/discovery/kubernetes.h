#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/config.h"
#include "common/discovery/source.h"

namespace meshflow::discovery {

// A Node object reduced to what discovery needs.
struct KubeNode {
  std::string name;
  std::string resource_version;
  std::vector<IpPrefix> addresses;  // the overlay address (by the config's rule) first
};

struct KubeNodeList {
  bool ok = false;
  std::string error;
  std::string resource_version;  // of the list, where a watch starts
  std::vector<KubeNode> nodes;
  std::vector<std::string> skipped;  // nodes with none of the rule's addresses, with why
};

// Parses a NodeList (GET /api/v1/nodes). `overlay_rule`: the address choices in order
// (InternalIP, ExternalIP, or an annotation name); the first present is the overlay address, the
// node's other addresses follow it. A malformed address anywhere fails the whole list.
KubeNodeList ParseNodeList(std::string_view json, const std::vector<std::string>& overlay_rule);

struct KubeWatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError } type = Type::kAdded;
  KubeNode node;                 // for ADDED, MODIFIED, DELETED
  std::string resource_version;  // of the object (BOOKMARK: the only field)
  int error_code = 0;            // ERROR: the Status code, 410 when the version is too old
  std::string error_message;
  bool has_rule_address = true;  // false: the node has none of the rule's addresses
};

struct KubeWatchParse {
  bool ok = false;
  std::string error;  // "line N: ..."
  std::vector<KubeWatchEvent> events;
};

// Parses a watch stream (GET /api/v1/nodes?watch=1): one JSON event object per line.
KubeWatchParse ParseWatchEvents(std::string_view text,
                                const std::vector<std::string>& overlay_rule);

// Lists, then watches Node objects with the pod's service account. The token file is read for
// every request, so a rotated token is picked up. The watch is read as it streams: each event is
// applied, and a changed set published (Source::Publish), as soon as its line has arrived; the
// API server ends a watch at timeoutSeconds (`watch_timeout`) and the next poll starts another
// from the last resourceVersion seen. 410 Gone re-lists. Cancel() ends a list or watch within
// about 100 ms.
class KubernetesSource final : public Source {
 public:
  explicit KubernetesSource(DiscoveryConfig::Kubernetes config,
                            std::chrono::seconds watch_timeout = std::chrono::seconds(300));
  std::string_view name() const override { return "kubernetes"; }
  PollResult Poll() override;
  bool Waits() const override { return true; }

  // How many full lists were made (the first, and after every 410 or broken watch).
  uint64_t lists() const { return lists_; }

 private:
  PollResult Nodes() const;

  DiscoveryConfig::Kubernetes config_;
  std::chrono::seconds watch_timeout_;
  std::string resource_version_;  // empty: list before watching
  std::map<std::string, DiscoveredNode> nodes_;
  uint64_t lists_ = 0;
};

}  // namespace meshflow::discovery
