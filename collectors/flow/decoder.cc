#include "collectors/flow/decoder.h"

#include <algorithm>

namespace meshflow::flow {
namespace {

// DLT_* values spelled out: <pcap/dlt.h> differs by platform for DLT_RAW (12 or 14), and
// savefiles carry LINKTYPE_RAW (101), which libpcap maps back on most but not all builds.
constexpr int kDltNull = 0;
constexpr int kDltEn10mb = 1;
constexpr int kDltRaw12 = 12;
constexpr int kDltRaw14 = 14;
constexpr int kLinktypeRaw = 101;
constexpr int kDltLoop = 108;
constexpr int kDltLinuxSll = 113;
constexpr int kDltIpv4 = 228;
constexpr int kDltIpv6 = 229;
constexpr int kDltLinuxSll2 = 276;

constexpr uint16_t kEthertypeIpv4 = 0x0800;
constexpr uint16_t kEthertypeIpv6 = 0x86dd;
constexpr uint16_t kEthertypeVlan = 0x8100;
constexpr uint16_t kEthertypeQinq = 0x88a8;
constexpr uint16_t kEthertypeQinqOld = 0x9100;
constexpr int kMaxVlanTags = 3;

constexpr int kMaxExtensionHeaders = 8;
constexpr uint32_t kVxlanHeaderBytes = 8;
constexpr uint32_t kUdpHeaderBytes = 8;
constexpr uint32_t kEthernetHeaderBytes = 14;

inline uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | static_cast<uint32_t>(p[3]);
}
inline uint32_t Le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[3]) << 24 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[0]);
}

// How the decoder treats each IP protocol number: one table lookup instead of a chain.
enum class ProtoKind : uint8_t {
  kOther,  // decoded no further, counted by addresses with role "other"
  kTcp,
  kUdp,
  kIcmp,
  kExtension,       // IPv6 option-style header: next header, length in 8-octet units - 1
  kAuthentication,  // AH: length in 4-octet units - 2
  kFragment,        // IPv6 fragment header, fixed 8 bytes
};

constexpr std::array<ProtoKind, 256> MakeProtoKinds() {
  std::array<ProtoKind, 256> kinds{};
  kinds[6] = ProtoKind::kTcp;
  kinds[17] = ProtoKind::kUdp;
  kinds[1] = ProtoKind::kIcmp;
  kinds[58] = ProtoKind::kIcmp;
  kinds[0] = ProtoKind::kExtension;    // hop-by-hop options
  kinds[43] = ProtoKind::kExtension;   // routing
  kinds[60] = ProtoKind::kExtension;   // destination options
  kinds[135] = ProtoKind::kExtension;  // mobility
  kinds[139] = ProtoKind::kExtension;  // HIP
  kinds[140] = ProtoKind::kExtension;  // shim6
  kinds[51] = ProtoKind::kAuthentication;
  kinds[44] = ProtoKind::kFragment;
  return kinds;
}
constexpr std::array<ProtoKind, 256> kProtoKinds = MakeProtoKinds();

// A VXLAN payload is decoded once; a VXLAN packet inside it is counted as plain UDP.
enum class Depth : uint8_t { kOuter, kInner };

DecodeStatus DecodeEthertype(const Decoder& d, uint16_t ethertype, const uint8_t* p,
                             uint32_t captured, uint32_t wire, PacketInfo& out, Depth depth);
DecodeStatus DecodeEthernetFrame(const Decoder& d, const uint8_t* p, uint32_t captured,
                                 uint32_t wire, PacketInfo& out, Depth depth);

DecodeStatus DecodeTcpOptions(const uint8_t* p, uint32_t end, PacketInfo& out) {
  uint32_t i = 20;
  while (i < end) {
    const uint8_t kind = p[i];
    if (kind == 0) break;  // end of option list
    if (kind == 1) {       // no-op padding
      ++i;
      continue;
    }
    if (i + 1 >= end) break;
    const uint8_t len = p[i + 1];
    if (len < 2 || i + len > end) break;  // a bad option list ends option parsing, no more
    if (kind == 8 && len == 10) {
      out.ts_val = Be32(p + i + 2);
      out.ts_ecr = Be32(p + i + 6);
      out.has_tcp_timestamp = true;
    }
    i += len;
  }
  return DecodeStatus::kOk;
}

