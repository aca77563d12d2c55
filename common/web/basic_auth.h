#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace meshflow::web {

struct BasicCredentials {
  std::string user;
  std::string password;
};

// Parses an Authorization header value "Basic base64(user:password)"; nullopt when it is not
// well-formed Basic authentication.
std::optional<BasicCredentials> ParseBasicAuthorization(std::string_view header);

// True when `password` hashes to `hash` (any crypt(3) hash libxcrypt knows, bcrypt here).
// Compares in constant time.
bool VerifyPasswordHash(const std::string& password, const std::string& hash);

// The bcrypt cost of a "$2b$10$..." hash; 0 when it is none.
int BcryptCost(std::string_view hash);

// Checks Basic credentials against bcrypt hashes. Unknown users cost one bcrypt too, against a
// dummy hash of the highest configured cost, so response time does not tell whether a user
// exists. Successful checks are remembered (bounded), so a scraper with the right password
// does not pay a bcrypt on every scrape; failures are never remembered.
class BasicAuthenticator {
 public:
  // `users`: user name -> bcrypt hash. Empty: every request is allowed.
  explicit BasicAuthenticator(std::map<std::string, std::string> users);

  bool enabled() const { return !users_.empty(); }
  // `authorization`: the Authorization header, nullopt when the request has none.
  bool Check(std::optional<std::string_view> authorization);

  uint64_t cache_hits() const;

 private:
  bool Verify(const BasicCredentials& credentials);

  static constexpr size_t kCacheSize = 32;

  std::map<std::string, std::string> users_;
  std::string dummy_hash_;
  mutable std::mutex mutex_;
  std::list<std::string> cache_;  // digests of accepted user/password/hash triples, newest first
  uint64_t cache_hits_ = 0;
};

}  // namespace meshflow::web
