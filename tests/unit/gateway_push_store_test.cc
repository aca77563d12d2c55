#include <gtest/gtest.h>

#include "common/http/gzip.h"
#include "common/http/http_server.h"
#include "gateway/push_store.h"

namespace meshflow::gateway {
namespace {

using std::chrono::seconds;

constexpr char kAcerToken[] = "acer-agent-token-0123456789";
constexpr char kLaptopToken[] = "laptop-agent-token-abcdefghij";

class PushStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PushStore::Settings s;
    s.tokens = {{"acer-agent", kAcerToken}, {"laptop-agent", kLaptopToken}};
    s.default_interval = seconds(5);
    s.max_body_bytes = 1024;
    store_.Configure(s);
  }

  PushOutcome Push(std::string node, std::string token, std::string body) {
    PushRequest r;
    r.node = std::move(node);
    r.authorization = "Bearer " + token;
    r.content_type = "text/plain; version=0.0.4";
    r.body = std::move(body);
    return store_.Push(r);
  }

  FakeClock clock_;
  PushStore store_{clock_};
};

TEST_F(PushStoreTest, FreshUntilThreeIntervalsThenStale) {
  EXPECT_EQ(store_.Get("acer-agent").state, PushStore::State::kNever);
  ASSERT_TRUE(Push("acer-agent", kAcerToken, "m 1\n").accepted());
  auto got = store_.Get("acer-agent");
  ASSERT_EQ(got.state, PushStore::State::kFresh);
  EXPECT_EQ(got.body->body, "m 1\n");
  EXPECT_EQ(got.body->exposition->sample_count, 1u);
  clock_.Advance(seconds(15));
  EXPECT_EQ(store_.Get("acer-agent").state, PushStore::State::kFresh);
  clock_.Advance(std::chrono::milliseconds(1));
  got = store_.Get("acer-agent");
  EXPECT_EQ(got.state, PushStore::State::kStale);
  EXPECT_EQ(got.body->body, "m 1\n");  // kept, but no longer served
  // A new push makes it fresh again.
  ASSERT_TRUE(Push("acer-agent", kAcerToken, "m 2\n").accepted());
  EXPECT_EQ(store_.Get("acer-agent").state, PushStore::State::kFresh);
}

TEST_F(PushStoreTest, AnnouncedIntervalSetsTheTtl) {
  PushRequest r;
  r.node = "acer-agent";
  r.authorization = std::string("Bearer ") + kAcerToken;
  r.announced_interval = seconds(2);
  r.body = "m 1\n";
  ASSERT_TRUE(store_.Push(r).accepted());
  clock_.Advance(seconds(6));
  EXPECT_EQ(store_.Get("acer-agent").state, PushStore::State::kFresh);
  clock_.Advance(seconds(1));
  EXPECT_EQ(store_.Get("acer-agent").state, PushStore::State::kStale);
}

TEST_F(PushStoreTest, ConfiguredTtlWins) {
  PushStore::Settings s;
  s.tokens = {{"acer-agent", kAcerToken}};
  s.ttl = seconds(60);
  store_.Configure(s);
  ASSERT_TRUE(Push("acer-agent", kAcerToken, "m 1\n").accepted());
  clock_.Advance(seconds(59));
  EXPECT_EQ(store_.Get("acer-agent").state, PushStore::State::kFresh);
  clock_.Advance(seconds(2));
  EXPECT_EQ(store_.Get("acer-agent").state, PushStore::State::kStale);
}

