#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meshflow {

// An IPv4 or IPv6 address stored as 16 bytes; IPv4 as ::ffff:a.b.c.d so one compare serves both.
class IpAddress {
 public:
  IpAddress() = default;
  static IpAddress FromV4(uint32_t host_order);
  static IpAddress FromV4Bytes(const uint8_t* network_order);
  static IpAddress FromV6Bytes(const uint8_t* network_order);
  static std::optional<IpAddress> Parse(std::string_view text);

  bool is_v4() const;
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  std::string ToString() const;
  // Sets every bit after the first `bits` (counted in the address family's own width) to zero.
  IpAddress Masked(int bits) const;

  auto operator<=>(const IpAddress&) const = default;

 private:
  std::array<uint8_t, 16> bytes_{};
};

struct IpAddressHash {
  size_t operator()(const IpAddress& a) const noexcept {
    uint64_t lo, hi;
    std::memcpy(&hi, a.bytes().data(), 8);
    std::memcpy(&lo, a.bytes().data() + 8, 8);
    return static_cast<size_t>((lo ^ (hi * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull);
  }
};

// An address with a prefix length, as written in config: 100.64.0.0/10, fd7a:115c:a1e0::/48.
struct IpPrefix {
  IpAddress address;  // already masked
  int bits = 0;       // in the family's own width: 0..32 for IPv4, 0..128 for IPv6

  // A bare address is a host prefix (/32 or /128). Host bits set after the mask are an error.
  static std::optional<IpPrefix> Parse(std::string_view text, std::string* error = nullptr);
  bool Contains(const IpAddress& a) const;
  std::string ToString() const;
  auto operator<=>(const IpPrefix&) const = default;
};

// Every address on this host's interfaces (getifaddrs), IPv4 and IPv6.
std::vector<IpAddress> InterfaceAddresses();

}  // namespace meshflow
