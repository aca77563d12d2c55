#include "common/web/basic_auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>

namespace meshflow::web {
namespace {

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict standard base64 with padding, as RFC 7617 uses.
std::optional<std::string> DecodeBase64(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      const char c = in[i + j];
      if (c == '=' && i + 4 == in.size() && j >= 2) {
        v[j] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return std::nullopt;  // data after padding
      v[j] = Base64Value(c);
      if (v[j] < 0) return std::nullopt;
    }
    const uint32_t n = (static_cast<uint32_t>(v[0]) << 18) | (static_cast<uint32_t>(v[1]) << 12) |
                       (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
    out.push_back(static_cast<char>(n >> 16));
    if (pad < 2) out.push_back(static_cast<char>((n >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(n & 0xff));
  }
  return out;
}

std::string Sha256(std::string_view a, std::string_view b, std::string_view c) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  // Lengths first, so "ab"+"c" and "a"+"bc" differ.
  for (std::string_view part : {a, b, c}) {
    const uint64_t n = part.size();
    EVP_DigestUpdate(ctx.get(), &n, sizeof n);
    EVP_DigestUpdate(ctx.get(), part.data(), part.size());
  }
  EVP_DigestFinal_ex(ctx.get(), md.data(), &len);
  return std::string(reinterpret_cast<const char*>(md.data()), len);
}

std::string MakeDummyHash(int cost) {
  std::array<unsigned char, 16> random{};
  RAND_bytes(random.data(), random.size());
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost),
                       reinterpret_cast<const char*>(random.data()), random.size(), setting,
                       sizeof setting) == nullptr) {
    return {};
  }
  auto data = std::make_unique<crypt_data>();
  const char* hash = crypt_r("meshflow-dummy-password", setting, data.get());
  return hash && hash[0] != '*' ? std::string(hash) : std::string();
}

}  // namespace

std::optional<BasicCredentials> ParseBasicAuthorization(std::string_view header) {
  constexpr std::string_view kScheme = "basic";
  if (header.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    // The scheme is case-insensitive (RFC 7235).
    if ((header[i] | 0x20) != kScheme[i]) return std::nullopt;
  }
  std::string_view rest = header.substr(kScheme.size());
  if (rest.front() != ' ') return std::nullopt;
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
  const auto decoded = DecodeBase64(rest);
  if (!decoded) return std::nullopt;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return BasicCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

bool VerifyPasswordHash(const std::string& password, const std::string& hash) {
  if (hash.empty() || password.find('\0') != std::string::npos) return false;
  auto data = std::make_unique<crypt_data>();
  const char* computed = crypt_r(password.c_str(), hash.c_str(), data.get());
  // libxcrypt signals failure with a string starting with '*', never a null pointer by default.
  if (computed == nullptr || computed[0] == '*') return false;
  const size_t n = std::strlen(computed);
  if (n != hash.size()) return false;
  return CRYPTO_memcmp(computed, hash.data(), n) == 0;
}

int BcryptCost(std::string_view hash) {
  if (hash.size() < 7 || hash.substr(0, 2) != "$2" || hash[3] != '$' || hash[6] != '$') return 0;
  if (hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9') return 0;
  return (hash[4] - '0') * 10 + (hash[5] - '0');
}

BasicAuthenticator::BasicAuthenticator(std::map<std::string, std::string> users)
    : users_(std::move(users)) {
  int cost = 4;
  for (const auto& [user, hash] : users_) cost = std::max(cost, BcryptCost(hash));
  if (!users_.empty()) dummy_hash_ = MakeDummyHash(cost);
}

bool BasicAuthenticator::Check(std::optional<std::string_view> authorization) {
  if (users_.empty()) return true;
  if (!authorization) return false;
  const auto credentials = ParseBasicAuthorization(*authorization);
  if (!credentials) return false;
  return Verify(*credentials);
}

bool BasicAuthenticator::Verify(const BasicCredentials& credentials) {
  const auto it = users_.find(credentials.user);
  const bool known = it != users_.end();
  const std::string& hash = known ? it->second : dummy_hash_;
  const std::string digest = Sha256(credentials.user, credentials.password, hash);
  if (known) {
    std::lock_guard lock(mutex_);
    const auto hit = std::find(cache_.begin(), cache_.end(), digest);
    if (hit != cache_.end()) {
      cache_.splice(cache_.begin(), cache_, hit);
      ++cache_hits_;
      return true;
    }
  }
  // Outside the lock: bcrypt takes tens of milliseconds and must not serialise requests.
  const bool match = VerifyPasswordHash(credentials.password, hash);
  if (!known || !match) return false;
  std::lock_guard lock(mutex_);
  cache_.push_front(digest);
  if (cache_.size() > kCacheSize) cache_.pop_back();
  return true;
}

uint64_t BasicAuthenticator::cache_hits() const {
  std::lock_guard lock(mutex_);
  return cache_hits_;
}

}  // namespace meshflow::web
