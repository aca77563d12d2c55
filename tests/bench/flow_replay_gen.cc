// Writes a header-only (snaplen 128) Ethernet pcap in the reference cluster's traffic mix, for
// the offline throughput benchmark (tests/bench/flow_replay.sh):
//   flow_replay_gen OUT.pcap PACKETS [--churn]
// Deterministic (fixed-seed generator). The mix follows the reference cluster: K3s API from
// every worker to the control plane, public HTTP(S) through the ingress, Redis and PostgreSQL
// from the analytics API, Prometheus scrapes, the CLI relay, DNS, ICMP, Tailscale and WireGuard
// underlay packets, flannel VXLAN pod traffic, some IPv6. TCP comes in connections (handshake,
// data both ways, close; about 1 % connection attempts; see Connection). --churn instead sends
// every TCP segment from a random tuple, the worst case for a connection table. Also writes the
// matching node table as a meshflow config next to the capture.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr uint32_t kSnaplen = 128;

struct Rng {
  uint64_t state = 0x9e3779b97f4a7c15ull;
  uint32_t Next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return static_cast<uint32_t>(state >> 11);
  }
  uint32_t Below(uint32_t n) { return Next() % n; }
};

struct Node {
  const char* name;
  uint8_t overlay[4];  // 100.64.0.0/10 (Tailscale)
  uint8_t lan[4];      // 192.168.20.0/24
  uint8_t pods[3];     // 10.42.N.0/24
};

constexpr Node kNodes[] = {
    {"ct-serv-jp", {100, 64, 0, 1}, {192, 168, 20, 221}, {10, 42, 0}},
    {"gce-agent-tw", {100, 64, 0, 3}, {192, 168, 20, 224}, {10, 42, 2}},
    {"acer-agent", {100, 64, 0, 2}, {192, 168, 20, 222}, {10, 42, 1}},
    {"laptop-agent", {100, 64, 0, 4}, {192, 168, 20, 223}, {10, 42, 3}},
    {"desktop-agent", {100, 64, 0, 5}, {192, 168, 20, 16}, {10, 42, 4}},
};
enum { kCt, kGce, kAcer, kLaptop, kDesktop, kNodeCount };

enum class Addr { kOverlay, kPod, kExternal, kOverlayV6 };

// One kind of traffic: who talks to whom on which port, how often, how big.
struct Kind {
  const char* what;
  int weight;  // relative packet share
  uint8_t protocol;
  uint16_t server_port;
  int client;  // node index, -1: any worker, -2: external
  int server;  // node index, -1: any node
  Addr addressing;
  bool vxlan;                     // pod traffic inside flannel VXLAN on the LAN
  uint16_t small, medium, large;  // IP payload sizes, chosen 4:3:3
};

constexpr Kind kKinds[] = {
    {"k8s-api", 22, 6, 6443, -1, kCt, Addr::kOverlay, false, 0, 300, 1400},
    {"https-ingress", 12, 6, 443, -2, kGce, Addr::kExternal, false, 0, 500, 1400},
    {"http-to-acer", 6, 6, 80, kGce, kAcer, Addr::kOverlay, false, 0, 400, 1400},
    {"redis-local", 14, 6, 6379, kAcer, kAcer, Addr::kPod, true, 0, 60, 600},
    {"postgresql", 12, 6, 5432, kAcer, kCt, Addr::kOverlay, false, 0, 200, 1400},
    {"prometheus-scrape", 8, 6, 9100, kCt, -1, Addr::kOverlay, false, 0, 200, 1400},
    {"cli-relay", 3, 6, 8000, kAcer, kAcer, Addr::kPod, true, 0, 300, 1000},
    {"dns", 4, 17, 53, -1, kCt, Addr::kPod, true, 40, 60, 120},
    {"icmp", 1, 1, 0, kCt, -1, Addr::kOverlay, false, 64, 64, 64},
    {"tailscale-underlay", 8, 17, 41641, -1, kCt, Addr::kOverlay, false, 80, 600, 1280},
    {"etcd-peer-v6", 6, 6, 2380, kCt, -1, Addr::kOverlayV6, false, 0, 300, 1300},
    {"kubelet", 4, 6, 10250, kCt, -1, Addr::kPod, true, 0, 300, 1300},
};

