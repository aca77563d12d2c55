#include "common/discovery/wireguard_netlink.h"

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/wireguard.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>

namespace meshflow::discovery {
namespace {

constexpr size_t kMaxAnswer = 16 << 20;  // thousands of peers are a few MB

size_t Align4(size_t n) { return (n + 3) & ~size_t{3}; }

template <typename T>
T Read(std::string_view data, size_t at) {
  T v;
  std::memcpy(&v, data.data() + at, sizeof v);
  return v;
}

template <typename T>
void Append(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// Walks the attributes in `data`; `visit(type, payload)` returns false with `error` set to stop.
bool ForEachAttribute(std::string_view data,
                      const std::function<bool(uint16_t, std::string_view)>& visit,
                      std::string* error) {
  size_t at = 0;
  while (at < data.size()) {
    if (data.size() - at < sizeof(nlattr)) {
      *error = "attribute header cut off at byte " + std::to_string(at);
      return false;
    }
    const auto attr = Read<nlattr>(data, at);
    if (attr.nla_len < sizeof(nlattr) || attr.nla_len > data.size() - at) {
      *error = "attribute at byte " + std::to_string(at) + " has length " +
               std::to_string(attr.nla_len) + ", beyond its container";
      return false;
    }
    const std::string_view payload =
        data.substr(at + sizeof(nlattr), attr.nla_len - sizeof(nlattr));
    if (!visit(static_cast<uint16_t>(attr.nla_type & NLA_TYPE_MASK), payload)) return false;
    at += Align4(attr.nla_len);
  }
  return true;
}

std::string Hex(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

bool ReadAllowedIp(std::string_view data, IpPrefix* out, std::string* error) {
  std::optional<uint16_t> family;
  std::optional<IpAddress> address;
  std::optional<uint8_t> mask;
  std::string_view raw_address;
  const bool ok = ForEachAttribute(
      data,
      [&](uint16_t type, std::string_view p) {
        if (type == WGALLOWEDIP_A_FAMILY) {
          if (p.size() != 2) {
            *error = "family of " + std::to_string(p.size()) + " bytes";
            return false;
          }
          family = Read<uint16_t>(p, 0);
        } else if (type == WGALLOWEDIP_A_IPADDR) {
          raw_address = p;
        } else if (type == WGALLOWEDIP_A_CIDR_MASK) {
          if (p.size() != 1) {
            *error = "cidr mask of " + std::to_string(p.size()) + " bytes";
            return false;
          }
          mask = static_cast<uint8_t>(p[0]);
        }
        return true;  // WGALLOWEDIP_A_FLAGS and newer attributes: not needed
      },
      error);
  if (!ok) return false;
  if (!family || raw_address.empty() || !mask) {
    *error = "needs family, address and cidr mask";
    return false;
  }
  if (*family == AF_INET && raw_address.size() == 4) {
    address = IpAddress::FromV4Bytes(reinterpret_cast<const uint8_t*>(raw_address.data()));
  } else if (*family == AF_INET6 && raw_address.size() == 16) {
    address = IpAddress::FromV6Bytes(reinterpret_cast<const uint8_t*>(raw_address.data()));
  } else {
    *error = "family " + std::to_string(*family) + " with a " + std::to_string(raw_address.size()) +
             "-byte address";
    return false;
  }
  if (*mask > (address->is_v4() ? 32 : 128)) {
    *error = "cidr mask /" + std::to_string(*mask) + " for " + address->ToString();
    return false;
  }
  *out = IpPrefix{*address, *mask};
  return true;
}

bool ReadEndpoint(std::string_view p, std::string* out, std::string* error) {
  if (p.size() < sizeof(sa_family_t)) {
    *error = "endpoint of " + std::to_string(p.size()) + " bytes";
    return false;
  }
  const auto family = Read<sa_family_t>(p, 0);
  if (family == AF_INET && p.size() >= sizeof(sockaddr_in)) {
    const auto a = Read<sockaddr_in>(p, 0);
    *out = IpAddress::FromV4Bytes(reinterpret_cast<const uint8_t*>(&a.sin_addr)).ToString() + ":" +
           std::to_string(ntohs(a.sin_port));
    return true;
  }
  if (family == AF_INET6 && p.size() >= sizeof(sockaddr_in6)) {
    const auto a = Read<sockaddr_in6>(p, 0);
    *out = "[" + IpAddress::FromV6Bytes(reinterpret_cast<const uint8_t*>(&a.sin6_addr)).ToString() +
           "]:" + std::to_string(ntohs(a.sin6_port));
    return true;
  }
  *error =
      "endpoint of family " + std::to_string(family) + " in " + std::to_string(p.size()) + " bytes";
  return false;
}

bool ReadPeer(std::string_view data, WireGuardPeer* peer, std::string* error) {
  size_t allowed_index = 0;
  const bool ok = ForEachAttribute(
      data,
      [&](uint16_t type, std::string_view p) {
        if (type == WGPEER_A_PUBLIC_KEY) {
          if (p.size() != WG_KEY_LEN) {
            *error = "public key of " + std::to_string(p.size()) + " bytes";
            return false;
          }
          peer->public_key = Hex(p);
        } else if (type == WGPEER_A_ENDPOINT) {
          return ReadEndpoint(p, &peer->endpoint, error);
        } else if (type == WGPEER_A_ALLOWEDIPS) {
          return ForEachAttribute(
              p,
              [&](uint16_t, std::string_view entry) {
                ++allowed_index;
                IpPrefix prefix;
                std::string why;
                if (!ReadAllowedIp(entry, &prefix, &why)) {
                  *error = "allowed IP " + std::to_string(allowed_index) + ": " + why;
                  return false;
                }
                peer->allowed_ips.push_back(prefix);
                return true;
              },
              error);
        }
        return true;  // keys, counters, handshake time: not needed
      },
      error);
  if (!ok) return false;
  if (peer->public_key.empty()) {
    *error = "no public key";
    return false;
  }
  return true;
}

// The messages of one answer, one at a time: `visit(type, payload)`; NLMSG_ERROR and NLMSG_DONE
// are handled here. Returns false with `error` (and `kernel_errno`) on failure; `done` says
// NLMSG_DONE (or the ack of a request without a dump) was seen.
bool ForEachMessage(std::string_view data,
                    const std::function<bool(size_t, uint16_t, std::string_view)>& visit,
                    std::string* error, int* kernel_errno, bool* done) {
  size_t at = 0;
  size_t index = 0;
  *done = false;
  while (at < data.size() && !*done) {
    ++index;
    const std::string where = "message " + std::to_string(index) + ": ";
    if (data.size() - at < sizeof(nlmsghdr)) {
      *error = where + "header cut off";
      return false;
    }
    const auto h = Read<nlmsghdr>(data, at);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > data.size() - at) {
      *error = where + "length " + std::to_string(h.nlmsg_len) + " beyond the " +
               std::to_string(data.size() - at) + " bytes left";
      return false;
    }
    const std::string_view payload =
        data.substr(at + sizeof(nlmsghdr), h.nlmsg_len - sizeof(nlmsghdr));
    if (h.nlmsg_type == NLMSG_DONE) {
      *done = true;
    } else if (h.nlmsg_type == NLMSG_ERROR) {
      if (payload.size() < sizeof(int32_t)) {
        *error = where + "error message cut off";
        return false;
      }
      const int32_t code = Read<int32_t>(payload, 0);
      if (code != 0) {
        // The kernel sends -errno; anything else (positive, or INT_MIN, whose negation does not
        // exist) is a malformed answer, not an errno to report.
        if (code > 0 || code < -4095) {
          *error = where + "error message with a code that is no errno: " + std::to_string(code);
          return false;
        }
        *kernel_errno = -code;
        *error = std::string("the kernel answered: ") + std::strerror(-code);
        return false;
      }
      *done = true;  // an ack
    } else if (h.nlmsg_type == NLMSG_NOOP) {
    } else if (!visit(index, h.nlmsg_type, payload)) {
      *error = where + *error;
      return false;
    }
    at += Align4(h.nlmsg_len);
  }
  return true;
}

std::string Request(uint16_t type, uint16_t flags, uint32_t seq, uint8_t cmd, uint8_t version,
                    uint16_t attribute, std::string_view value) {
  std::string attrs;
  nlattr a{};
  a.nla_len = static_cast<uint16_t>(sizeof(nlattr) + value.size() + 1);
  a.nla_type = attribute;
  Append(attrs, a);
  attrs.append(value);
  attrs.push_back('\0');
  attrs.resize(Align4(attrs.size()), '\0');
  nlmsghdr h{};
  h.nlmsg_len = static_cast<uint32_t>(sizeof(nlmsghdr) + sizeof(genlmsghdr) + attrs.size());
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  h.nlmsg_seq = seq;
  genlmsghdr g{};
  g.cmd = cmd;
  g.version = version;
  std::string out;
  Append(out, h);
  Append(out, g);
  return out + attrs;
}

}  // namespace

NetlinkDeviceParse ParseWgGetDevice(std::string_view messages, uint16_t family) {
  NetlinkDeviceParse out;
  bool done = false;
  size_t peer_index = 0;
  const bool ok = ForEachMessage(
      messages,
      [&](size_t, uint16_t type, std::string_view payload) {
        if (type != family) {
          out.error = "type " + std::to_string(type) + ", not the wireguard family " +
                      std::to_string(family);
          return false;
        }
        if (payload.size() < sizeof(genlmsghdr)) {
          out.error = "generic netlink header cut off";
          return false;
        }
        const auto g = Read<genlmsghdr>(payload, 0);
        if (g.cmd != WG_CMD_GET_DEVICE) {
          out.error = "command " + std::to_string(g.cmd) + ", not WG_CMD_GET_DEVICE";
          return false;
        }
        bool first_in_message = true;
        return ForEachAttribute(
            payload.substr(sizeof(genlmsghdr)),
            [&](uint16_t attr, std::string_view p) {
              if (attr == WGDEVICE_A_IFNAME) {
                out.ifname = std::string(p.substr(0, p.find('\0')));
              } else if (attr == WGDEVICE_A_PEERS) {
                return ForEachAttribute(
                    p,
                    [&](uint16_t, std::string_view entry) {
                      ++peer_index;
                      WireGuardPeer peer;
                      std::string why;
                      if (!ReadPeer(entry, &peer, &why)) {
                        out.error = "peer " + std::to_string(peer_index) + ": " + why;
                        return false;
                      }
                      // The first peer of a message may continue the last one of the previous
                      // message (more allowed IPs than fitted).
                      if (first_in_message && !out.peers.empty() &&
                          out.peers.back().public_key == peer.public_key) {
                        auto& last = out.peers.back().allowed_ips;
                        last.insert(last.end(), peer.allowed_ips.begin(), peer.allowed_ips.end());
                        if (out.peers.back().endpoint.empty())
                          out.peers.back().endpoint = peer.endpoint;
                      } else {
                        out.peers.push_back(std::move(peer));
                      }
                      first_in_message = false;
                      return true;
                    },
                    &out.error);
              }
              return true;
            },
            &out.error);
      },
      &out.error, &out.kernel_errno, &done);
  if (!ok) {
    out.peers.clear();
    return out;
  }
  if (!done) {
    out.error = "answer ends before NLMSG_DONE";
    out.peers.clear();
    return out;
  }
  out.ok = true;
  return out;
}

NetlinkFamilyParse ParseGenlFamily(std::string_view messages) {
  NetlinkFamilyParse out;
  bool done = false;
  bool found = false;
  const bool ok = ForEachMessage(
      messages,
      [&](size_t, uint16_t type, std::string_view payload) {
        if (type != GENL_ID_CTRL || payload.size() < sizeof(genlmsghdr)) {
          out.error = "not a generic netlink controller answer";
          return false;
        }
        return ForEachAttribute(
            payload.substr(sizeof(genlmsghdr)),
            [&](uint16_t attr, std::string_view p) {
              if (attr != CTRL_ATTR_FAMILY_ID) return true;
              if (p.size() != 2) {
                out.error = "family id of " + std::to_string(p.size()) + " bytes";
                return false;
              }
              out.id = Read<uint16_t>(p, 0);
              found = true;
              return true;
            },
            &out.error);
      },
      &out.error, &out.kernel_errno, &done);
  if (!ok) return out;
  if (!found || out.id == 0) {
    out.error = "no family id in the controller's answer";
    return out;
  }
  out.ok = true;
  return out;
}

std::string GenlGetFamilyRequest(std::string_view name, uint32_t seq) {
  return Request(GENL_ID_CTRL, NLM_F_REQUEST, seq, CTRL_CMD_GETFAMILY, 1, CTRL_ATTR_FAMILY_NAME,
                 name);
}

std::string WgGetDeviceRequest(uint16_t family, std::string_view ifname, uint32_t seq) {
  return Request(family, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP, seq, WG_CMD_GET_DEVICE,
                 WG_GENL_VERSION, WGDEVICE_A_IFNAME, ifname);
}

namespace {

// One request on a fresh generic netlink socket; the answer's messages until `complete` says
// so (or 2 s pass).
bool Exchange(const std::string& request, const std::function<bool(std::string_view)>& complete,
              std::string* answer, std::string* error) {
  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
  if (fd < 0) {
    *error = std::string("generic netlink socket: ") + std::strerror(errno);
    return false;
  }
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
             sizeof kernel) < 0) {
    *error = std::string("generic netlink send: ") + std::strerror(errno);
    close(fd);
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  std::string buf(1 << 16, '\0');
  for (;;) {
    if (complete(*answer)) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      *error = "generic netlink: no complete answer within 2 s";
      close(fd);
      return false;
    }
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = std::string("generic netlink recv: ") + std::strerror(errno);
      close(fd);
      return false;
    }
    answer->append(buf.data(), static_cast<size_t>(n));
    if (answer->size() > kMaxAnswer) {
      *error = "generic netlink: answer above " + std::to_string(kMaxAnswer) + " bytes";
      close(fd);
      return false;
    }
  }
  close(fd);
  return true;
}

