#include "common/mesh/mesh_api.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace meshflow::mesh {
namespace {

struct Case {
  std::string query;
  bool ok;
  std::string why;  // part of the reason when refused
};

TEST(MeshQueryParsing, AcceptsWhatThePageSendsAndRefusesTheRestWithAReason) {
  const Case cases[] = {
      {"", true, ""},
      {"window=5m", true, ""},
      {"window=15m", true, ""},
      {"window=90s&method=udp", true, ""},
      {"window=1m&method=icmp&src=ct-serv-jp&dst=acer-agent", true, ""},
      {"src=a%2Eb&dst=c", true, ""},
      {"window=16m", false, "longer than the kept history"},
      {"window=1h", false, "longer than the kept history"},
      {"window=0s", false, "positive whole number"},
      {"window=-5m", false, "positive whole number"},
      {"window=5", false, "positive whole number"},
      {"window=5d", false, "positive whole number"},
      {"window=1.5m", false, "positive whole number"},
      {"window=99999999999999999999s", false, "positive whole number"},
      {"window=4294967296s", false, "positive whole number"},
      {"window=", false, "positive whole number"},
      {"window=5m&window=5m", false, "given twice"},
      {"method=ping", false, "expected icmp, udp or tcp"},
      {"src=a", false, "go together"},
      {"src=a&dst=b&src=c", false, "given twice"},
      {"src=%3Cscript%3E&dst=b", false, "node name"},
      {"src=a%2&dst=b", false, "percent-encoding"},
      {"foo=1", false, "unknown query parameter"},
      {"a=1&b=2&c=3&d=4&e=5", false, "more than 4"},
      {std::string(600, 'x'), false, "longer than 512"},
  };
  for (const auto& c : cases) {
    std::string why;
    const auto q = ParseMeshQuery(c.query, 900, &why);
    EXPECT_EQ(q.has_value(), c.ok) << c.query << ": " << why;
    if (!c.ok) {
      EXPECT_NE(why.find(c.why), std::string::npos) << c.query << ": " << why;
    }
  }
  const auto q = ParseMeshQuery("window=90s&method=tcp&src=a&dst=b", 900, nullptr);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->window_seconds, 90);
  EXPECT_EQ(q->method, "tcp");
  EXPECT_EQ(q->series_src, "a");
  EXPECT_EQ(q->series_dst, "b");
}

// Random bytes and random recombinations of valid pieces: every answer is a query or a reason.
TEST(MeshQueryParsing, RandomInputNeverCrashesAndAlwaysSaysWhy) {
  std::mt19937 rng(21);
  const std::string pieces[] = {"window=", "5m", "&", "=", "%", "%41", "method=", "udp",  "src=",
                                "dst=",    "a",  "-", "1", "h", "s",   "\x01",    "\xff", "+"};
  for (int i = 0; i < 20000; ++i) {
    std::string q;
    const int n = static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) q += pieces[rng() % std::size(pieces)];
    std::string why;
    const auto parsed = ParseMeshQuery(q, 900, &why);
    if (!parsed) {
      ASSERT_FALSE(why.empty()) << q;
    } else {
      ASSERT_GT(parsed->window_seconds, 0);
      ASSERT_LE(parsed->window_seconds, 900);
    }
  }
}

TEST(MeshApi, BadInputIsA400WithAReasonAndTheJsonIsWellFormed) {
  FakeClock clock;
  MeshHistory history;
  const auto routes = MeshRoutes(history, clock);
  HttpHandler api;
  for (const auto& [path, handler] : routes)
    if (path == "/api/v1/mesh") api = handler;
  ASSERT_TRUE(api);
  HttpRequest bad;
  bad.query = "window=-1m";
  const auto r = api(bad);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("\"error\":\"window"), std::string::npos) << r.body;
  HttpRequest good;
  good.query = "window=5m";
  const auto ok = api(good);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.content_type, "application/json");
  EXPECT_EQ(ok.body.front(), '{');
  EXPECT_NE(ok.body.find("\"window_seconds\":300"), std::string::npos) << ok.body;
  // Times keep every digit (FakeClock's wall time starts at 1.7e9 s plus its 1 s).
  EXPECT_NE(ok.body.find("\"generated_at\":1700000001.000,"), std::string::npos) << ok.body;
}