DecodeStatus DecodeVxlan(const Decoder& d, const uint8_t* p, uint32_t captured, uint32_t l4_length,
                         PacketInfo& out) {
  constexpr uint32_t kNeeded = kUdpHeaderBytes + kVxlanHeaderBytes + kEthernetHeaderBytes;
  if (l4_length < kNeeded) return DecodeStatus::kOk;  // too short to be VXLAN: plain UDP
  if (captured < kNeeded) return DecodeStatus::kTruncatedEncapsulation;
  // The I flag says a VNI is present; without it this is some other protocol on the port.
  if ((p[kUdpHeaderBytes] & 0x08) == 0) return DecodeStatus::kOk;
  const uint32_t outer_bytes = out.ip_bytes;
  constexpr uint32_t kSkip = kUdpHeaderBytes + kVxlanHeaderBytes;
  out = PacketInfo{};
  const DecodeStatus status =
      DecodeEthernetFrame(d, p + kSkip, captured - kSkip, l4_length - kSkip, out, Depth::kInner);
  if (status == DecodeStatus::kOk) {
    out.encap = Encap::kVxlan;
    out.encap_overhead_bytes = outer_bytes - out.ip_bytes;
  }
  return status;
}

// `captured` is what is readable at p, `l4_length` what the IP header says the L4 part holds.
DecodeStatus DecodeL4(const Decoder& d, uint8_t protocol, const uint8_t* p, uint32_t captured,
                      uint32_t l4_length, PacketInfo& out, Depth depth) {
  out.l4_protocol = protocol;
  switch (kProtoKinds[protocol]) {
    case ProtoKind::kTcp: {
      if (l4_length < 20 || captured < 4) return DecodeStatus::kTruncatedL4;
      out.src_port = Be16(p);
      out.dst_port = Be16(p + 2);
      out.has_ports = true;
      // Snaplen may cut the header after the ports: the packet still counts, flags unknown.
      if (captured < 20) return DecodeStatus::kOk;
      const uint32_t header = static_cast<uint32_t>(p[12] >> 4) * 4;
      if (header < 20 || header > l4_length) return DecodeStatus::kBadTcpHeaderLength;
      out.tcp_seq = Be32(p + 4);
      out.tcp_ack = Be32(p + 8);
      out.tcp_flags = p[13];
      out.tcp_window = Be16(p + 14);
      out.tcp_payload_bytes = l4_length - header;
      out.has_tcp_header = true;
      return DecodeTcpOptions(p, std::min(header, captured), out);
    }
    case ProtoKind::kUdp:
      if (l4_length < kUdpHeaderBytes || captured < 4) return DecodeStatus::kTruncatedL4;
      out.src_port = Be16(p);
      out.dst_port = Be16(p + 2);
      out.has_ports = true;
      if (depth == Depth::kOuter && !out.is_fragment && d.IsVxlanPort(out.dst_port)) {
        return DecodeVxlan(d, p, captured, l4_length, out);
      }
      return DecodeStatus::kOk;
    case ProtoKind::kIcmp:
      if (l4_length < 1 || captured < 1) return DecodeStatus::kTruncatedL4;
      out.icmp_type = p[0];
      return DecodeStatus::kOk;
    default:
      return DecodeStatus::kOk;
  }
}

