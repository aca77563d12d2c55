#include "common/web/basic_auth.h"

#include <gtest/gtest.h>

namespace meshflow::web {
namespace {

using Users = std::map<std::string, std::string>;

// Made by libxcrypt (cost 4 keeps the test fast); the second is from the Openwall
// crypt_blowfish test vectors, so a second implementation vouches for the algorithm.
constexpr char kS3cretHash[] = "$2b$04$hWnW5P6bjIh0g9PTnF3fpeXVaEIRN4P0uhbZ3cBNlA8pNRfcuKj6G";
constexpr char kOpenwallHash[] = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

// "Basic " + base64("alice:s3cret")
constexpr char kAliceRight[] = "Basic YWxpY2U6czNjcmV0";
// "Basic " + base64("alice:wrong")
constexpr char kAliceWrong[] = "Basic YWxpY2U6d3Jvbmc=";
// "Basic " + base64("mallory:s3cret")
constexpr char kUnknownUser[] = "Basic bWFsbG9yeTpzM2NyZXQ=";

TEST(ParseBasicAuthorizationTest, DecodesUserAndPassword) {
  auto c = ParseBasicAuthorization(kAliceRight);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "alice");
  EXPECT_EQ(c->password, "s3cret");
}

TEST(ParseBasicAuthorizationTest, SchemeIsCaseInsensitiveAndPasswordMayHoldColons) {
  // base64("bob:a:b:c")
  auto c = ParseBasicAuthorization("bAsIc Ym9iOmE6Yjpj");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "bob");
  EXPECT_EQ(c->password, "a:b:c");
  // base64("u:") - an empty password is still credentials.
  c = ParseBasicAuthorization("Basic dTo=");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->password, "");
}

TEST(ParseBasicAuthorizationTest, RefusesMalformedHeaders) {
  for (const char* bad : {"", "Basic", "Basic ", "Bearer YWxpY2U6czNjcmV0", "BasicYWxpY2U6czNjcmV0",
                          "Basic YWxpY2U6czNjcmV0=",           // bad length
                          "Basic YWxp*2U6", "Basic YWxpY2U=",  // no colon
                          "Basic YW=jY2U6", "Basic ===="}) {
    EXPECT_FALSE(ParseBasicAuthorization(bad)) << bad;
  }
}

TEST(VerifyPasswordHashTest, ChecksBcrypt) {
  EXPECT_TRUE(VerifyPasswordHash("s3cret", kS3cretHash));
  EXPECT_FALSE(VerifyPasswordHash("s3cret ", kS3cretHash));
  EXPECT_FALSE(VerifyPasswordHash("", kS3cretHash));
  EXPECT_TRUE(VerifyPasswordHash("U*U", kOpenwallHash));
  EXPECT_FALSE(VerifyPasswordHash("U*V", kOpenwallHash));
  // $2y$ (PHP, htpasswd) is the same algorithm.
  std::string y = kS3cretHash;
  y[2] = 'y';
  EXPECT_TRUE(VerifyPasswordHash("s3cret", y));
  EXPECT_FALSE(VerifyPasswordHash("s3cret", "not a hash"));
  EXPECT_FALSE(VerifyPasswordHash("s3cret", ""));
  EXPECT_FALSE(VerifyPasswordHash(std::string("s3cret\0x", 8), kS3cretHash));
}

TEST(VerifyPasswordHashTest, BcryptCost) {
  EXPECT_EQ(BcryptCost(kS3cretHash), 4);
  EXPECT_EQ(BcryptCost("$2y$12$abc"), 12);
  EXPECT_EQ(BcryptCost("$6$abc"), 0);
}

TEST(BasicAuthenticatorTest, WithoutUsersEverythingPasses) {
  BasicAuthenticator auth(Users{});
  EXPECT_FALSE(auth.enabled());
  EXPECT_TRUE(auth.Check(std::nullopt));
}

TEST(BasicAuthenticatorTest, AcceptsOnlyTheRightPassword) {
  BasicAuthenticator auth(Users{{"alice", kS3cretHash}});
  EXPECT_TRUE(auth.enabled());
  EXPECT_FALSE(auth.Check(std::nullopt));
  EXPECT_FALSE(auth.Check("Basic garbage"));
  EXPECT_FALSE(auth.Check(kAliceWrong));
  EXPECT_FALSE(auth.Check(kUnknownUser));
  EXPECT_TRUE(auth.Check(kAliceRight));
}

TEST(BasicAuthenticatorTest, RemembersOnlySuccess) {
  BasicAuthenticator auth(Users{{"alice", kS3cretHash}});
  EXPECT_FALSE(auth.Check(kAliceWrong));
  EXPECT_FALSE(auth.Check(kAliceWrong));
  EXPECT_EQ(auth.cache_hits(), 0u);
  EXPECT_TRUE(auth.Check(kAliceRight));
  EXPECT_TRUE(auth.Check(kAliceRight));
  EXPECT_EQ(auth.cache_hits(), 1u);
  // A remembered password for one user does not open another.
  BasicAuthenticator two(Users{{"alice", kS3cretHash}, {"bob", kOpenwallHash}});
  EXPECT_TRUE(two.Check(kAliceRight));
  // "Basic " + base64("bob:s3cret")
  EXPECT_FALSE(two.Check("Basic Ym9iOnMzY3JldA=="));
}

}  // namespace
}  // namespace meshflow::web
