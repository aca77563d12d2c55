#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace meshflow::probe {

// Big-endian 64-bit fields, as the probe format and the ICMP echo payload carry them.
inline void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

inline uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

// meshflow's UDP probe datagram. Requests and replies have the same fixed size, so a reflector
// can never send more bytes than it received (no amplification).
//
//   0  magic "MFPR"          4 bytes
//   4  version (1)           1 byte
//   5  type (1 req, 2 rep)   1 byte
//   6  reserved, zero        2 bytes
//   8  session               8 bytes  chosen by the prober at start; keys the reflector's count
//  16  sequence              8 bytes
//  24  send time             8 bytes  prober's own clock, opaque to the reflector
//  32  receive count         8 bytes  zero in requests; in replies, the requests of this session
//                                     the reflector has received, this one included
//  40  turnaround            8 bytes  zero in requests; in replies, nanoseconds the reflector held
//                                     the request (kernel receive timestamp to just before send),
//                                     zero when unknown, so its scheduling delay leaves the RTT
// All integers big-endian.
inline constexpr size_t kProbeSize = 48;
inline constexpr size_t kTurnaroundOffset = 40;
inline constexpr uint32_t kProbeMagic = 0x4D465052;  // "MFPR"
inline constexpr uint8_t kProbeVersion = 1;

enum class ProbeType : uint8_t { kRequest = 1, kReply = 2 };

struct ProbePacket {
  ProbeType type = ProbeType::kRequest;
  uint64_t session = 0;
  uint64_t sequence = 0;
  uint64_t send_time_ns = 0;
  uint64_t receive_count = 0;
  uint64_t turnaround_ns = 0;

  bool operator==(const ProbePacket&) const = default;
};

// Why a datagram was not a probe packet; each is a label value of the malformed counters.
enum class DecodeError : uint8_t {
  kTooShort,
  kTooLong,
  kBadMagic,
  kBadVersion,
  kBadType,
  kReservedNotZero,
  kReplyFieldInRequest,
};
inline constexpr size_t kDecodeErrorCount = 7;
std::string_view DecodeErrorName(DecodeError error);

struct DecodeResult {
  std::optional<ProbePacket> packet;
  DecodeError error = DecodeError::kTooShort;  // meaningful only when packet is empty
};

using ProbeBytes = std::array<uint8_t, kProbeSize>;

ProbeBytes Encode(const ProbePacket& packet);
// Writes the turnaround into an encoded reply, at the last moment before it is sent.
void SetTurnaround(ProbeBytes& reply, uint64_t turnaround_ns);
DecodeResult Decode(std::span<const uint8_t> bytes);

// The Internet checksum (RFC 1071).
uint16_t InternetChecksum(std::span<const uint8_t> bytes);

// meshflow's ICMP echo request: the 8-byte ICMP header (type, code, checksum, identifier, the
// sequence's low 16 bits) and a 16-byte payload, the series' session and the full sequence,
// big-endian. The reply echoes it, so a reply names its series and probe without any state.
inline constexpr size_t kIcmpHeaderSize = 8;
inline constexpr size_t kIcmpEchoSize = kIcmpHeaderSize + 16;
using IcmpEchoBytes = std::array<uint8_t, kIcmpEchoSize>;

// An echo request to an IPv4 (`v4`) or IPv6 peer. IPv4 carries its checksum; an ICMPv6 checksum
// covers a pseudo header, so the kernel fills it in.
IcmpEchoBytes EncodeIcmpEcho(bool v4, uint16_t id, uint64_t session, uint64_t sequence);

struct IcmpEchoReply {
  uint16_t id = 0;
  uint64_t session = 0;
  uint64_t sequence = 0;
};

struct IcmpDecodeResult {
  std::optional<IcmpEchoReply> reply;
  bool malformed = false;  // no reply and worth counting: not an empty read
};

// Reads an echo reply as an IPv4 (`v4`) or IPv6 ICMP socket delivers it; `with_ip_header`: a raw
// IPv4 socket, which delivers the IP header too. Anything but one of our echo replies (too short,
// another type, a low sequence that disagrees with the payload's) is malformed.
IcmpDecodeResult DecodeIcmpEchoReply(std::span<const uint8_t> bytes, bool v4, bool with_ip_header);

}  // namespace meshflow::probe
