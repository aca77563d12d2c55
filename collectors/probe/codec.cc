#include "collectors/probe/codec.h"

#include "common/core/enum_names.h"

namespace meshflow::probe {
namespace {

DecodeResult Fail(DecodeError error) { return DecodeResult{std::nullopt, error}; }

constexpr EnumName<DecodeError> kDecodeErrorNames[] = {
    {DecodeError::kTooShort, "too_short"},
    {DecodeError::kTooLong, "too_long"},
    {DecodeError::kBadMagic, "bad_magic"},
    {DecodeError::kBadVersion, "bad_version"},
    {DecodeError::kBadType, "bad_type"},
    {DecodeError::kReservedNotZero, "reserved_not_zero"},
    {DecodeError::kReplyFieldInRequest, "reply_field_in_request"},
};

}  // namespace

std::string_view DecodeErrorName(DecodeError error) { return NameOf(kDecodeErrorNames, error); }

ProbeBytes Encode(const ProbePacket& packet) {
  ProbeBytes b{};
  b[0] = 'M';
  b[1] = 'F';
  b[2] = 'P';
  b[3] = 'R';
  b[4] = kProbeVersion;
  b[5] = static_cast<uint8_t>(packet.type);
  PutU64(&b[8], packet.session);
  PutU64(&b[16], packet.sequence);
  PutU64(&b[24], packet.send_time_ns);
  const bool reply = packet.type == ProbeType::kReply;
  PutU64(&b[32], reply ? packet.receive_count : 0);
  PutU64(&b[kTurnaroundOffset], reply ? packet.turnaround_ns : 0);
  return b;
}

void SetTurnaround(ProbeBytes& reply, uint64_t turnaround_ns) {
  PutU64(&reply[kTurnaroundOffset], turnaround_ns);
}

DecodeResult Decode(std::span<const uint8_t> bytes) {
  if (bytes.size() < kProbeSize) return Fail(DecodeError::kTooShort);
  if (bytes.size() > kProbeSize) return Fail(DecodeError::kTooLong);
  const uint8_t* p = bytes.data();
  const uint32_t magic =
      (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
  if (magic != kProbeMagic) return Fail(DecodeError::kBadMagic);
  if (p[4] != kProbeVersion) return Fail(DecodeError::kBadVersion);
  if (p[5] != static_cast<uint8_t>(ProbeType::kRequest) &&
      p[5] != static_cast<uint8_t>(ProbeType::kReply))
    return Fail(DecodeError::kBadType);
  if (p[6] != 0 || p[7] != 0) return Fail(DecodeError::kReservedNotZero);
  ProbePacket packet;
  packet.type = static_cast<ProbeType>(p[5]);
  packet.session = GetU64(p + 8);
  packet.sequence = GetU64(p + 16);
  packet.send_time_ns = GetU64(p + 24);
  packet.receive_count = GetU64(p + 32);
  packet.turnaround_ns = GetU64(p + kTurnaroundOffset);
  if (packet.type == ProbeType::kRequest &&
      (packet.receive_count != 0 || packet.turnaround_ns != 0))
    return Fail(DecodeError::kReplyFieldInRequest);
  return DecodeResult{packet, DecodeError::kTooShort};
}

uint16_t InternetChecksum(std::span<const uint8_t> bytes) {
  uint32_t sum = 0;
  size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) sum += (uint32_t{bytes[i]} << 8) | bytes[i + 1];
  if (i < bytes.size()) sum += uint32_t{bytes[i]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

IcmpEchoBytes EncodeIcmpEcho(bool v4, uint16_t id, uint64_t session, uint64_t sequence) {
  IcmpEchoBytes b{};
  b[0] = v4 ? 8 : 128;  // echo request
  b[4] = static_cast<uint8_t>(id >> 8);
  b[5] = static_cast<uint8_t>(id);
  b[6] = static_cast<uint8_t>(sequence >> 8);
  b[7] = static_cast<uint8_t>(sequence);
  PutU64(&b[kIcmpHeaderSize], session);
  PutU64(&b[kIcmpHeaderSize + 8], sequence);
  if (v4) {
    const uint16_t sum = InternetChecksum(b);
    b[2] = static_cast<uint8_t>(sum >> 8);
    b[3] = static_cast<uint8_t>(sum);
  }
  return b;
}

IcmpDecodeResult DecodeIcmpEchoReply(std::span<const uint8_t> bytes, bool v4, bool with_ip_header) {
  IcmpDecodeResult result;
  if (with_ip_header) {
    if (bytes.empty()) return result;
    const size_t ihl = size_t{bytes[0] & 0x0fu} * 4;
    if (ihl < 20 || bytes.size() < ihl) {
      result.malformed = true;
      return result;
    }
    bytes = bytes.subspan(ihl);
  }
  const uint8_t echo_reply = v4 ? 0 : 129;
  if (bytes.size() < kIcmpEchoSize || bytes[0] != echo_reply) {
    result.malformed = true;
    return result;
  }
  IcmpEchoReply reply;
  reply.id = static_cast<uint16_t>((bytes[4] << 8) | bytes[5]);
  const auto seq16 = static_cast<uint16_t>((bytes[6] << 8) | bytes[7]);
  reply.session = GetU64(bytes.data() + kIcmpHeaderSize);
  reply.sequence = GetU64(bytes.data() + kIcmpHeaderSize + 8);
  if (static_cast<uint16_t>(reply.sequence) != seq16) {
    result.malformed = true;
    return result;
  }
  result.reply = reply;
  return result;
}

}  // namespace meshflow::probe
