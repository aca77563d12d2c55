// Kernel WireGuard's generic netlink answers, built here byte by byte per the kernel's
// include/uapi/linux/wireguard.h and linux/netlink.h layout (this machine's kernel has no
// WireGuard module, so no answer was recorded from a live kernel).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/wireguard.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/discovery/wireguard_netlink.h"

namespace meshflow::discovery {
namespace {

constexpr uint16_t kFamily = 0x1b;  // whatever the controller hands out

std::string Pad(std::string s) {
  s.resize((s.size() + 3) & ~size_t{3}, '\0');
  return s;
}

std::string Attr(uint16_t type, const std::string& payload, bool nested = false) {
  nlattr a{};
  a.nla_len = static_cast<uint16_t>(sizeof a + payload.size());
  a.nla_type = static_cast<uint16_t>(type | (nested ? NLA_F_NESTED : 0));
  std::string out(reinterpret_cast<const char*>(&a), sizeof a);
  return Pad(out + payload);
}

template <typename T>
std::string Bytes(const T& v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}

std::string Message(uint16_t type, const std::string& payload, uint32_t seq = 2) {
  nlmsghdr h{};
  h.nlmsg_len = static_cast<uint32_t>(sizeof h + payload.size());
  h.nlmsg_type = type;
  h.nlmsg_flags = NLM_F_MULTI;
  h.nlmsg_seq = seq;
  return Pad(Bytes(h) + payload);
}

std::string Genl(uint8_t cmd, const std::string& attrs) {
  genlmsghdr g{};
  g.cmd = cmd;
  g.version = 1;
  return Bytes(g) + attrs;
}

std::string Done() { return Message(NLMSG_DONE, Bytes(int32_t{0})); }

std::string Error(int err) {
  nlmsgerr e{};
  e.error = -err;
  return Message(NLMSG_ERROR, Bytes(e));
}

std::string Key(char fill) { return std::string(WG_KEY_LEN, fill); }

std::string AllowedIp(const char* text, uint8_t mask) {
  std::string addr;
  uint16_t family;
  if (std::strchr(text, ':') != nullptr) {
    in6_addr a{};
    inet_pton(AF_INET6, text, &a);
    addr = Bytes(a);
    family = AF_INET6;
  } else {
    in_addr a{};
    inet_pton(AF_INET, text, &a);
    addr = Bytes(a);
    family = AF_INET;
  }
  return Attr(0,
              Attr(WGALLOWEDIP_A_FAMILY, Bytes(family)) + Attr(WGALLOWEDIP_A_IPADDR, addr) +
                  Attr(WGALLOWEDIP_A_CIDR_MASK, std::string(1, static_cast<char>(mask))),
              true);
}

std::string Endpoint4(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return Attr(WGPEER_A_ENDPOINT, Bytes(a));
}

std::string Endpoint6(const char* ip, uint16_t port) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  inet_pton(AF_INET6, ip, &a.sin6_addr);
  return Attr(WGPEER_A_ENDPOINT, Bytes(a));
}

std::string Peer(size_t index, const std::string& attrs) {
  return Attr(static_cast<uint16_t>(index), attrs, true);
}

std::string Device(const std::string& peers) {
  return Message(kFamily,
                 Genl(WG_CMD_GET_DEVICE, Attr(WGDEVICE_A_IFINDEX, Bytes(uint32_t{7})) +
                                             Attr(WGDEVICE_A_IFNAME, std::string("wg0\0", 4)) +
                                             Attr(WGDEVICE_A_PUBLIC_KEY, Key('\x01')) +
                                             Attr(WGDEVICE_A_LISTEN_PORT, Bytes(uint16_t{51820})) +
                                             Attr(WGDEVICE_A_PEERS, peers, true)));
}

// Two peers; the second's allowed IPs continue in a second message, as the kernel splits a dump
// that does not fit one message.
std::string TwoPeerDump() {
  const std::string peer1 = Peer(
      0, Attr(WGPEER_A_PUBLIC_KEY, Key('\xab')) + Endpoint4("198.51.100.1", 51820) +
             Attr(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, Bytes(uint16_t{25})) +
             Attr(WGPEER_A_RX_BYTES, Bytes(uint64_t{1234})) +
             Attr(WGPEER_A_ALLOWEDIPS,
                  AllowedIp("10.4.0.2", 32) + AllowedIp("10.42.2.0", 24) + AllowedIp("0.0.0.0", 0),
                  true));
  const std::string peer2a =
      Peer(1, Attr(WGPEER_A_PUBLIC_KEY, Key('\x02')) + Endpoint6("2001:db8::2", 51821) +
                  Attr(WGPEER_A_ALLOWEDIPS, AllowedIp("10.4.0.3", 32), true));
  const std::string peer2b =
      Peer(0, Attr(WGPEER_A_PUBLIC_KEY, Key('\x02')) +
                  Attr(WGPEER_A_ALLOWEDIPS, AllowedIp("fd00:4::3", 128), true));
  return Device(peer1 + peer2a) + Device(peer2b) + Done();
}

IpPrefix P(const char* t) { return *IpPrefix::Parse(t); }

std::string Repeat(const std::string& s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

TEST(WireGuardNetlink, ParsesADumpSplitAcrossMessages) {
  const NetlinkDeviceParse r = ParseWgGetDevice(TwoPeerDump(), kFamily);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.ifname, "wg0");
  ASSERT_EQ(r.peers.size(), 2u);
  EXPECT_EQ(r.peers[0].public_key, Repeat("ab", 32));
  EXPECT_EQ(r.peers[0].endpoint, "198.51.100.1:51820");
  EXPECT_EQ(r.peers[0].allowed_ips,
            (std::vector<IpPrefix>{P("10.4.0.2/32"), P("10.42.2.0/24"), P("0.0.0.0/0")}));
  EXPECT_EQ(r.peers[1].public_key, Repeat("02", 32));
  EXPECT_EQ(r.peers[1].endpoint, "[2001:db8::2]:51821");
  EXPECT_EQ(r.peers[1].allowed_ips, (std::vector<IpPrefix>{P("10.4.0.3/32"), P("fd00:4::3/128")}));
  // As nodes: host addresses first, the pod subnet kept, the default route never.
  const auto nodes = NodesFromPeers(r.peers);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].addresses, (std::vector<IpPrefix>{P("10.4.0.2/32"), P("10.42.2.0/24")}));
  EXPECT_EQ(nodes[1].addresses, (std::vector<IpPrefix>{P("10.4.0.3/32"), P("fd00:4::3/128")}));
}

