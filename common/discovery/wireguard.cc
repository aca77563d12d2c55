#include "common/discovery/wireguard.h"

#include <dirent.h>
#include <net/if.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>

#include "common/discovery/unix_socket.h"
#include "common/discovery/wireguard_netlink.h"

namespace meshflow::discovery {
namespace {

bool IsHexKey(std::string_view v) {
  return v.size() == 64 && std::all_of(v.begin(), v.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool IsHost(const IpPrefix& p) { return p.bits == (p.address.is_v4() ? 32 : 128); }

constexpr size_t kMaxAnswer = 4 << 20;   // a device with thousands of peers stays well below
constexpr size_t kMaxAllowedIps = 4096;  // per peer; more is a broken or hostile device

}  // namespace

UapiParse ParseUapiGet(std::string_view text) {
  UapiParse out;
  size_t line_no = 0;
  bool seen_errno = false;
  bool ended = false;
  auto fail = [&](const std::string& why) {
    out.ok = false;
    out.error = "line " + std::to_string(line_no) + ": " + why;
    out.peers.clear();
    return out;
  };
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      ++line_no;
      return fail("answer cut off (no newline after the last line)");
    }
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (ended) return fail("text after the blank line that ends the answer");
    if (line.empty()) {
      ended = true;
      continue;
    }
    if (seen_errno) return fail("a line after errno=");
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) return fail("not a key=value line");
    const std::string_view key = line.substr(0, eq);
    const std::string_view value = line.substr(eq + 1);
    if (key == "errno") {
      int e = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), e);
      if (ec != std::errc() || end != value.data() + value.size())
        return fail("errno is not a number");
      if (e != 0) return fail("the device answered errno=" + Snippet(value, 16));
      seen_errno = true;
    } else if (key == "public_key") {
      if (!IsHexKey(value)) return fail("public_key is not 64 lower-case hex digits");
      out.peers.push_back(WireGuardPeer{std::string(value), {}, {}});
    } else if (key == "allowed_ip") {
      if (out.peers.empty()) return fail("allowed_ip before any public_key");
      std::string why;
      auto prefix = IpPrefix::Parse(value, &why);
      if (!prefix) return fail("allowed_ip " + Snippet(value, 64) + ": " + why);
      if (out.peers.back().allowed_ips.size() >= kMaxAllowedIps)
        return fail("more than " + std::to_string(kMaxAllowedIps) + " allowed IPs on one peer");
      out.peers.back().allowed_ips.push_back(*prefix);
    } else if (key == "endpoint") {
      if (out.peers.empty()) return fail("endpoint before any public_key");
      out.peers.back().endpoint = std::string(value);
    }
    // Other keys (private_key, listen_port, handshake times, byte counts, ...) are not needed.
  }
  if (!seen_errno) {
    ++line_no;
    return fail("answer ends without errno=");
  }
  if (!ended) {
    ++line_no;
    return fail("answer ends without the closing blank line");
  }
  out.ok = true;
  return out;
}

std::vector<DiscoveredNode> NodesFromPeers(const std::vector<WireGuardPeer>& peers) {
  std::vector<DiscoveredNode> nodes;
  for (const auto& peer : peers) {
    DiscoveredNode node;
    node.source = "wireguard";
    // Host addresses first: the first one is what gets probed.
    for (const auto& p : peer.allowed_ips)
      if (IsHost(p)) node.addresses.push_back(p);
    if (node.addresses.empty()) continue;  // a site route with no host: nothing to probe
    for (const auto& p : peer.allowed_ips)
      if (!IsHost(p) && p.bits != 0) node.addresses.push_back(p);  // never a default route
    nodes.push_back(std::move(node));
  }
  return nodes;
}

WireGuardSource::WireGuardSource(std::string socket_dir, std::vector<std::string> interfaces)
    : socket_dir_(std::move(socket_dir)), interfaces_(std::move(interfaces)) {}

PollResult WireGuardSource::QuerySocket(const std::string& path) {
  std::string answer, error;
  const auto complete = [](std::string_view a) {
    // The answer ends with "errno=N\n\n"; a shorter one may still be arriving.
    return a.size() >= 2 && a.substr(a.size() - 2) == "\n\n";
  };
  if (!UnixExchange(path, "get=1\n\n", complete, std::chrono::seconds(2), kMaxAnswer, &answer,
                    &error))
    return PollResult::Fail(error);
  UapiParse parsed = ParseUapiGet(answer);
  if (!parsed.ok) return PollResult::Fail(path + ": " + parsed.error);
  return PollResult::Ok(NodesFromPeers(parsed.peers));
}

PollResult WireGuardSource::Poll() {
  std::vector<std::string> sockets;  // interfaces with a UAPI socket
  std::vector<std::string> kernel;   // interfaces asked over generic netlink
  std::string kernel_note;           // why no kernel device was found, for the error
  if (interfaces_.empty()) {
    if (DIR* dir = opendir(socket_dir_.c_str())) {
      while (const dirent* e = readdir(dir)) {
        const std::string_view n = e->d_name;
        if (n.size() > 5 && n.substr(n.size() - 5) == ".sock")
          sockets.emplace_back(n.substr(0, n.size() - 5));
      }
      closedir(dir);
    }
    std::sort(sockets.begin(), sockets.end());
    // Kernel devices: every interface the wireguard family answers for (others say
    // EOPNOTSUPP), when the kernel has the family at all.
    if (struct if_nameindex* list = if_nameindex()) {
      for (const struct if_nameindex* i = list; i->if_index != 0; ++i) {
        const std::string name = i->if_name;
        if (std::find(sockets.begin(), sockets.end(), name) != sockets.end()) continue;
        PollResult r = QueryKernelWireGuard(name);
        if (r.nodes) {
          kernel.push_back(name);
        } else if (r.error.find("generic netlink family") != std::string::npos ||
                   r.error.find("CAP_NET_ADMIN") != std::string::npos) {
          kernel_note = r.error;
          break;
        }
      }
      if_freenameindex(list);
    }
    if (sockets.empty() && kernel.empty()) {
      return PollResult::Fail(socket_dir_ + ": no WireGuard UAPI socket, and no kernel WireGuard " +
                              "interface" + (kernel_note.empty() ? "" : " (" + kernel_note + ")"));
    }
  } else {
    for (const auto& ifname : interfaces_) {
      struct stat st {};
      const std::string path = socket_dir_ + "/" + ifname + ".sock";
      if (stat(path.c_str(), &st) == 0) {
        sockets.push_back(ifname);
      } else {
        kernel.push_back(ifname);
      }
    }
  }
  std::vector<DiscoveredNode> all;
  // One device failing fails the poll: a partial set would drop the other device's peers.
  for (const auto& ifname : sockets) {
    PollResult r = QuerySocket(socket_dir_ + "/" + ifname + ".sock");
    if (!r.nodes) return r;
    for (auto& n : *r.nodes) all.push_back(std::move(n));
  }
  for (const auto& ifname : kernel) {
    PollResult r = QueryKernelWireGuard(ifname);
    if (!r.nodes) {
      return PollResult::Fail(ifname + ": no UAPI socket " + socket_dir_ + "/" + ifname +
                              ".sock, and over generic netlink: " + r.error);
    }
    for (auto& n : *r.nodes) all.push_back(std::move(n));
  }
  return PollResult::Ok(std::move(all));
}

}  // namespace meshflow::discovery
