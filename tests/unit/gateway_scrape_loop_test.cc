#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "common/http/http_server.h"
#include "gateway/push_store.h"
#include "gateway/remote_write/write_request.h"
#include "gateway/scrape_loop.h"
#include "gateway/scraper.h"
#include "gateway/targets.h"

namespace meshflow::gateway {
namespace {

using remote_write::IsStaleNaN;
using remote_write::Labels;
using remote_write::SeriesSample;
using std::chrono::seconds;

constexpr char kToken[] = "laptop-agent-token-0123456789";

class NoDns final : public Resolver {
 public:
  std::vector<IpAddress> Resolve(const std::string&) override { return {}; }
  std::optional<std::string> ReverseLookup(const IpAddress&) override { return std::nullopt; }
};

class RecordingSink final : public remote_write::SampleSink {
 public:
  void Append(const std::vector<SeriesSample>& samples) override { batches.push_back(samples); }
  std::vector<std::vector<SeriesSample>> batches;
};

std::string Get(const remote_write::LabelSet& labels, const std::string& name) {
  for (const auto& [n, v] : labels.ToLabels()) {
    if (n == name) return v;
  }
  return "";
}

// name{node} -> value, from one batch.
std::map<std::string, double> ByName(const std::vector<SeriesSample>& batch) {
  std::map<std::string, double> out;
  for (const auto& s : batch)
    out[Get(*s.labels, "__name__") + "{" + Get(*s.labels, "node") + "}"] = s.value;
  return out;
}

class ScrapeLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions options;
    options.listen_addresses = {"127.0.0.1:0"};
    options.threads = 2;
    exporter_ = std::make_unique<HttpServer>(options);
    exporter_->Route("/metrics", {"GET"},
                     [this](const HttpRequest&) { return HttpResponse::Text(200, body_); });
    exporter_->Start();
    const int port = exporter_->BoundPorts().at(0);
    GatewayConfig config;
    config.static_targets = {{"alive", "http://127.0.0.1:" + std::to_string(port) + "/metrics"},
                             // Port 1 on loopback refuses at once.
                             {"dead", "http://127.0.0.1:1/metrics"}};
    config.push_nodes = {{"laptop-agent", "", kToken}};
    registry_.Configure(config);
    PushStore::Settings push;
    push.tokens = {{"laptop-agent", kToken}};
    push.ttl = seconds(15);
    push_store_.Configure(push);
    ScrapeLoop::Settings s;
    s.interval = seconds(5);
    s.timeout = seconds(5);
    loop_.Configure(s);
  }

  bool Push(const std::string& body) {
    PushRequest r;
    r.node = "laptop-agent";
    r.authorization = std::string("Bearer ") + kToken;
    r.content_type = "text/plain; version=0.0.4";
    r.body = body;
    return push_store_.Push(r).accepted();
  }

  std::string body_ =
      "# TYPE m counter\nm_total{iface=\"eth0\",node=\"spoofed\"} 3\n# TYPE g gauge\ng 7\n";
  std::unique_ptr<HttpServer> exporter_;
  FakeClock clock_;
  NoDns dns_;
  TargetRegistry registry_{dns_, clock_};
  PushStore push_store_{clock_};
  Scraper scraper_{Scraper::Settings{}};
  RecordingSink sink_;
  ScrapeLoop loop_{registry_, push_store_, scraper_, sink_, clock_};
};

