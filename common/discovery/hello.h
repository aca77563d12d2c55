#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/ip_address.h"

namespace meshflow::discovery {

// Self-identification: a prober asks a peer's UDP reflector who it is, the reflector answers with
// its node name and overlay addresses. An address is not a name; this is how names appear.
//
// Request, always exactly kHelloRequestSize bytes so no reply can be larger (no amplification):
//   0  magic "MFHI"   4 bytes
//   4  version (1)    1 byte
//   5  type 1         1 byte
//   6  reserved, 0    2 bytes
//   8  nonce          8 bytes   echoed in the reply; a reply with another nonce is dropped
//  16  zero padding up to kHelloRequestSize
// Reply, at most kHelloRequestSize bytes, nothing after the last address:
//   0  magic, version, type 2, reserved, nonce as above (16 bytes)
//  16  name length N (1..63), then N bytes of name
//      address count C (0..kHelloMaxAddresses), then C times:
//        family (4 or 6), prefix bits, 4 or 16 address bytes
inline constexpr size_t kHelloRequestSize = 400;
inline constexpr size_t kHelloMaxAddresses = 16;
inline constexpr uint8_t kHelloVersion = 1;

struct HelloIdentity {
  uint64_t nonce = 0;
  std::string name;
  std::vector<IpPrefix> addresses;
  bool operator==(const HelloIdentity&) const = default;
};

enum class HelloError : uint8_t {
  kNotHello,  // another magic: not for the hello handler (a probe, say)
  kTooShort,
  kTooLong,
  kBadVersion,
  kBadType,
  kReservedNotZero,
  kPaddingNotZero,
  kBadName,
  kBadAddress,
  kTrailingBytes,
};
std::string_view HelloErrorName(HelloError error);

// True when the datagram carries the hello magic (whatever its version).
bool IsHello(std::span<const uint8_t> bytes);

std::array<uint8_t, kHelloRequestSize> EncodeHelloRequest(uint64_t nonce);
// The nonce of a well-formed request.
std::optional<uint64_t> DecodeHelloRequest(std::span<const uint8_t> bytes, HelloError* error);

// Empty when the name is not a valid node name or there are more than kHelloMaxAddresses.
std::optional<std::vector<uint8_t>> EncodeHelloReply(const HelloIdentity& identity);
std::optional<HelloIdentity> DecodeHelloReply(std::span<const uint8_t> bytes, HelloError* error);

// The reflector's side: the reply to a request, or nothing when `request` is not a valid one.
std::optional<std::vector<uint8_t>> AnswerHello(std::span<const uint8_t> request,
                                                const std::string& name,
                                                const std::vector<IpPrefix>& addresses,
                                                HelloError* error);

}  // namespace meshflow::discovery