TEST_F(PushStoreTest, RejectionsChangeNothingAndAreCountedByReason) {
  ASSERT_TRUE(Push("acer-agent", kAcerToken, "good 1\n").accepted());
  struct Case {
    PushOutcome outcome;
    int status;
    const char* reason;
  };
  PushRequest no_token;
  no_token.node = "acer-agent";
  no_token.body = "evil 1\n";
  PushRequest gzip;
  gzip.node = "acer-agent";
  gzip.authorization = std::string("Bearer ") + kAcerToken;
  gzip.content_encoding = "br";
  gzip.body = "evil 1\n";
  const Case cases[] = {
      {store_.Push(no_token), 401, "missing_token"},
      {Push("acer-agent", "not-the-token-at-all-xx", "evil 1\n"), 401, "bad_token"},
      {Push("acer-agent", kLaptopToken, "evil 1\n"), 403, "wrong_node"},
      {Push("ct-serv-jp", kAcerToken, "evil 1\n"), 404, "unknown_node"},
      {Push("acer-agent", kAcerToken, std::string(2000, 'a')), 413, "too_large"},
      {Push("acer-agent", kAcerToken, "evil{ 1\n"), 400, "malformed"},
      {store_.Push(gzip), 415, "unsupported_encoding"},
  };
  for (const auto& c : cases) {
    EXPECT_FALSE(c.outcome.accepted()) << c.reason;
    EXPECT_EQ(c.outcome.http_status, c.status) << c.reason;
    EXPECT_EQ(c.outcome.reason, c.reason);
  }
  const auto got = store_.Get("acer-agent");
  ASSERT_EQ(got.state, PushStore::State::kFresh);
  EXPECT_EQ(got.body->body, "good 1\n");
  EXPECT_EQ(store_.Get("laptop-agent").state, PushStore::State::kNever);
  const auto counts = store_.RejectedByReason();
  for (const auto& c : cases) EXPECT_EQ(counts.at(c.reason), 1u) << c.reason;
  EXPECT_EQ(counts.at("unsupported_content_type"), 0u);
}

TEST_F(PushStoreTest, GzipBodiesAreInflatedWithinTheLimit) {
  PushRequest r;
  r.node = "acer-agent";
  r.authorization = std::string("Bearer ") + kAcerToken;
  r.content_encoding = "gzip";
  r.body = GzipCompress("m 1\n");
  ASSERT_TRUE(store_.Push(r).accepted());
  EXPECT_EQ(store_.Get("acer-agent").body->body, "m 1\n");
  // 512 KiB of zeros compresses below the 1 KiB limit but must not inflate past it.
  r.body = GzipCompress(std::string(512 << 10, '0'), 6);
  ASSERT_LT(r.body.size(), 1024u);
  auto out = store_.Push(r);
  EXPECT_EQ(out.reason, "too_large");
  EXPECT_NE(out.message.find("inflates"), std::string::npos);
  r.body = "not gzip at all";
  out = store_.Push(r);
  EXPECT_EQ(out.reason, "malformed");
  r.body = GzipCompress("m 2\n").substr(0, 10);
  EXPECT_EQ(store_.Push(r).reason, "malformed");
  EXPECT_EQ(store_.Get("acer-agent").body->body, "m 1\n");
}

TEST(Gzip, RoundTripAndBounds) {
  const std::string text(100000, 'x');
  bool too_large = false;
  std::string why;
  EXPECT_EQ(http::GunzipBounded(GzipCompress(text), text.size(), &too_large, &why), text);
  EXPECT_FALSE(http::GunzipBounded(GzipCompress(text), text.size() - 1, &too_large, &why));
  EXPECT_TRUE(too_large);
  EXPECT_FALSE(http::GunzipBounded(GzipCompress("a") + "trailing", 10, &too_large, &why));
  EXPECT_FALSE(too_large);
  EXPECT_NE(why.find("after the end"), std::string::npos);
}

TEST_F(PushStoreTest, MalformedMessageNamesTheLine) {
  const auto out = Push("acer-agent", kAcerToken, "ok 1\nbad line here\n");
  EXPECT_NE(out.message.find("line 2"), std::string::npos) << out.message;
}

TEST_F(PushStoreTest, ReconfigureDropsRemovedNodes) {
  ASSERT_TRUE(Push("laptop-agent", kLaptopToken, "m 1\n").accepted());
  PushStore::Settings s;
  s.tokens = {{"acer-agent", kAcerToken}};
  store_.Configure(s);
  EXPECT_EQ(store_.Get("laptop-agent").state, PushStore::State::kUnknownNode);
  EXPECT_FALSE(store_.IsPushNode("laptop-agent"));
}

TEST_F(PushStoreTest, StoresTheBodyWrittenBackWithAFinalNewline) {
  ASSERT_TRUE(Push("acer-agent", kAcerToken, "# TYPE c counter\nc_total 1\t\nm 2").accepted());
  EXPECT_EQ(store_.Get("acer-agent").body->body, "# TYPE c counter\nc_total 1\nm 2\n");
}

