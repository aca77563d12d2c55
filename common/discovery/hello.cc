#include "common/discovery/hello.h"

#include "common/core/enum_names.h"
#include "common/discovery/merge.h"

namespace meshflow::discovery {
namespace {

constexpr uint8_t kRequest = 1;
constexpr uint8_t kReply = 2;
constexpr size_t kHeader = 16;

void PutHeader(uint8_t* p, uint8_t type, uint64_t nonce) {
  p[0] = 'M';
  p[1] = 'F';
  p[2] = 'H';
  p[3] = 'I';
  p[4] = kHelloVersion;
  p[5] = type;
  p[6] = p[7] = 0;
  for (int i = 7; i >= 0; --i) {
    p[8 + i] = static_cast<uint8_t>(nonce);
    nonce >>= 8;
  }
}

// Checks the common header; returns the nonce.
std::optional<uint64_t> ReadHeader(std::span<const uint8_t> b, uint8_t type, HelloError* error) {
  auto fail = [&](HelloError e) -> std::optional<uint64_t> {
    if (error) *error = e;
    return std::nullopt;
  };
  if (!IsHello(b)) return fail(HelloError::kNotHello);
  if (b.size() < kHeader) return fail(HelloError::kTooShort);
  if (b[4] != kHelloVersion) return fail(HelloError::kBadVersion);
  if (b[5] != type) return fail(HelloError::kBadType);
  if (b[6] != 0 || b[7] != 0) return fail(HelloError::kReservedNotZero);
  uint64_t nonce = 0;
  for (int i = 0; i < 8; ++i) nonce = (nonce << 8) | b[8 + i];
  return nonce;
}

constexpr EnumName<HelloError> kHelloErrorNames[] = {
    {HelloError::kNotHello, "not_hello"},
    {HelloError::kTooShort, "too_short"},
    {HelloError::kTooLong, "too_long"},
    {HelloError::kBadVersion, "bad_version"},
    {HelloError::kBadType, "bad_type"},
    {HelloError::kReservedNotZero, "reserved_not_zero"},
    {HelloError::kPaddingNotZero, "padding_not_zero"},
    {HelloError::kBadName, "bad_name"},
    {HelloError::kBadAddress, "bad_address"},
    {HelloError::kTrailingBytes, "trailing_bytes"},
};

}  // namespace

std::string_view HelloErrorName(HelloError error) { return NameOf(kHelloErrorNames, error); }

bool IsHello(std::span<const uint8_t> b) {
  return b.size() >= 4 && b[0] == 'M' && b[1] == 'F' && b[2] == 'H' && b[3] == 'I';
}

std::array<uint8_t, kHelloRequestSize> EncodeHelloRequest(uint64_t nonce) {
  std::array<uint8_t, kHelloRequestSize> b{};
  PutHeader(b.data(), kRequest, nonce);
  return b;
}

std::optional<uint64_t> DecodeHelloRequest(std::span<const uint8_t> b, HelloError* error) {
  const auto nonce = ReadHeader(b, kRequest, error);
  if (!nonce) return std::nullopt;
  auto fail = [&](HelloError e) -> std::optional<uint64_t> {
    if (error) *error = e;
    return std::nullopt;
  };
  if (b.size() < kHelloRequestSize) return fail(HelloError::kTooShort);
  if (b.size() > kHelloRequestSize) return fail(HelloError::kTooLong);
  for (size_t i = kHeader; i < b.size(); ++i)
    if (b[i] != 0) return fail(HelloError::kPaddingNotZero);
  return nonce;
}

std::optional<std::vector<uint8_t>> EncodeHelloReply(const HelloIdentity& id) {
  if (!IsValidNodeName(id.name) || id.addresses.size() > kHelloMaxAddresses) return std::nullopt;
  std::vector<uint8_t> b(kHeader);
  PutHeader(b.data(), kReply, id.nonce);
  b.push_back(static_cast<uint8_t>(id.name.size()));
  b.insert(b.end(), id.name.begin(), id.name.end());
  b.push_back(static_cast<uint8_t>(id.addresses.size()));
  for (const auto& p : id.addresses) {
    const bool v4 = p.address.is_v4();
    b.push_back(v4 ? 4 : 6);
    b.push_back(static_cast<uint8_t>(p.bits));
    const auto& bytes = p.address.bytes();
    b.insert(b.end(), bytes.begin() + (v4 ? 12 : 0), bytes.end());
  }
  return b;  // at most 16 + 1 + 63 + 1 + 16 * 18 = 369 bytes, under the request's size
}

std::optional<HelloIdentity> DecodeHelloReply(std::span<const uint8_t> b, HelloError* error) {
  const auto nonce = ReadHeader(b, kReply, error);
  if (!nonce) return std::nullopt;
  auto fail = [&](HelloError e) -> std::optional<HelloIdentity> {
    if (error) *error = e;
    return std::nullopt;
  };
  if (b.size() > kHelloRequestSize) return fail(HelloError::kTooLong);
  HelloIdentity id;
  id.nonce = *nonce;
  size_t pos = kHeader;
  if (pos >= b.size()) return fail(HelloError::kTooShort);
  const size_t name_len = b[pos++];
  if (b.size() - pos < name_len) return fail(HelloError::kTooShort);
  id.name.assign(reinterpret_cast<const char*>(b.data() + pos), name_len);
  pos += name_len;
  if (!IsValidNodeName(id.name)) return fail(HelloError::kBadName);
  if (pos >= b.size()) return fail(HelloError::kTooShort);
  const size_t count = b[pos++];
  if (count > kHelloMaxAddresses) return fail(HelloError::kBadAddress);
  for (size_t i = 0; i < count; ++i) {
    if (b.size() - pos < 2) return fail(HelloError::kTooShort);
    const uint8_t family = b[pos];
    const int bits = b[pos + 1];
    pos += 2;
    if (family != 4 && family != 6) return fail(HelloError::kBadAddress);
    const size_t len = family == 4 ? 4 : 16;
    if (bits > static_cast<int>(len * 8)) return fail(HelloError::kBadAddress);
    if (b.size() - pos < len) return fail(HelloError::kTooShort);
    const IpAddress a = family == 4 ? IpAddress::FromV4Bytes(b.data() + pos)
                                    : IpAddress::FromV6Bytes(b.data() + pos);
    pos += len;
    // Host bits set after the mask, or an IPv4 address written as IPv6 (::ffff:a.b.c.d), would
    // make two encodings of one prefix.
    if (a.Masked(bits) != a || (family == 6 && a.is_v4())) return fail(HelloError::kBadAddress);
    id.addresses.push_back(IpPrefix{a, bits});
  }
  if (pos != b.size()) return fail(HelloError::kTrailingBytes);
  return id;
}

std::optional<std::vector<uint8_t>> AnswerHello(std::span<const uint8_t> request,
                                                const std::string& name,
                                                const std::vector<IpPrefix>& addresses,
                                                HelloError* error) {
  const auto nonce = DecodeHelloRequest(request, error);
  if (!nonce) return std::nullopt;
  HelloIdentity id{*nonce, name, addresses};
  if (id.addresses.size() > kHelloMaxAddresses) id.addresses.resize(kHelloMaxAddresses);
  return EncodeHelloReply(id);
}

}  // namespace meshflow::discovery