struct TcpFields {
  uint8_t flags = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint32_t ts_val = 0;
  uint32_t ts_ecr = 0;
};

void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Put32(uint8_t* p, uint32_t v) {
  Put16(p, static_cast<uint16_t>(v >> 16));
  Put16(p + 2, static_cast<uint16_t>(v));
}

size_t Ethernet(uint8_t* p, uint16_t type) {
  const uint8_t macs[12] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
  std::memcpy(p, macs, 12);
  Put16(p + 12, type);
  return 14;
}

size_t Ipv4(uint8_t* p, const uint8_t src[4], const uint8_t dst[4], uint8_t protocol,
            uint32_t payload, uint16_t id) {
  std::memset(p, 0, 20);
  p[0] = 0x45;
  Put16(p + 2, static_cast<uint16_t>(20 + payload));
  Put16(p + 4, id);
  p[8] = 64;
  p[9] = protocol;
  std::memcpy(p + 12, src, 4);
  std::memcpy(p + 16, dst, 4);
  return 20;
}

size_t Ipv6(uint8_t* p, uint8_t src_last, uint8_t dst_last, uint8_t next, uint32_t payload) {
  static const uint8_t prefix[14] = {0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0};
  std::memset(p, 0, 40);
  p[0] = 0x60;
  Put16(p + 4, static_cast<uint16_t>(payload));
  p[6] = next;
  p[7] = 64;
  std::memcpy(p + 8, prefix, 14);
  p[23] = src_last;
  std::memcpy(p + 24, prefix, 14);
  p[39] = dst_last;
  return 40;
}

size_t L4(uint8_t* p, uint8_t protocol, uint16_t sport, uint16_t dport, const TcpFields& tcp,
          uint32_t payload) {
  if (protocol == 6) {
    std::memset(p, 0, 32);
    Put16(p, sport);
    Put16(p + 2, dport);
    Put32(p + 4, tcp.seq);
    Put32(p + 8, tcp.ack);
    p[12] = 8 << 4;  // 32 bytes: timestamps, as Linux sends
    p[13] = tcp.flags;
    Put16(p + 14, 502);
    p[20] = 1, p[21] = 1, p[22] = 8, p[23] = 10;
    Put32(p + 24, tcp.ts_val);
    Put32(p + 28, tcp.ts_ecr);
    return 32;
  }
  if (protocol == 17) {
    std::memset(p, 0, 8);
    Put16(p, sport);
    Put16(p + 2, dport);
    Put16(p + 4, static_cast<uint16_t>(8 + payload));
    return 8;
  }
  std::memset(p, 0, 8);
  p[0] = 8;  // echo request
  return 8;
}

// A node's address for one kind of traffic: an external browser, a pod or the node's overlay.
void Address(const Kind& kind, int node, Rng& rng, uint8_t* a) {
  if (node == -2) {
    const uint32_t x = 0xcb007100u + rng.Below(200);  // 203.0.113.0/24 browsers
    a[0] = static_cast<uint8_t>(x >> 24), a[1] = static_cast<uint8_t>(x >> 16);
    a[2] = static_cast<uint8_t>(x >> 8), a[3] = static_cast<uint8_t>(x);
  } else if (kind.addressing == Addr::kPod) {
    std::memcpy(a, kNodes[node].pods, 3);
    a[3] = static_cast<uint8_t>(2 + rng.Below(30));
  } else {
    std::memcpy(a, kNodes[node].overlay, 4);
  }
}

// -1: any worker; anything else (a node, or -2 for an external browser) as it stands.
int PickClient(const Kind& kind, Rng& rng) {
  return kind.client == -1 ? kGce + static_cast<int>(rng.Below(4)) : kind.client;
}
int PickServer(const Kind& kind, Rng& rng) {
  return kind.server == -1 ? static_cast<int>(rng.Below(kNodeCount)) : kind.server;
}