TEST_F(PushStoreTest, RefusesEmptyPushesAndUnknownLengths) {
  EXPECT_EQ(Push("acer-agent", kAcerToken, "").reason, "empty");
  EXPECT_EQ(Push("acer-agent", kAcerToken, "# just a comment\n").reason, "empty");
  PushRequest r;
  r.node = "acer-agent";
  r.authorization = std::string("Bearer ") + kAcerToken;
  r.length_known = false;
  r.body = "m 1\n";
  const auto out = store_.Push(r);
  EXPECT_EQ(out.http_status, 411);
  EXPECT_EQ(out.reason, "length_required");
  EXPECT_EQ(store_.Get("acer-agent").state, PushStore::State::kNever);
}

// One node's type for a family must not hide another node's family in /federate.
TEST_F(PushStoreTest, RefusesATypeAnotherNodeDeclaresDifferently) {
  ASSERT_TRUE(Push("acer-agent", kAcerToken, "# TYPE shared counter\nshared 1\n").accepted());
  const auto out = Push("laptop-agent", kLaptopToken, "# TYPE shared gauge\nshared 1\n");
  EXPECT_EQ(out.http_status, 409);
  EXPECT_EQ(out.reason, "type_conflict");
  // The same type is fine, and a node may change the type only it uses.
  EXPECT_TRUE(Push("laptop-agent", kLaptopToken, "# TYPE shared counter\nshared 2\n").accepted());
  ASSERT_TRUE(Push("acer-agent", kAcerToken, "other 1\n").accepted());
  ASSERT_TRUE(Push("laptop-agent", kLaptopToken, "# TYPE shared gauge\nshared 3\n").accepted());
}

TEST_F(PushStoreTest, SeriesPerPushAreCapped) {
  PushStore::Settings s;
  s.tokens = {{"acer-agent", kAcerToken}};
  s.max_series_per_push = 3;
  store_.Configure(s);
  EXPECT_TRUE(Push("acer-agent", kAcerToken, "a 1\nb 1\nc 1\n").accepted());
  const auto out = Push("acer-agent", kAcerToken, "a 1\nb 1\nc 1\nd 1\n");
  EXPECT_EQ(out.http_status, 413);
  EXPECT_EQ(out.reason, "too_many_series");
}

TEST(PushStoreBudget, RefusesPastTheMemoryBudgetAndReleasesReplacedPushes) {
  FakeClock clock;
  MemoryBudget budget(64 << 10);
  PushStore store(clock, &budget);
  PushStore::Settings s;
  for (int i = 0; i < 100; ++i) s.tokens["n" + std::to_string(i)] = "token-" + std::to_string(i);
  store.Configure(s);
  std::string body;
  for (int i = 0; i < 20; ++i)
    body += "m{peer=\"a-rather-long-peer-name-" + std::to_string(i) + "\"} 1\n";
  auto push = [&](int i) {
    PushRequest r;
    r.node = "n" + std::to_string(i);
    r.authorization = "Bearer token-" + std::to_string(i);
    r.body = body;
    return store.Push(r);
  };
  int accepted = 0;
  int refused = 0;
  for (int i = 0; i < 100; ++i) {
    const auto out = push(i);
    if (out.accepted()) ++accepted;
    if (out.http_status == 429) ++refused;
  }
  EXPECT_GT(accepted, 0);
  EXPECT_GT(refused, 0);
  EXPECT_EQ(accepted + refused, 100);
  EXPECT_LE(budget.used(), budget.budget());
  EXPECT_EQ(store.RejectedByReason().at("memory_budget"), static_cast<uint64_t>(refused));
  // A node that already stored a push can replace it: its old push is released.
  const size_t used = budget.used();
  EXPECT_TRUE(push(0).accepted());
  EXPECT_EQ(budget.used(), used);
  // Dropping nodes gives their bytes back.
  store.Configure(PushStore::Settings{});
  EXPECT_EQ(budget.used(), 0u);
}

TEST(ConstantTimeEquals, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace meshflow::gateway
