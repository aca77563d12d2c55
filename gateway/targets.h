#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/core/clock.h"
#include "common/core/ip_address.h"
#include "gateway/gateway_config.h"

namespace meshflow::gateway {

enum class TargetSource { kStatic, kDns, kPush };

std::string_view TargetSourceName(TargetSource source);

// One node as Prometheus sees it through the gateway.
struct Target {
  std::string node;
  TargetSource source = TargetSource::kStatic;
  std::string url;  // the exporter's URL; empty for push nodes
  bool operator==(const Target&) const = default;
};

// Name service behind an interface, so discovery is tested without DNS.
class Resolver {
 public:
  virtual ~Resolver() = default;
  // A and AAAA records of `name`; empty when it does not resolve.
  virtual std::vector<IpAddress> Resolve(const std::string& name) = 0;
  // The PTR name of `address`, or nullopt.
  virtual std::optional<std::string> ReverseLookup(const IpAddress& address) = 0;
};

// getaddrinfo / getnameinfo.
class SystemResolver final : public Resolver {
 public:
  std::vector<IpAddress> Resolve(const std::string& name) override;
  std::optional<std::string> ReverseLookup(const IpAddress& address) override;
};

// The node name for a discovered address: the first label of its PTR name when that is a valid
// node name (hostNetwork pods and Tailscale MagicDNS give the host name there), else the address.
std::string NodeNameFor(const IpAddress& address, const std::optional<std::string>& ptr_name);

// Every target the gateway knows: the static list and push nodes from the config, plus what DNS
// discovery found at its last refresh. Names are unique; the config's own entries win over
// discovered ones.
class TargetRegistry {
 public:
  TargetRegistry(Resolver& resolver, const Clock& clock) : resolver_(resolver), clock_(clock) {}

  // Applies a (re)loaded config; DNS names are resolved at the next Refresh().
  void Configure(const GatewayConfig& config);
  // Re-resolves every DNS name whose refresh interval has passed (all of them after Configure).
  // A failed lookup keeps the previous answer, so a resolver hiccup does not drop nodes.
  void Refresh();

  std::vector<Target> Snapshot() const;  // sorted by node name
  std::optional<Target> Find(const std::string& node) const;
  // DNS lookups that failed or returned nothing, so far.
  uint64_t dns_failures() const;

 private:
  struct DnsState {
    DnsTargets spec;
    std::chrono::nanoseconds next_refresh{0};
    std::vector<Target> found;
  };
  void Rebuild();  // caller holds mutex_

  Resolver& resolver_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  std::vector<Target> configured_;
  std::vector<DnsState> dns_;
  std::map<std::string, Target> all_;
  uint64_t dns_failures_ = 0;
};

}  // namespace meshflow::gateway