DecodeStatus DecodeIpv4(const Decoder& d, const uint8_t* p, uint32_t captured, uint32_t wire,
                        PacketInfo& out, Depth depth) {
  if (captured < 20) return DecodeStatus::kTruncatedIpHeader;
  if ((p[0] >> 4) != 4) return DecodeStatus::kBadIpVersion;
  const uint32_t header = static_cast<uint32_t>(p[0] & 0x0f) * 4;
  if (header < 20) return DecodeStatus::kBadIpHeaderLength;
  if (header > captured) return DecodeStatus::kTruncatedIpHeader;
  uint32_t total = Be16(p + 2);
  if (total == 0) {
    // GSO/GRO super-packets and BIG TCP leave the 16-bit field zero; the wire length is true.
    total = wire;
    if (total < header) return DecodeStatus::kBadIpLength;
  } else if (total < header || total > wire) {
    return DecodeStatus::kBadIpLength;
  }
  out.ip_version = 4;
  out.src = IpAddress::FromV4Bytes(p + 12);
  out.dst = IpAddress::FromV4Bytes(p + 16);
  out.ip_bytes = total;
  const uint8_t protocol = p[9];
  const uint16_t fragment = Be16(p + 6);
  const uint32_t offset = static_cast<uint32_t>(fragment & 0x1fff) * 8;
  if ((fragment & 0x2000) != 0 || offset != 0) {
    out.is_fragment = true;
    out.more_fragments = (fragment & 0x2000) != 0;
    out.fragment_id = Be16(p + 4);
    out.fragment_offset = offset;
    if (offset != 0) {
      out.l4_protocol = protocol;
      return DecodeStatus::kOk;
    }
  }
  return DecodeL4(d, protocol, p + header, std::min(captured, total) - header, total - header, out,
                  depth);
}

DecodeStatus DecodeIpv6(const Decoder& d, const uint8_t* p, uint32_t captured, uint32_t wire,
                        PacketInfo& out, Depth depth) {
  if (captured < 40) return DecodeStatus::kTruncatedIpHeader;
  if ((p[0] >> 4) != 6) return DecodeStatus::kBadIpVersion;
  const uint32_t payload = Be16(p + 4);
  uint32_t total = payload + 40;
  if (payload == 0) {
    // Jumbograms and BIG TCP carry a zero payload length; the wire length is true.
    total = wire;
    if (total < 40) return DecodeStatus::kBadIpLength;
  } else if (total > wire) {
    return DecodeStatus::kBadIpLength;
  }
  out.ip_version = 6;
  out.src = IpAddress::FromV6Bytes(p + 8);
  out.dst = IpAddress::FromV6Bytes(p + 24);
  out.ip_bytes = total;
  const uint32_t readable = std::min(captured, total);
  uint8_t next = p[6];
  uint32_t offset = 40;
  for (int n = 0;; ++n) {
    const ProtoKind kind = kProtoKinds[next];
    if (kind != ProtoKind::kExtension && kind != ProtoKind::kAuthentication &&
        kind != ProtoKind::kFragment) {
      break;
    }
    if (n == kMaxExtensionHeaders) return DecodeStatus::kTooManyExtensionHeaders;
    const uint32_t fixed = kind == ProtoKind::kFragment ? 8 : 2;
    if (offset + fixed > total) return DecodeStatus::kBadIpLength;
    if (offset + fixed > readable) return DecodeStatus::kTruncatedExtensionHeader;
    const uint8_t* h = p + offset;
    uint32_t length = 8;
    if (kind == ProtoKind::kExtension) length = (static_cast<uint32_t>(h[1]) + 1) * 8;
    if (kind == ProtoKind::kAuthentication) length = (static_cast<uint32_t>(h[1]) + 2) * 4;
    if (offset + length > total) return DecodeStatus::kBadIpLength;
    next = h[0];
    offset += length;
    if (kind == ProtoKind::kFragment) {
      const uint16_t field = Be16(h + 2);
      out.is_fragment = true;
      out.more_fragments = (field & 0x0001) != 0;
      out.fragment_id = Be32(h + 4);
      out.fragment_offset = field & 0xfff8;
      if (out.fragment_offset != 0) {
        out.l4_protocol = next;
        return DecodeStatus::kOk;
      }
    }
  }
  // An extension header may end beyond the captured bytes when the snaplen cut it.
  const uint32_t l4_captured = readable > offset ? readable - offset : 0;
  return DecodeL4(d, next, p + offset, l4_captured, total - offset, out, depth);
}