TEST_F(ScrapeLoopTest, ScrapesSynthesizesAndMarksStale) {
  loop_.RunOnce();
  ASSERT_EQ(sink_.batches.size(), 1u);
  auto got = ByName(sink_.batches[0]);
  EXPECT_EQ(got["up{alive}"], 1);
  EXPECT_EQ(got["up{dead}"], 0);
  EXPECT_EQ(got["up{laptop-agent}"], 0);  // has not pushed yet
  EXPECT_EQ(got["m_total{alive}"], 3);
  EXPECT_EQ(got["g{alive}"], 7);
  EXPECT_EQ(got["scrape_samples_scraped{alive}"], 2);
  EXPECT_EQ(got["scrape_samples_scraped{dead}"], 0);
  EXPECT_TRUE(got.contains("scrape_duration_seconds{alive}"));
  EXPECT_TRUE(got.contains("scrape_duration_seconds{dead}"));
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Wall().time_since_epoch())
          .count();
  for (const auto& s : sink_.batches[0]) {
    EXPECT_EQ(s.timestamp_ms, now_ms);
    const Labels labels = s.labels->ToLabels();
    EXPECT_TRUE(std::is_sorted(labels.begin(), labels.end()));
    if (Get(*s.labels, "__name__") == "m_total") {
      EXPECT_EQ(labels, (Labels{{"__name__", "m_total"},
                                {"exported_node", "spoofed"},
                                {"iface", "eth0"},
                                {"instance", "alive"},
                                {"job", "meshflow"},
                                {"node", "alive"}}));
    }
  }

  // g vanishes: its series ends with a stale marker; the same label sets are reused.
  body_ = "# TYPE m counter\nm_total{iface=\"eth0\",node=\"spoofed\"} 4\n";
  clock_.Advance(seconds(5));
  loop_.RunOnce();
  ASSERT_EQ(sink_.batches.size(), 2u);
  got = ByName(sink_.batches[1]);
  EXPECT_TRUE(std::isnan(got["g{alive}"]));
  EXPECT_EQ(got["m_total{alive}"], 4);
  for (const auto& s : sink_.batches[1]) {
    if (std::isnan(s.value)) {
      EXPECT_TRUE(IsStaleNaN(s.value));
    }
    if (Get(*s.labels, "__name__") == "m_total") {
      for (const auto& old : sink_.batches[0]) {
        if (*old.labels == *s.labels) {
          EXPECT_EQ(old.labels.get(), s.labels.get());
        }
      }
    }
  }

  // The exporter goes away: every series of the node but the synthesized ones ends.
  exporter_->Stop();
  clock_.Advance(seconds(5));
  loop_.RunOnce();
  got = ByName(sink_.batches[2]);
  EXPECT_EQ(got["up{alive}"], 0);
  EXPECT_TRUE(IsStaleNaN(got["m_total{alive}"]));
  EXPECT_EQ(got["scrape_samples_scraped{alive}"], 0);
}

TEST_F(ScrapeLoopTest, PushesAreTakenOnArrivalAndEndAtTheirTtl) {
  clock_.Advance(seconds(1));
  ASSERT_TRUE(Push("# TYPE t gauge\nt{x=\"1\"} 42\n"));
  loop_.TakePush("laptop-agent");
  ASSERT_EQ(sink_.batches.size(), 1u);
  auto got = ByName(sink_.batches[0]);
  EXPECT_EQ(got["t{laptop-agent}"], 42);
  EXPECT_EQ(got["up{laptop-agent}"], 1);
  EXPECT_EQ(got["scrape_samples_scraped{laptop-agent}"], 1);
  // Taken once only, by TakePush or by the round, whichever comes first.
  loop_.TakePush("laptop-agent");
  EXPECT_EQ(sink_.batches.size(), 1u);
  loop_.RunOnce();
  EXPECT_FALSE(ByName(sink_.batches.back()).contains("t{laptop-agent}"));

  clock_.Advance(seconds(16));  // past the 15 s TTL
  loop_.RunOnce();
  got = ByName(sink_.batches.back());
  EXPECT_EQ(got["up{laptop-agent}"], 0);
  EXPECT_TRUE(IsStaleNaN(got["t{laptop-agent}"]));
  // Marked once: the next round has no marker left to send.
  clock_.Advance(seconds(5));
  loop_.RunOnce();
  EXPECT_FALSE(ByName(sink_.batches.back()).contains("t{laptop-agent}"));
}

TEST_F(ScrapeLoopTest, NodesThatLeaveTheConfigEnd) {
  loop_.RunOnce();
  registry_.Configure(GatewayConfig{});
  clock_.Advance(seconds(5));
  loop_.RunOnce();
  ASSERT_EQ(sink_.batches.size(), 2u);
  size_t markers = 0;
  for (const auto& s : sink_.batches[1]) {
    EXPECT_TRUE(IsStaleNaN(s.value));
    ++markers;
  }
  // alive: m_total, g, up, duration, samples_scraped; dead and laptop-agent: their synthesized.
  EXPECT_EQ(markers, 5u + 3u + 2u);
}

}  // namespace
}  // namespace meshflow::gateway