// Whether the messages so far end the answer (NLMSG_DONE or NLMSG_ERROR, which is also the ack).
bool Ends(std::string_view data) {
  size_t at = 0;
  while (data.size() - at >= sizeof(nlmsghdr)) {
    const auto h = Read<nlmsghdr>(data, at);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > data.size() - at) return true;  // bad
    if (h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_ERROR) return true;
    at += Align4(h.nlmsg_len);
  }
  return false;
}

}  // namespace

PollResult QueryKernelWireGuard(const std::string& ifname) {
  std::string answer, error;
  // The controller answers a lookup with the family alone, or an error: one message.
  if (!Exchange(
          GenlGetFamilyRequest(WG_GENL_NAME, 1),
          [](std::string_view a) { return a.size() >= sizeof(nlmsghdr); }, &answer, &error))
    return PollResult::Fail(error);
  const NetlinkFamilyParse family = ParseGenlFamily(answer);
  if (!family.ok) {
    if (family.kernel_errno == ENOENT)
      return PollResult::Fail(
          "the kernel has no \"wireguard\" generic netlink family (no WireGuard module loaded)");
    return PollResult::Fail("generic netlink family lookup: " + family.error);
  }
  answer.clear();
  if (!Exchange(WgGetDeviceRequest(family.id, ifname, 2), Ends, &answer, &error))
    return PollResult::Fail(ifname + ": " + error);
  const NetlinkDeviceParse device = ParseWgGetDevice(answer, family.id);
  if (!device.ok) {
    if (device.kernel_errno == ENODEV) return PollResult::Fail(ifname + ": no such interface");
    if (device.kernel_errno == EOPNOTSUPP)
      return PollResult::Fail(ifname + ": not a kernel WireGuard interface");
    if (device.kernel_errno == EPERM)
      return PollResult::Fail(ifname + ": reading kernel WireGuard devices needs CAP_NET_ADMIN");
    return PollResult::Fail(ifname + ": WG_CMD_GET_DEVICE: " + device.error);
  }
  return PollResult::Ok(NodesFromPeers(device.peers));
}

}  // namespace meshflow::discovery
