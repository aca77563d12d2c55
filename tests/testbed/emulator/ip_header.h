#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "common/core/ip_address.h"

namespace meshflow::testbed {

enum class MalformedReason { kNone, kEmpty, kUnknownVersion, kTruncatedV4, kTruncatedV6, kCount };
const char* MalformedReasonName(MalformedReason reason);

// The two addresses the mover routes on; a TUN with IFF_NO_PI hands over bare IP packets.
struct IpEndpoints {
  int version = 0;
  IpAddress src;
  IpAddress dst;
};

// Reads the version nibble and the addresses, checking the length before every read.
std::optional<IpEndpoints> ParseIpHeader(const uint8_t* data, size_t size, MalformedReason* why);

}  // namespace meshflow::testbed