uint32_t PickPayload(const Kind& kind, Rng& rng) {
  const uint32_t size_pick = rng.Below(10);
  return size_pick < 4 ? kind.small : size_pick < 7 ? kind.medium : kind.large;
}

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kPsh = 0x08, kAck = 0x10;

// One TCP connection from its SYN to the ACK of the second FIN, numbered as a kernel would:
// sequence numbers from random ISNs, acknowledgements, and TSval/TSecr that echo each other.
// Connections are what passive TCP tracking pays for, so the mix has real ones: each lives
// about 100 segments (hence about 1 % SYNs), and 0.5 % of data segments are sent again.
struct Connection {
  enum Stage { kSyn, kSynAck, kHandshakeAck, kData, kClientFin, kServerFin, kLastAck };
  bool live = false;
  Stage stage = kSyn;
  int client = 0;  // node index; -2: an external browser
  int server = 0;
  uint8_t address[2][4] = {};  // [0] client, [1] server
  uint16_t client_port = 0;
  uint16_t vxlan_port = 0;  // flannel's outer source port for this flow
  int data_left = 0;        // data and ACK segments before the close
  uint32_t next_seq[2] = {};
  uint32_t last_seq[2] = {};  // of the latest data segment, for a retransmission
  uint32_t last_length[2] = {};
  uint32_t ts_offset[2] = {};  // each side's TSval clock starts anywhere
  uint32_t ts_val[2] = {};     // the latest TSval each side sent
};

void Open(Connection& c, const Kind& kind, Rng& rng, uint16_t client_ports) {
  c = Connection{};
  c.live = true;
  c.client = PickClient(kind, rng);
  c.server = PickServer(kind, rng);
  Address(kind, c.client, rng, c.address[0]);
  Address(kind, c.server, rng, c.address[1]);
  c.client_port = static_cast<uint16_t>(32768 + rng.Below(client_ports));
  c.vxlan_port = static_cast<uint16_t>(40000 + rng.Below(1000));
  c.data_left = 1 + static_cast<int>(rng.Below(200));
  for (int side = 0; side < 2; ++side) {
    c.next_seq[side] = rng.Next() ^ (rng.Next() << 21);
    c.ts_offset[side] = rng.Next();
  }
}

// The connection's next segment; `side` 0 is the client sending, 1 the server.
TcpFields NextSegment(Connection& c, const Kind& kind, Rng& rng, uint64_t ts_us, int& side,
                      uint32_t& payload) {
  TcpFields tcp;
  payload = 0;
  bool retransmission = false;
  // Who sends each stage's segment and with which flags; data segments are drawn below.
  constexpr struct {
    int side;
    uint8_t flags;
  } kStages[] = {{0, kSyn},        {1, kSyn | kAck}, {0, kAck}, {0, 0},
                 {0, kFin | kAck}, {1, kFin | kAck}, {0, kAck}};
  side = kStages[c.stage].side;
  tcp.flags = kStages[c.stage].flags;
  if (c.stage == Connection::kData) {
    // About 40 % of segments go client -> server; replies carry the bigger payloads.
    side = rng.Below(10) < 4 ? 0 : 1;
    payload = PickPayload(kind, rng);
    retransmission = c.last_length[side] > 0 && rng.Below(200) == 0;
    if (retransmission) payload = c.last_length[side];
    tcp.flags = payload > 0 ? kAck | kPsh : kAck;
  }
  tcp.seq = retransmission ? c.last_seq[side] : c.next_seq[side];
  if (!retransmission) {
    if (payload > 0) c.last_seq[side] = tcp.seq, c.last_length[side] = payload;
    c.next_seq[side] += payload + ((tcp.flags & (kSyn | kFin)) != 0 ? 1 : 0);
  }
  const bool acks = (tcp.flags & kAck) != 0;
  tcp.ack = acks ? c.next_seq[side ^ 1] : 0;
  c.ts_val[side] = static_cast<uint32_t>(ts_us / 1000) + c.ts_offset[side];
  tcp.ts_val = c.ts_val[side];
  tcp.ts_ecr = acks ? c.ts_val[side ^ 1] : 0;
  switch (c.stage) {
    case Connection::kData:
      if (--c.data_left <= 0) c.stage = Connection::kClientFin;
      break;
    case Connection::kLastAck:
      c.live = false;
      break;
    default:
      c.stage = static_cast<Connection::Stage>(c.stage + 1);
  }
  return tcp;
}

}  // namespace

