#include "gateway/targets.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <set>

#include "common/core/config_reader.h"
#include "common/core/enum_names.h"
#include "common/http/http_client.h"

namespace meshflow::gateway {

namespace {

constexpr EnumName<TargetSource> kTargetSourceNames[] = {
    {TargetSource::kStatic, "static"},
    {TargetSource::kDns, "dns"},
    {TargetSource::kPush, "push"},
};

}  // namespace

std::string_view TargetSourceName(TargetSource source) {
  return NameOf(kTargetSourceNames, source);
}

std::vector<IpAddress> SystemResolver::Resolve(const std::string& name) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  std::vector<IpAddress> out;
  if (::getaddrinfo(name.c_str(), nullptr, &hints, &list) != 0) return out;
  std::set<IpAddress> seen;
  for (addrinfo* ai = list; ai; ai = ai->ai_next) {
    IpAddress a;
    if (ai->ai_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
      a = IpAddress::FromV4Bytes(reinterpret_cast<const uint8_t*>(&sin->sin_addr));
    } else if (ai->ai_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
      a = IpAddress::FromV6Bytes(sin6->sin6_addr.s6_addr);
    } else {
      continue;
    }
    if (seen.insert(a).second) out.push_back(a);
  }
  ::freeaddrinfo(list);
  return out;
}

std::optional<std::string> SystemResolver::ReverseLookup(const IpAddress& address) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (address.is_v4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    std::memcpy(&sin->sin_addr, address.bytes().data() + 12, 4);
    len = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    std::memcpy(&sin6->sin6_addr, address.bytes().data(), 16);
    len = sizeof(sockaddr_in6);
  }
  char host[NI_MAXHOST];
  if (::getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof(host), nullptr, 0,
                    NI_NAMEREQD) != 0)
    return std::nullopt;
  return std::string(host);
}

std::string NodeNameFor(const IpAddress& address, const std::optional<std::string>& ptr_name) {
  if (ptr_name) {
    const std::string first = ptr_name->substr(0, ptr_name->find('.'));
    if (ValidName(first)) return first;
  }
  // IPv6 colons are fine in label values but not in our node names; keep it readable.
  // "::1" starts with a separator, which node names may not: it becomes "0--1".
  const std::string address_text = address.ToString();
  std::string text;
  if (!address_text.empty() && address_text.front() == ':') text.push_back('0');
  for (char c : address_text) text.push_back(c == ':' ? '-' : c);
  return text;
}

void TargetRegistry::Configure(const GatewayConfig& config) {
  std::lock_guard lock(mutex_);
  configured_.clear();
  for (const auto& s : config.static_targets)
    configured_.push_back(Target{s.node, TargetSource::kStatic, s.url});
  for (const auto& p : config.push_nodes)
    configured_.push_back(Target{p.node, TargetSource::kPush, ""});
  std::vector<DnsState> dns;
  for (const auto& spec : config.dns_targets) {
    DnsState state;
    state.spec = spec;
    // Keep what an identical entry already found, so a reload does not blank the targets.
    for (const auto& old : dns_) {
      if (old.spec.name == spec.name && old.spec.https == spec.https &&
          old.spec.port == spec.port && old.spec.path == spec.path)
        state.found = old.found;
    }
    dns.push_back(std::move(state));
  }
  dns_ = std::move(dns);
  Rebuild();
}

void TargetRegistry::Refresh() {
  std::vector<std::pair<size_t, DnsTargets>> due;
  {
    std::lock_guard lock(mutex_);
    const auto now = clock_.Monotonic();
    for (size_t i = 0; i < dns_.size(); ++i) {
      if (now >= dns_[i].next_refresh) due.emplace_back(i, dns_[i].spec);
    }
  }
  // Lookups happen unlocked: they can take seconds and readers must not wait for them.
  for (const auto& [index, spec] : due) {
    const auto addresses = resolver_.Resolve(spec.name);
    std::vector<Target> found;
    std::set<std::string> names;
    for (const auto& a : addresses) {
      std::string node = NodeNameFor(a, resolver_.ReverseLookup(a));
      // Two addresses with the same host name: the second is named by its (unique) address.
      if (!names.insert(node).second) {
        node = NodeNameFor(a, std::nullopt);
        names.insert(node);
      }
      http::HttpUrl url;
      url.https = spec.https;
      url.host = a.ToString();
      url.port = spec.port;
      url.target = spec.path;
      found.push_back(Target{node, TargetSource::kDns, url.ToString()});
    }
    std::lock_guard lock(mutex_);
    if (index >= dns_.size() || dns_[index].spec.name != spec.name) continue;  // reconfigured
    dns_[index].next_refresh = clock_.Monotonic() + spec.refresh_interval;
    if (found.empty()) {
      ++dns_failures_;
      continue;
    }
    dns_[index].found = std::move(found);
    Rebuild();
  }
}

void TargetRegistry::Rebuild() {
  all_.clear();
  for (const auto& t : configured_) all_.emplace(t.node, t);
  for (const auto& d : dns_) {
    for (const auto& t : d.found) all_.emplace(t.node, t);  // never replaces a configured node
  }
}

std::vector<Target> TargetRegistry::Snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<Target> out;
  out.reserve(all_.size());
  for (const auto& [name, t] : all_) out.push_back(t);
  return out;
}

std::optional<Target> TargetRegistry::Find(const std::string& node) const {
  std::lock_guard lock(mutex_);
  auto it = all_.find(node);
  if (it == all_.end()) return std::nullopt;
  return it->second;
}

uint64_t TargetRegistry::dns_failures() const {
  std::lock_guard lock(mutex_);
  return dns_failures_;
}

}  // namespace meshflow::gateway