TEST(WireGuardNetlink, BadAnswersAreErrorsWithNoPeers) {
  const std::string good = TwoPeerDump();
  // Cut anywhere: never a partial peer set.
  for (size_t cut = 1; cut < good.size(); cut += 7) {
    const NetlinkDeviceParse r = ParseWgGetDevice(good.substr(0, good.size() - cut), kFamily);
    EXPECT_FALSE(r.ok) << "cut " << cut;
    EXPECT_TRUE(r.peers.empty());
    EXPECT_FALSE(r.error.empty());
  }
  EXPECT_NE(ParseWgGetDevice(good.substr(0, good.size() - Done().size()), kFamily)
                .error.find("before NLMSG_DONE"),
            std::string::npos);
  // Another family's message.
  EXPECT_NE(ParseWgGetDevice(good, kFamily + 1).error.find("not the wireguard family"),
            std::string::npos);
  // A /33.
  NetlinkDeviceParse r = ParseWgGetDevice(
      Device(Peer(0, Attr(WGPEER_A_PUBLIC_KEY, Key('\x05')) +
                         Attr(WGPEER_A_ALLOWEDIPS, AllowedIp("10.4.0.9", 33), true))) +
          Done(),
      kFamily);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "message 1: peer 1: allowed IP 1: cidr mask /33 for 10.4.0.9");
  // A short key.
  r = ParseWgGetDevice(Device(Peer(0, Attr(WGPEER_A_PUBLIC_KEY, "short"))) + Done(), kFamily);
  EXPECT_EQ(r.error, "message 1: peer 1: public key of 5 bytes");
  // An attribute longer than its container.
  std::string bad = Device(Peer(0, Attr(WGPEER_A_PUBLIC_KEY, Key('\x05')))) + Done();
  bad[sizeof(nlmsghdr) + sizeof(genlmsghdr)] = '\x7f';  // the first attribute's length
  EXPECT_NE(ParseWgGetDevice(bad, kFamily).error.find("beyond its container"), std::string::npos);
  // The kernel's refusal: no such device, not a WireGuard device.
  r = ParseWgGetDevice(Error(ENODEV), kFamily);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.kernel_errno, ENODEV);
  EXPECT_EQ(ParseWgGetDevice(Error(EOPNOTSUPP), kFamily).kernel_errno, EOPNOTSUPP);
}

