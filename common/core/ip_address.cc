#include "common/core/ip_address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>

namespace meshflow {
namespace {
constexpr std::array<uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
}  // namespace

IpAddress IpAddress::FromV4(uint32_t host_order) {
  const uint32_t n = htonl(host_order);
  return FromV4Bytes(reinterpret_cast<const uint8_t*>(&n));
}

IpAddress IpAddress::FromV4Bytes(const uint8_t* network_order) {
  IpAddress a;
  std::memcpy(a.bytes_.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size());
  std::memcpy(a.bytes_.data() + 12, network_order, 4);
  return a;
}

IpAddress IpAddress::FromV6Bytes(const uint8_t* network_order) {
  IpAddress a;
  std::memcpy(a.bytes_.data(), network_order, 16);
  return a;
}

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  const std::string s(text);
  uint8_t buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) return FromV4Bytes(buf);
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) return FromV6Bytes(buf);
  return std::nullopt;
}

bool IpAddress::is_v4() const {
  return std::memcmp(bytes_.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size()) == 0;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (is_v4()) {
    inet_ntop(AF_INET, bytes_.data() + 12, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, bytes_.data(), buf, sizeof buf);
  }
  return buf;
}

IpAddress IpAddress::Masked(int bits) const {
  IpAddress out = *this;
  const int total = is_v4() ? bits + 96 : bits;
  for (int i = 0; i < 16; ++i) {
    const int keep = total - i * 8;
    if (keep >= 8) continue;
    out.bytes_[i] &= keep <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
  }
  return out;
}

std::optional<IpPrefix> IpPrefix::Parse(std::string_view text, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<IpPrefix> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  const auto slash = text.find('/');
  const auto address = IpAddress::Parse(text.substr(0, slash));
  if (!address) return fail("not an IPv4 or IPv6 address");
  const int width = address->is_v4() ? 32 : 128;
  int bits = width;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty())
      return fail("prefix length is not a number");
    if (bits < 0 || bits > width) return fail("prefix length must be 0.." + std::to_string(width));
  }
  IpPrefix p{address->Masked(bits), bits};
  if (p.address != *address) return fail("host bits are set after the prefix length");
  return p;
}

bool IpPrefix::Contains(const IpAddress& a) const {
  return a.is_v4() == address.is_v4() && a.Masked(bits) == address;
}

std::string IpPrefix::ToString() const { return address.ToString() + "/" + std::to_string(bits); }

std::vector<IpAddress> InterfaceAddresses() {
  std::vector<IpAddress> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      sockaddr_in v4;
      std::memcpy(&v4, i->ifa_addr, sizeof v4);
      out.push_back(IpAddress::FromV4Bytes(reinterpret_cast<const uint8_t*>(&v4.sin_addr)));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      sockaddr_in6 v6;
      std::memcpy(&v6, i->ifa_addr, sizeof v6);
      out.push_back(IpAddress::FromV6Bytes(v6.sin6_addr.s6_addr));
    }
  }
  freeifaddrs(list);
  return out;
}

}  // namespace meshflow