DecodeStatus DecodeIpByVersion(const Decoder& d, const uint8_t* p, uint32_t captured, uint32_t wire,
                               PacketInfo& out, Depth depth) {
  if (captured < 1) return DecodeStatus::kTruncatedIpHeader;
  switch (p[0] >> 4) {
    case 4:
      return DecodeIpv4(d, p, captured, wire, out, depth);
    case 6:
      return DecodeIpv6(d, p, captured, wire, out, depth);
    default:
      return DecodeStatus::kBadIpVersion;
  }
}

DecodeStatus DecodeEthertype(const Decoder& d, uint16_t ethertype, const uint8_t* p,
                             uint32_t captured, uint32_t wire, PacketInfo& out, Depth depth) {
  switch (ethertype) {
    case kEthertypeIpv4:
      return DecodeIpv4(d, p, captured, wire, out, depth);
    case kEthertypeIpv6:
      return DecodeIpv6(d, p, captured, wire, out, depth);
    default:
      return DecodeStatus::kNotIp;
  }
}

DecodeStatus DecodeEthernetFrame(const Decoder& d, const uint8_t* p, uint32_t captured,
                                 uint32_t wire, PacketInfo& out, Depth depth) {
  if (captured < kEthernetHeaderBytes) return DecodeStatus::kTruncatedLinkHeader;
  uint32_t offset = 12;
  uint16_t ethertype = Be16(p + offset);
  offset += 2;
  // 802.1Q, 802.1ad (QinQ) and the pre-standard 0x9100: each tag is TCI + the next type.
  for (int tags = 0;
       ethertype == kEthertypeVlan || ethertype == kEthertypeQinq || ethertype == kEthertypeQinqOld;
       ++tags) {
    if (tags == kMaxVlanTags) return DecodeStatus::kNotIp;
    if (offset + 4 > captured) return DecodeStatus::kTruncatedLinkHeader;
    ethertype = Be16(p + offset + 2);
    offset += 4;
  }
  return DecodeEthertype(d, ethertype, p + offset, captured - offset,
                         wire > offset ? wire - offset : 0, out, depth);
}

// The link layer handlers. `wire` is at least `captured` (enforced by the callers below).
DecodeStatus LinkEthernet(const Decoder& d, const uint8_t* p, uint32_t captured, uint32_t wire,
                          PacketInfo& out) {
  return DecodeEthernetFrame(d, p, captured, wire, out, Depth::kOuter);
}

DecodeStatus LinkRaw(const Decoder& d, const uint8_t* p, uint32_t captured, uint32_t wire,
                     PacketInfo& out) {
  return DecodeIpByVersion(d, p, captured, wire, out, Depth::kOuter);
}

DecodeStatus LinkIpv4(const Decoder& d, const uint8_t* p, uint32_t captured, uint32_t wire,
                      PacketInfo& out) {
  return DecodeIpv4(d, p, captured, wire, out, Depth::kOuter);
}

DecodeStatus LinkIpv6(const Decoder& d, const uint8_t* p, uint32_t captured, uint32_t wire,
                      PacketInfo& out) {
  return DecodeIpv6(d, p, captured, wire, out, Depth::kOuter);
}

// BSD address families: AF_INET is 2 everywhere, AF_INET6 differs by the capturing OS.
DecodeStatus DecodeAddressFamily(const Decoder& d, uint32_t family, const uint8_t* p,
                                 uint32_t captured, uint32_t wire, PacketInfo& out) {
  switch (family) {
    case 2:
      return DecodeIpv4(d, p + 4, captured - 4, wire - 4, out, Depth::kOuter);
    case 10:  // Linux
    case 24:  // NetBSD, OpenBSD
    case 28:  // FreeBSD
    case 30:  // macOS
      return DecodeIpv6(d, p + 4, captured - 4, wire - 4, out, Depth::kOuter);
    default:
      return DecodeStatus::kNotIp;
  }
}

DecodeStatus LinkNull(const Decoder& d, const uint8_t* p, uint32_t captured, uint32_t wire,
                      PacketInfo& out) {
  if (captured < 4) return DecodeStatus::kTruncatedLinkHeader;
  // DLT_NULL is in the capturing host's byte order, which the file does not record; family
  // values are small, so the order that gives a small number is the right one.
  uint32_t family = Le32(p);
  if (family > 0xffff) family = Be32(p);
  return DecodeAddressFamily(d, family, p, captured, wire, out);
}

