#include "collectors/probe/codec.h"

namespace meshflow::probe {
namespace {

DecodeResult Fail(DecodeError error) { return DecodeResult{std::nullopt, error}; }

}  // namespace

std::string_view DecodeErrorName(DecodeError error) {
  switch (error) {
    case DecodeError::kTooShort:
      return "too_short";
    case DecodeError::kTooLong:
      return "too_long";
    case DecodeError::kBadMagic:
      return "bad_magic";
    case DecodeError::kBadVersion:
      return "bad_version";
    case DecodeError::kBadType:
      return "bad_type";
    case DecodeError::kReservedNotZero:
      return "reserved_not_zero";
    case DecodeError::kReplyFieldInRequest:
      return "reply_field_in_request";
  }
  return "unknown";
}

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

}  // namespace meshflow::probe
