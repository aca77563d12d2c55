#include "common/discovery/tailscale.h"

#include <algorithm>
#include <cctype>

#include "common/discovery/json_util.h"
#include "common/discovery/unix_socket.h"

namespace meshflow::discovery {
namespace {

constexpr size_t kMaxAnswer = 16 << 20;  // a status of thousands of peers is a few MB

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Whether the filter keeps a peer: its "Online" and "Tags" (checked whether or not a filter
// uses them); false and `error` on bad data.
bool Keep(const nlohmann::json& peer, const std::string& path, const TailscaleFilter& filter,
          bool* keep, std::string* error) {
  *keep = true;
  if (const auto online = peer.find("Online"); online != peer.end() && !online->is_null()) {
    if (!online->is_boolean()) {
      *error = path + ".Online: not true or false";
      return false;
    }
    if (filter.online_only && !online->get<bool>()) *keep = false;
  }
  bool tagged = false;
  if (const auto tags = peer.find("Tags"); tags != peer.end() && !tags->is_null()) {
    if (!tags->is_array()) {
      *error = path + ".Tags: not an array";
      return false;
    }
    for (size_t i = 0; i < tags->size(); ++i) {
      const auto& t = (*tags)[i];
      if (!t.is_string()) {
        *error = path + ".Tags[" + std::to_string(i) + "]: not a string";
        return false;
      }
      if (std::find(filter.tags.begin(), filter.tags.end(), t.get<std::string>()) !=
          filter.tags.end())
        tagged = true;
    }
  }
  if (!filter.tags.empty() && !tagged) *keep = false;
  return true;
}

// One Self or Peer entry; false and `error` on bad data.
bool ReadPeer(const nlohmann::json& peer, const std::string& path, std::vector<DiscoveredNode>* out,
              std::string* error) {
  if (!peer.is_object()) {
    *error = path + ": not an object";
    return false;
  }
  std::string name;
  if (auto dns = detail::StringAt(peer, "DNSName"); dns && !dns->empty())
    name = dns->substr(0, dns->find('.'));
  if (name.empty())
    if (auto host = detail::StringAt(peer, "HostName")) name = *host;
  name = Lower(name);
  if (name.empty()) {
    *error = path + ": neither DNSName nor HostName";
    return false;
  }
  DiscoveredNode node{name, {}, "tailscale"};
  const auto ips = peer.find("TailscaleIPs");
  if (ips == peer.end() || ips->is_null()) return true;  // not yet given an address: skip
  if (!ips->is_array()) {
    *error = path + ".TailscaleIPs: not an array";
    return false;
  }
  for (size_t i = 0; i < ips->size(); ++i) {
    const auto& v = (*ips)[i];
    const auto a = v.is_string() ? IpAddress::Parse(v.get<std::string>()) : std::nullopt;
    if (!a) {
      *error = path + ".TailscaleIPs[" + std::to_string(i) + "]: not an IP address";
      return false;
    }
    node.addresses.push_back(IpPrefix{*a, a->is_v4() ? 32 : 128});
  }
  // IPv4 (the 100.64.0.0/10 address) first: it is the one probed.
  std::stable_sort(
      node.addresses.begin(), node.addresses.end(),
      [](const IpPrefix& x, const IpPrefix& y) { return x.address.is_v4() && !y.address.is_v4(); });
  if (!node.addresses.empty()) out->push_back(std::move(node));
  return true;
}

}  // namespace

TailscaleParse ParseTailscaleStatus(std::string_view json, const TailscaleFilter& filter) {
  TailscaleParse out;
  auto doc = detail::ParseJson(json, &out.error);
  if (!doc) return out;
  if (!doc->is_object()) {
    out.error = "status: not a JSON object";
    return out;
  }
  std::vector<DiscoveredNode> nodes;
  size_t filtered = 0;  // set in `out` only on success, as the nodes are
  if (const auto self = doc->find("Self"); self != doc->end() && !self->is_null()) {
    if (!ReadPeer(*self, "Self", &nodes, &out.error)) return out;
  }
  if (const auto peers = doc->find("Peer"); peers != doc->end() && !peers->is_null()) {
    if (!peers->is_object()) {
      out.error = "Peer: not an object";
      return out;
    }
    for (const auto& [key, peer] : peers->items()) {
      const std::string path = "Peer[\"" + Snippet(key, 80) + "\"]";
      std::vector<DiscoveredNode> one;
      if (!ReadPeer(peer, path, &one, &out.error)) return out;
      bool keep = true;
      if (!Keep(peer, path, filter, &keep, &out.error)) return out;
      if (!keep) {
        filtered += one.size();  // a peer without an address was no node anyway
        continue;
      }
      nodes.insert(nodes.end(), one.begin(), one.end());
    }
  }
  out.ok = true;
  out.nodes = std::move(nodes);
  out.filtered = filtered;
  return out;
}

PollResult TailscaleSource::Poll() {
  // HTTP/1.0: tailscaled then answers without chunking and closes, so the end is the close.
  const std::string request =
      "GET /localapi/v0/status HTTP/1.0\r\nHost: local-tailscaled.sock\r\n\r\n";
  std::string answer, error;
  if (!UnixExchange(
          socket_, request, [](std::string_view) { return false; }, std::chrono::seconds(5),
          kMaxAnswer, &answer, &error))
    return PollResult::Fail(error);
  const size_t head_end = answer.find("\r\n\r\n");
  if (head_end == std::string::npos || answer.compare(0, 5, "HTTP/") != 0)
    return PollResult::Fail(socket_ + ": not an HTTP response");
  const size_t sp = answer.find(' ');
  const std::string status = sp == std::string::npos ? "" : answer.substr(sp + 1, 3);
  if (status != "200") {
    return PollResult::Fail(socket_ + ": /localapi/v0/status answered HTTP " + status + ": " +
                            Snippet(std::string_view(answer).substr(head_end + 4)));
  }
  std::string head = Lower(answer.substr(0, head_end));
  if (head.find("transfer-encoding: chunked") != std::string::npos)
    return PollResult::Fail(socket_ + ": chunked answer to an HTTP/1.0 request");
  TailscaleParse parsed =
      ParseTailscaleStatus(std::string_view(answer).substr(head_end + 4), filter_);
  if (!parsed.ok) return PollResult::Fail(socket_ + ": status: " + parsed.error);
  return PollResult::Ok(std::move(parsed.nodes));
}

}  // namespace meshflow::discovery
