#pragma once

#include <algorithm>
#include <array>
#include <bitset>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/core/ip_address.h"

namespace meshflow::flow {

// Why a packet was not decoded. Malformed input ends here and is counted by reason, never
// crashes and never reaches the byte counters.
enum class DecodeStatus : uint8_t {
  kOk,
  kNotIp,  // ARP, LLDP...: skipped, not an error
  kTruncatedLinkHeader,
  kUnsupportedLinkType,
  kTruncatedIpHeader,  // fewer captured bytes than the fixed or declared IP header
  kBadIpVersion,       // version nibble disagrees with the link layer's protocol
  kBadIpHeaderLength,  // IPv4 IHL below 5
  kBadIpLength,        // IP length below its header, or beyond the frame on the wire
  kTruncatedExtensionHeader,
  kTooManyExtensionHeaders,
  kTruncatedL4,             // no ports captured, or a TCP/UDP header longer than the IP length
  kBadTcpHeaderLength,      // TCP data offset below 5 or beyond the IP length
  kTruncatedEncapsulation,  // VXLAN header or inner Ethernet header not captured
  kCount,
};

// The label value of a status, as in meshflow_capture_decode_errors_total{reason}.
std::string_view DecodeStatusName(DecodeStatus status);

enum class Encap : uint8_t { kNone, kVxlan, kCount };
std::string_view EncapName(Encap encap);

// What the flow pipeline needs of one packet, decoded to L4 and no further.
struct PacketInfo {
  IpAddress src;
  IpAddress dst;
  // The bytes this packet counts for: IPv4 total length, IPv6 payload length + 40. Under
  // GRO/GSO or BIG TCP a zero length field means the wire length minus the link header.
  uint32_t ip_bytes = 0;
  uint8_t ip_version = 0;
  uint8_t l4_protocol = 0;  // IPPROTO_* after any IPv6 extension headers
  bool has_ports = false;
  bool has_tcp_header = false;     // flags, seq, ack and window are valid
  bool has_tcp_timestamp = false;  // ts_val and ts_ecr are valid
  bool is_fragment = false;
  bool more_fragments = false;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint8_t tcp_flags = 0;
  uint8_t icmp_type = 0;
  uint16_t tcp_window = 0;
  uint32_t tcp_seq = 0;
  uint32_t tcp_ack = 0;
  uint32_t tcp_payload_bytes = 0;
  uint32_t ts_val = 0;
  uint32_t ts_ecr = 0;
  uint32_t fragment_id = 0;      // IPv4 identification or IPv6 fragment header id
  uint32_t fragment_offset = 0;  // in bytes; non-zero means no L4 header in this packet
  Encap encap = Encap::kNone;
  uint32_t encap_overhead_bytes = 0;  // outer IP length minus the inner IP length
};

namespace tcp_flags {
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;
}  // namespace tcp_flags

class Decoder;

// Decodes one link layer; chosen once per interface from its DLT, called once per packet.
using LinkDecodeFn = DecodeStatus (*)(const Decoder& decoder, const uint8_t* data,
                                      uint32_t captured, uint32_t wire, PacketInfo& out);

// The handler for a DLT_* value (DLT_EN10MB, DLT_RAW in its 12/14/101 variants, DLT_IPV4,
// DLT_IPV6, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_NULL, DLT_LOOP); nullopt if unsupported.
std::optional<LinkDecodeFn> LinkDecoderFor(int link_type);

// Bytes -> PacketInfo. Stateless apart from the VXLAN port set, so one instance serves every
// interface; every read is bounds-checked against the captured length.
class Decoder {
 public:
  // Far above any GSO/BIG TCP super-packet (512 KiB).
  static constexpr uint32_t kMaxWireBytes = 1u << 24;

  explicit Decoder(const std::vector<uint16_t>& vxlan_ports = {8472, 4789});

  // `captured` bytes are readable at `data`; `wire` is the packet's length on the wire.
  DecodeStatus Decode(LinkDecodeFn link, const uint8_t* data, uint32_t captured, uint32_t wire,
                      PacketInfo& out) const {
    out = PacketInfo{};
    // The wire length is at least what was captured; a bound keeps offset sums from wrapping.
    return link(*this, data, captured, std::max(captured, std::min(wire, kMaxWireBytes)), out);
  }
  // Convenience for tests and tools: resolves the DLT each call.
  DecodeStatus Decode(int link_type, const uint8_t* data, uint32_t captured, uint32_t wire,
                      PacketInfo& out) const;

  bool IsVxlanPort(uint16_t port) const { return vxlan_ports_.test(port); }

 private:
  std::bitset<65536> vxlan_ports_;
};

}  // namespace meshflow::flow