DecodeStatus LinkLoop(const Decoder& d, const uint8_t* p, uint32_t captured, uint32_t wire,
                      PacketInfo& out) {
  if (captured < 4) return DecodeStatus::kTruncatedLinkHeader;
  return DecodeAddressFamily(d, Be32(p), p, captured, wire, out);
}

DecodeStatus DecodeCookedProtocol(const Decoder& d, uint16_t protocol, uint32_t header,
                                  const uint8_t* p, uint32_t captured, uint32_t wire,
                                  PacketInfo& out) {
  // The `any` device keeps VLAN tags in the payload on some kernels: treat them as Ethernet's.
  if (protocol == kEthertypeVlan || protocol == kEthertypeQinq) {
    if (captured < header + 4) return DecodeStatus::kTruncatedLinkHeader;
    protocol = Be16(p + header + 2);
    header += 4;
  }
  return DecodeEthertype(d, protocol, p + header, captured - header, wire - header, out,
                         Depth::kOuter);
}

DecodeStatus LinkSll(const Decoder& d, const uint8_t* p, uint32_t captured, uint32_t wire,
                     PacketInfo& out) {
  constexpr uint32_t kHeader = 16;
  if (captured < kHeader) return DecodeStatus::kTruncatedLinkHeader;
  return DecodeCookedProtocol(d, Be16(p + 14), kHeader, p, captured, wire, out);
}

DecodeStatus LinkSll2(const Decoder& d, const uint8_t* p, uint32_t captured, uint32_t wire,
                      PacketInfo& out) {
  constexpr uint32_t kHeader = 20;
  if (captured < kHeader) return DecodeStatus::kTruncatedLinkHeader;
  return DecodeCookedProtocol(d, Be16(p), kHeader, p, captured, wire, out);
}

struct LinkEntry {
  int link_type;
  LinkDecodeFn decode;
};

constexpr LinkEntry kLinkTable[] = {
    {kDltNull, &LinkNull},    {kDltEn10mb, &LinkEthernet}, {kDltRaw12, &LinkRaw},
    {kDltRaw14, &LinkRaw},    {kLinktypeRaw, &LinkRaw},    {kDltLoop, &LinkLoop},
    {kDltLinuxSll, &LinkSll}, {kDltLinuxSll2, &LinkSll2},  {kDltIpv4, &LinkIpv4},
    {kDltIpv6, &LinkIpv6},
};

constexpr std::array<std::string_view, static_cast<size_t>(DecodeStatus::kCount)> kStatusNames = {
    "ok",
    "not_ip",
    "truncated_link_header",
    "unsupported_link_type",
    "truncated_ip_header",
    "bad_ip_version",
    "bad_ip_header_length",
    "bad_ip_length",
    "truncated_extension_header",
    "too_many_extension_headers",
    "truncated_l4",
    "bad_tcp_header_length",
    "truncated_encapsulation",
};

}  // namespace

std::string_view DecodeStatusName(DecodeStatus status) {
  const auto i = static_cast<size_t>(status);
  return i < kStatusNames.size() ? kStatusNames[i] : "unknown";
}

std::string_view EncapName(Encap encap) {
  switch (encap) {
    case Encap::kVxlan:
      return "vxlan";
    default:
      return "none";
  }
}

std::optional<LinkDecodeFn> LinkDecoderFor(int link_type) {
  for (const auto& entry : kLinkTable) {
    if (entry.link_type == link_type) return entry.decode;
  }
  return std::nullopt;
}

Decoder::Decoder(const std::vector<uint16_t>& vxlan_ports) {
  for (uint16_t port : vxlan_ports) vxlan_ports_.set(port);
}

DecodeStatus Decoder::Decode(int link_type, const uint8_t* data, uint32_t captured, uint32_t wire,
                             PacketInfo& out) const {
  const auto link = LinkDecoderFor(link_type);
  if (!link) {
    out = PacketInfo{};
    return DecodeStatus::kUnsupportedLinkType;
  }
  return Decode(*link, data, captured, wire, out);
}

}  // namespace meshflow::flow