TEST(WireGuardNetlink, FamilyLookup) {
  const std::string reply =
      Message(GENL_ID_CTRL,
              Genl(CTRL_CMD_NEWFAMILY, Attr(CTRL_ATTR_FAMILY_NAME, std::string("wireguard\0", 10)) +
                                           Attr(CTRL_ATTR_FAMILY_ID, Bytes(uint16_t{kFamily})) +
                                           Attr(CTRL_ATTR_VERSION, Bytes(uint32_t{1}))));
  NetlinkFamilyParse f = ParseGenlFamily(reply);
  ASSERT_TRUE(f.ok) << f.error;
  EXPECT_EQ(f.id, kFamily);
  f = ParseGenlFamily(Error(ENOENT));
  EXPECT_FALSE(f.ok);
  EXPECT_EQ(f.kernel_errno, ENOENT);
  EXPECT_FALSE(ParseGenlFamily(reply.substr(0, 10)).ok);
}

TEST(WireGuardNetlink, RequestsFollowTheLayout) {
  const std::string get = WgGetDeviceRequest(kFamily, "wg0", 9);
  nlmsghdr h;
  std::memcpy(&h, get.data(), sizeof h);
  EXPECT_EQ(h.nlmsg_len, get.size());
  EXPECT_EQ(h.nlmsg_type, kFamily);
  EXPECT_EQ(h.nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP);
  EXPECT_EQ(h.nlmsg_seq, 9u);
  genlmsghdr g;
  std::memcpy(&g, get.data() + sizeof h, sizeof g);
  EXPECT_EQ(g.cmd, WG_CMD_GET_DEVICE);
  EXPECT_EQ(g.version, WG_GENL_VERSION);
  nlattr a;
  std::memcpy(&a, get.data() + sizeof h + sizeof g, sizeof a);
  EXPECT_EQ(a.nla_type, WGDEVICE_A_IFNAME);
  EXPECT_EQ(a.nla_len, sizeof a + 4);  // "wg0" and its NUL
  EXPECT_EQ(std::string(get.data() + sizeof h + sizeof g + sizeof a), "wg0");
  const std::string family = GenlGetFamilyRequest("wireguard", 1);
  std::memcpy(&h, family.data(), sizeof h);
  EXPECT_EQ(h.nlmsg_type, GENL_ID_CTRL);
  EXPECT_EQ(family.size() % 4, 0u);
}

// This machine's kernel, whatever it has: a clear error for an interface that is not a kernel
// WireGuard device (or, without the module, for the missing family), never a crash or a hang.
TEST(WireGuardNetlink, LiveKernelGivesAClearError) {
  const PollResult r = QueryKernelWireGuard("lo");
  ASSERT_FALSE(r.nodes);
  const bool no_family =
      r.error.find("no \"wireguard\" generic netlink family") != std::string::npos;
  const bool not_wg = r.error.find("not a kernel WireGuard interface") != std::string::npos;
  const bool not_root = r.error.find("needs CAP_NET_ADMIN") != std::string::npos;
  EXPECT_TRUE(no_family || not_wg || not_root) << r.error;
}

}  // namespace
}  // namespace meshflow::discovery