// The route writes each answer into the memory of earlier ones; nothing of an earlier answer
// (another window, method or pair, more links, points) may show in a later one.
TEST(MeshApi, AnswersInReusedMemoryEqualFreshOnes) {
  FakeClock clock;
  MeshHistory history;
  const std::vector<std::string> nodes = {"a", "b", "c", "d"};
  for (int round = 0; round < 40; ++round) {
    clock.Advance(std::chrono::seconds(10));
    const double now = std::chrono::duration<double>(clock.Wall().time_since_epoch()).count();
    for (size_t i = 0; i < nodes.size(); ++i) {
      NodeReading r;
      for (size_t j = 0; j < nodes.size(); ++j) {
        if (i == j) continue;
        // Node d probes by icmp only; the others also by udp, with loss on some rounds.
        for (const char* method : {"udp", "icmp"}) {
          if (nodes[i] == "d" && std::string(method) == "udp") continue;
          LinkReading l;
          const double sent = 10.0 * round;
          const double lost = static_cast<double>((round * (i + 1) * (j + 2)) % 7 / 3);
          l.buckets = {{0.001 * (j + 1), sent * 0.6}, {0.05, sent - lost}, {INFINITY, sent - lost}};
          l.received = sent - lost;
          l.lost = lost * round / 10;
          l.has_direction = std::string(method) == "udp";
          r.links[{nodes[j], method}] = l;
        }
        r.overlay_bytes[{nodes[i], nodes[j], "redis"}] = 1000.0 * round * (i + 1);
      }
      r.path_mtu_bytes[nodes[(i + 1) % nodes.size()]] = 1420;
      history.Observe(nodes[i], r, now);
    }
  }
  HttpHandler api;
  for (const auto& [path, handler] : MeshRoutes(history, clock))
    if (path == "/api/v1/mesh") api = handler;
  ASSERT_TRUE(api);
  const double now = std::chrono::duration<double>(clock.Wall().time_since_epoch()).count();
  const std::vector<std::string> queries = {"window=5m",
                                            "window=5m&method=udp",
                                            "window=1m&method=icmp",
                                            "window=5m&src=a&dst=b",
                                            "window=30s",
                                            "window=5m&method=udp",
                                            "window=2m&src=c&dst=d",
                                            "window=5m",
                                            "window=1m&method=udp"};
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& text : queries) {
      HttpRequest request;
      request.query = text;
      auto r = api(request);
      ASSERT_EQ(r.status, 200) << text << ": " << r.body;
      std::string why;
      const auto query = ParseMeshQuery(text, history.retention_seconds(), &why);
      ASSERT_TRUE(query) << why;
      EXPECT_EQ(r.body, MeshJson(history.Query(*query, now))) << text;
      ASSERT_TRUE(r.recycle_body);
      r.recycle_body(std::move(r.body));  // as the server does once the body is sent
    }
  }
}

TEST(MeshApi, ThePageIsServedFromTheBinaryWithAPolicyAgainstOtherOrigins) {
  FakeClock clock;
  MeshHistory history;
  for (const auto& [path, handler] : MeshRoutes(history, clock)) {
    if (path == "/api/v1/mesh") continue;
    const auto r = handler(HttpRequest{});
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_FALSE(r.body.empty()) << path;
    bool csp = false;
    for (const auto& [k, v] : r.headers)
      if (k == "Content-Security-Policy") csp = v.find("default-src 'none'") == 0;
    EXPECT_TRUE(csp) << path;
  }
}

TEST(MeshApi, NumbersKeepFiveSignificantDigitsAsPrintfG) {
  // The JSON writer formats numbers by hand; each must read back as %.5g's text does.
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> exponent(-6, 11);
  for (int i = 0; i < 20000; ++i) {
    const double v = (i % 2 ? -1 : 1) * std::pow(10.0, exponent(rng));
    MeshView view;
    view.traffic.push_back({"a", "b", "r", "a", v});
    const std::string body = MeshJson(view);
    const std::string key = "\"bytes_per_second\":";
    const auto at = body.find(key);
    ASSERT_NE(at, std::string::npos);
    const char* text = body.c_str() + at + key.size();
    char* end = nullptr;
    const double read = std::strtod(text, &end);
    ASSERT_EQ(*end, '}') << body;
    char want_text[32];
    std::snprintf(want_text, sizeof(want_text), "%.5g", v);
    const double want = std::strtod(want_text, nullptr);
    // Whole numbers from 10^5 to 10^10 keep all their digits: within half a unit of v.
    if (std::fabs(v) >= 1e5 && std::fabs(v) < 1e10) {
      EXPECT_LE(std::fabs(read - v), 0.5)
          << std::string(text, static_cast<const char*>(end)) << " for " << v;
    } else {
      EXPECT_EQ(read, want) << std::string(text, static_cast<const char*>(end)) << " for " << v
                            << " (%.5g: " << want_text << ")";
    }
  }
  for (const auto& [v, text] :
       std::vector<std::pair<double, std::string>>{{0, "0"},
                                                   {1280, "1280"},
                                                   {0.00081234, "0.00081234"},
                                                   {9.99996, "10"},
                                                   {0.06, "0.06"},
                                                   {-2.5, "-2.5"},
                                                   {240000, "240000"},
                                                   {NAN, "null"}}) {
    MeshView view;
    view.traffic.push_back({"a", "b", "r", "a", v});
    EXPECT_NE(MeshJson(view).find("\"bytes_per_second\":" + text + "}"), std::string::npos)
        << MeshJson(view);
  }
}

}  // namespace
}  // namespace meshflow::mesh
