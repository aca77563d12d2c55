#include "tests/testbed/emulator/ip_header.h"

namespace meshflow::testbed {

const char* MalformedReasonName(MalformedReason reason) {
  switch (reason) {
    case MalformedReason::kNone:
      return "none";
    case MalformedReason::kEmpty:
      return "empty";
    case MalformedReason::kUnknownVersion:
      return "unknown_version";
    case MalformedReason::kTruncatedV4:
      return "truncated_ipv4";
    case MalformedReason::kTruncatedV6:
      return "truncated_ipv6";
    case MalformedReason::kCount:
      break;
  }
  return "unknown";
}

std::optional<IpEndpoints> ParseIpHeader(const uint8_t* data, size_t size, MalformedReason* why) {
  auto fail = [&](MalformedReason reason) -> std::optional<IpEndpoints> {
    if (why) *why = reason;
    return std::nullopt;
  };
  if (size == 0) return fail(MalformedReason::kEmpty);
  IpEndpoints out;
  out.version = data[0] >> 4;
  if (out.version == 4) {
    // The header length field is ignored on purpose: only the fixed part is read.
    if (size < 20) return fail(MalformedReason::kTruncatedV4);
    out.src = IpAddress::FromV4Bytes(data + 12);
    out.dst = IpAddress::FromV4Bytes(data + 16);
  } else if (out.version == 6) {
    if (size < 40) return fail(MalformedReason::kTruncatedV6);
    out.src = IpAddress::FromV6Bytes(data + 8);
    out.dst = IpAddress::FromV6Bytes(data + 24);
  } else {
    return fail(MalformedReason::kUnknownVersion);
  }
  if (why) *why = MalformedReason::kNone;
  return out;
}

}  // namespace meshflow::testbed