int main(int argc, char** argv) {
  const bool churn = argc == 4 && std::strcmp(argv[3], "--churn") == 0;
  if (argc != 3 && !churn) {
    std::fprintf(stderr, "usage: %s OUT.pcap PACKETS [--churn]\n", argv[0]);
    return 2;
  }
  const std::string out_path = argv[1];
  const long long packets = std::atoll(argv[2]);
  FILE* out = std::fopen(out_path.c_str(), "wb");
  if (out == nullptr || packets <= 0) {
    std::perror(out_path.c_str());
    return 1;
  }
  std::vector<char> buffer(1 << 22);
  std::setvbuf(out, buffer.data(), _IOFBF, buffer.size());
  const uint32_t header[6] = {0xa1b2c3d4, 2 | (4u << 16), 0, 0, kSnaplen, 1};
  std::fwrite(header, sizeof header, 1, out);

  int total_weight = 0;
  for (const auto& k : kKinds) total_weight += k.weight;
  // The live connections of each TCP kind, in proportion to its share of packets: about 3,500
  // at a time, as on a busy control-plane node, each picked at random for the next segment.
  constexpr int kConnectionsPerWeight = 40;
  std::vector<std::vector<Connection>> live(std::size(kKinds));
  for (size_t k = 0; k < std::size(kKinds); ++k) {
    if (kKinds[k].protocol == 6) {
      live[k].resize(static_cast<size_t>(kKinds[k].weight) * kConnectionsPerWeight);
    }
  }
  Rng rng;
  uint8_t frame[512];
  uint64_t ts_us = 1'700'000'000ull * 1'000'000;
  for (long long n = 0; n < packets; ++n) {
    ts_us += 1 + rng.Below(3);
    int pick = static_cast<int>(rng.Below(static_cast<uint32_t>(total_weight)));
    const Kind* kind = kKinds;
    while (pick >= kind->weight) pick -= (kind++)->weight;

    int client = 0, server = 0;
    bool to_server = false;
    uint8_t client_address[4], server_address[4];
    uint16_t client_port = 0, vxlan_port = 0;
    uint32_t payload = 0;
    TcpFields tcp;
    if (kind->protocol == 6) {
      // --churn: every segment from a connection of its own among about 170,000 tuples, 1 % of
      // them SYN or SYN/ACK: a connection table under a scan or a SYN flood, the worst case.
      Connection one_off;
      std::vector<Connection>& pool = live[static_cast<size_t>(kind - kKinds)];
      Connection& c = churn ? one_off : pool[rng.Below(static_cast<uint32_t>(pool.size()))];
      if (churn) {
        Open(c, *kind, rng, 64);
        c.stage = rng.Below(100) != 0 ? Connection::kData
                  : rng.Below(10) < 4 ? Connection::kSyn
                                      : Connection::kSynAck;
      } else if (!c.live) {
        Open(c, *kind, rng, 28232);
      }
      int side = 0;
      tcp = NextSegment(c, *kind, rng, ts_us, side, payload);
      to_server = side == 0;
      client = c.client, server = c.server;
      std::memcpy(client_address, c.address[0], 4);
      std::memcpy(server_address, c.address[1], 4);
      client_port = c.client_port, vxlan_port = c.vxlan_port;
    } else {
      client = PickClient(*kind, rng);
      server = PickServer(*kind, rng);
      to_server = rng.Below(10) < 4;
      client_port = static_cast<uint16_t>(32768 + rng.Below(64));
      vxlan_port = static_cast<uint16_t>(40000 + rng.Below(1000));
      payload = PickPayload(*kind, rng);
      Address(*kind, client, rng, client_address);
      Address(*kind, server, rng, server_address);
    }
    const uint8_t* src = to_server ? client_address : server_address;
    const uint8_t* dst = to_server ? server_address : client_address;
    const uint16_t sport = to_server ? client_port : kind->server_port;
    const uint16_t dport = to_server ? kind->server_port : client_port;

    size_t len = 0;
    uint32_t wire = 0;
    const uint32_t l4_header = kind->protocol == 6 ? 32 : 8;
    if (kind->addressing == Addr::kOverlayV6) {
      len += Ethernet(frame, 0x86dd);
      const uint8_t a = static_cast<uint8_t>(1 + (to_server ? client : server));
      const uint8_t b = static_cast<uint8_t>(1 + (to_server ? server : client));
      len += Ipv6(frame + len, a, b, kind->protocol, l4_header + payload);
      wire = static_cast<uint32_t>(len) + l4_header + payload;
    } else if (kind->vxlan && client >= 0) {
      // Pod to pod across (or within) nodes: flannel wraps it in VXLAN on the LAN.
      const uint32_t inner = 20 + l4_header + payload;
      len += Ethernet(frame, 0x0800);
      len += Ipv4(frame + len, kNodes[to_server ? client : server].lan,
                  kNodes[to_server ? server : client].lan, 17, 8 + 8 + 14 + inner,
                  static_cast<uint16_t>(n));
      len += L4(frame + len, 17, vxlan_port, 8472, TcpFields{}, 8 + 14 + inner);
      frame[len] = 0x08, frame[len + 1] = 0, frame[len + 2] = 0, frame[len + 3] = 0;
      frame[len + 4] = 0, frame[len + 5] = 0, frame[len + 6] = 1, frame[len + 7] = 0;
      len += 8;
      len += Ethernet(frame + len, 0x0800);
      len += Ipv4(frame + len, src, dst, kind->protocol, l4_header + payload,
                  static_cast<uint16_t>(n));
      wire = static_cast<uint32_t>(len) + l4_header + payload;
    } else {
      len += Ethernet(frame, 0x0800);
      len += Ipv4(frame + len, src, dst, kind->protocol, l4_header + payload,
                  static_cast<uint16_t>(n));
      wire = static_cast<uint32_t>(len) + l4_header + payload;
    }
    len += L4(frame + len, kind->protocol, sport, dport, tcp, payload);
    if (len < kSnaplen) std::memset(frame + len, 0, kSnaplen - len);
    const uint32_t caplen = wire < kSnaplen ? wire : kSnaplen;
    const uint32_t record[4] = {static_cast<uint32_t>(ts_us / 1'000'000),
                                static_cast<uint32_t>(ts_us % 1'000'000), caplen, wire};
    std::fwrite(record, sizeof record, 1, out);
    std::fwrite(frame, caplen, 1, out);
  }
  if (std::fclose(out) != 0) {
    std::perror(out_path.c_str());
    return 1;
  }

  const std::string config_path = out_path + ".yaml";
  FILE* config = std::fopen(config_path.c_str(), "w");
  if (config == nullptr) {
    std::perror(config_path.c_str());
    return 1;
  }
  std::fprintf(config, "node_name: ct-serv-jp\nnodes:\n");
  for (int i = 0; i < kNodeCount; ++i) {
    const Node& node = kNodes[i];
    std::fprintf(config,
                 "  - name: %s\n    addresses: [%d.%d.%d.%d, %d.%d.%d.%d, %d.%d.%d.0/24, "
                 "\"fd7a:115c:a1e0::%x\"]\n",
                 node.name, node.overlay[0], node.overlay[1], node.overlay[2], node.overlay[3],
                 node.lan[0], node.lan[1], node.lan[2], node.lan[3], node.pods[0], node.pods[1],
                 node.pods[2], i + 1);
  }
  std::fclose(config);
  return 0;
}
