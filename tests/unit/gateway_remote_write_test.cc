#include <gtest/gtest.h>
#include <re2/re2.h>
#include <snappy.h>

#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>

#include "common/core/config_reader.h"
#include "gateway/gateway_config.h"
#include "gateway/remote_write/endpoint_queue.h"
#include "gateway/remote_write/relabel.h"
#include "gateway/remote_write/remote_writer.h"
#include "gateway/remote_write/response.h"
#include "gateway/remote_write/write_request.h"
#include "prompb/remote.pb.h"

namespace meshflow::gateway::remote_write {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

std::shared_ptr<const LabelSet> L(const Labels& labels) {
  return std::make_shared<const LabelSet>(labels);
}

prometheus::WriteRequest Decode(const std::string& compressed) {
  std::string raw;
  EXPECT_TRUE(snappy::Uncompress(compressed.data(), compressed.size(), &raw));
  prometheus::WriteRequest req;
  EXPECT_TRUE(req.ParseFromString(raw));
  return req;
}

TEST(WriteRequestTest, LibprotobufDecodesWhatIsEncoded) {
  auto a = L({{"__name__", "up"}, {"job", "meshflow"}, {"node", "acer-agent"}});
  auto b = L({{"__name__", "x"}, {"node", "é ü"}});
  std::vector<SeriesSample> samples = {{a, 1700000000000, 1},
                                       {a, 1700000005000, 0},
                                       {b, -5, -2.5},
                                       {b, 1700000000000, StaleNaN()},
                                       {a, 1700000010000, 1e300}};
  const auto req = Decode(SnappyCompress(EncodeWriteRequest(samples)));
  ASSERT_EQ(req.timeseries_size(), 3);  // a (2 samples), b (2), a again
  const auto& s0 = req.timeseries(0);
  ASSERT_EQ(s0.labels_size(), 3);
  EXPECT_EQ(s0.labels(0).name(), "__name__");
  EXPECT_EQ(s0.labels(0).value(), "up");
  EXPECT_EQ(s0.labels(2).value(), "acer-agent");
  ASSERT_EQ(s0.samples_size(), 2);
  EXPECT_EQ(s0.samples(0).timestamp(), 1700000000000);
  EXPECT_EQ(s0.samples(1).value(), 0);
  const auto& s1 = req.timeseries(1);
  EXPECT_EQ(s1.labels(1).value(), "é ü");
  EXPECT_EQ(s1.samples(0).timestamp(), -5);
  EXPECT_EQ(s1.samples(0).value(), -2.5);
  EXPECT_TRUE(IsStaleNaN(s1.samples(1).value()));
  EXPECT_FALSE(IsStaleNaN(std::nan("")));
  EXPECT_EQ(req.timeseries(2).samples(0).value(), 1e300);
  EXPECT_EQ(
      Decode(SnappyCompress(EncodeWriteRequest(std::span<const SeriesSample>()))).timeseries_size(),
      0);
}

TEST(WriteRequestTest, LabelSetKeepsItsLabelsAndMergesExternalOnes) {
  // A value past 127 bytes takes a two-byte length; an empty value is kept as written.
  const Labels labels{
      {"__name__", "m"}, {"empty", ""}, {"long", std::string(300, 'v')}, {"node", "acer"}};
  const LabelSet set(labels);
  EXPECT_EQ(set.ToLabels(), labels);
  EXPECT_EQ(set.hash(), HashLabels(labels));
  EXPECT_EQ(set, LabelSet(labels));
  EXPECT_FALSE(set == LabelSet(Labels{{"__name__", "m"}}));

  // External labels go in name order around the series' own; the series' own node wins.
  auto a = std::make_shared<const LabelSet>(labels);
  std::vector<SeriesSample> samples = {{a, 1000, 1}, {a, 2000, 2}};
  const Labels external{{"a", "first"}, {"cluster", "home"}, {"node", "ignored"}, {"z", "last"}};
  const auto req = Decode(SnappyCompress(EncodeWriteRequest(samples, external)));
  ASSERT_EQ(req.timeseries_size(), 1);
  const auto& ts = req.timeseries(0);
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& l : ts.labels()) got.emplace_back(l.name(), l.value());
  EXPECT_EQ(got, (Labels{{"__name__", "m"},
                         {"a", "first"},
                         {"cluster", "home"},
                         {"empty", ""},
                         {"long", std::string(300, 'v')},
                         {"node", "acer"},
                         {"z", "last"}}));
  ASSERT_EQ(ts.samples_size(), 2);
  EXPECT_EQ(ts.samples(1).timestamp(), 2000);
  EXPECT_EQ(ts.samples(1).value(), 2);
}

TEST(WriteRequestTest, HashSeparatesNamesFromValues) {
  EXPECT_NE(HashLabels({{"ab", "c"}}), HashLabels({{"a", "bc"}}));
  EXPECT_EQ(HashLabels({{"a", "b"}}), HashLabels({{"a", "b"}}));
}

TEST(ResponseTest, Classification) {
  http::FetchResult r;
  r.response.status = 204;
  EXPECT_EQ(ClassifyResponse(r, true).verdict, Verdict::kSent);
  r.response.status = 503;
  r.response.headers = {{"retry-after", "7"}};
  auto v = ClassifyResponse(r, true);
  EXPECT_EQ(v.verdict, Verdict::kRetry);
  EXPECT_EQ(v.retry_after, seconds(7));
  r.response.status = 429;
  EXPECT_EQ(ClassifyResponse(r, true).verdict, Verdict::kRetry);
  EXPECT_EQ(ClassifyResponse(r, false).verdict, Verdict::kDrop);
  r.response.status = 400;
  r.response.body = "out of order sample\nsecond line";
  v = ClassifyResponse(r, true);
  EXPECT_EQ(v.verdict, Verdict::kDrop);
  EXPECT_EQ(v.reason, "HTTP 400: out of order sample");
  http::FetchResult down;
  down.error = http::FetchError::kConnect;
  down.message = "connection refused";
  EXPECT_EQ(ClassifyResponse(down, true).verdict, Verdict::kRetry);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT"), std::nullopt);
  EXPECT_EQ(ParseRetryAfter(" 12 "), seconds(12));
  EXPECT_EQ(ParseRetryAfter("-1"), std::nullopt);
  EXPECT_EQ(ReceiverReason(std::string("a\x01\x7f"
                                       "b")),
            "a  b");
  EXPECT_EQ(ReceiverReason(std::string(1000, 'x')).size(), 256u);
}

RelabelRule Rule(RelabelRule::Action action, std::vector<std::string> sources,
                 const std::string& regex) {
  RelabelRule r;
  r.action = action;
  r.source_labels = std::move(sources);
  r.regex = std::make_shared<RE2>("^(?:" + regex + ")$");
  return r;
}

TEST(RelabelTest, KeepDropLabeldrop) {
  const std::vector<RelabelRule> rules = {
      Rule(RelabelRule::Action::kKeep, {"__name__"}, "meshflow_.*|up"),
      Rule(RelabelRule::Action::kDrop, {"node", "iface"}, "laptop-.*;.*"),
      Rule(RelabelRule::Action::kLabelDrop, {}, "iface|__name__")};
  Labels kept{{"__name__", "meshflow_x"}, {"iface", "eth0"}, {"node", "acer"}};
  ASSERT_TRUE(Relabel(rules, kept));
  EXPECT_EQ(kept, (Labels{{"__name__", "meshflow_x"}, {"node", "acer"}}));
  Labels other{{"__name__", "go_goroutines"}, {"node", "acer"}};
  EXPECT_FALSE(Relabel(rules, other));
  Labels laptop{{"__name__", "up"}, {"iface", "wlan0"}, {"node", "laptop-agent"}};
  EXPECT_FALSE(Relabel(rules, laptop));
  // A missing source label joins as the empty string.
  Labels no_node{{"__name__", "up"}};
  EXPECT_TRUE(Relabel({Rule(RelabelRule::Action::kKeep, {"node"}, "")}, no_node));
}

// write_relabel_configs as the config loader builds them, on Prometheus' own cases
// (model/relabel/relabel_test.go); `labels` comes back sorted, or nullopt when dropped.
std::optional<Labels> Relabelled(const std::string& rules_yaml, Labels labels) {
  const auto config = ParseGatewayConfig(
      "remote_write:\n  - url: http://a/w\n    write_relabel_configs:\n" + rules_yaml, "t.yaml");
  labels.emplace_back("__name__", "m");
  if (!Relabel(config.remote_write.at(0).write_relabel_configs, labels)) return std::nullopt;
  std::sort(labels.begin(), labels.end());
  std::erase_if(labels, [](const auto& l) { return l.first == "__name__"; });
  return labels;
}

TEST(RelabelTest, ReplaceExpandsGroupsAsPrometheusDoes) {
  const Labels abc{{"a", "foo"}, {"b", "bar"}, {"c", "baz"}};
  EXPECT_EQ(Relabelled("      - {source_labels: [a], regex: 'f(.*)', target_label: d, "
                       "replacement: 'ch${1}-ch${1}'}\n",  // action: replace is the default
                       abc),
            (Labels{{"a", "foo"}, {"b", "bar"}, {"c", "baz"}, {"d", "choo-choo"}}));
  EXPECT_EQ(Relabelled("      - {source_labels: [a, b], regex: 'f(.*);(.*)r', target_label: a, "
                       "replacement: 'b${1}${2}m', action: replace}\n"
                       "      - {source_labels: [c, a], regex: '(b).*b(.*)ba(.*)', "
                       "target_label: d, replacement: '$1$2$2$3', action: replace}\n",
                       abc),
            (Labels{{"a", "boobam"}, {"b", "bar"}, {"c", "baz"}, {"d", "boooom"}}));
  // Anchored: '.*(b).*' must cover the whole value; a regex that does not match changes nothing.
  EXPECT_EQ(Relabelled("      - {source_labels: [a], regex: '.*(b).*', target_label: d}\n",
                       {{"a", "abc"}}),
            (Labels{{"a", "abc"}, {"d", "b"}}));
  EXPECT_EQ(Relabelled("      - {source_labels: [a], regex: 'f', target_label: b, "
                       "replacement: bar}\n",
                       {{"a", "boo"}}),
            (Labels{{"a", "boo"}}));
  // The target label built from a group; an empty or invalid one changes nothing.
  const std::string templated =
      "      - {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', replacement: '${2}', "
      "target_label: '${1}'}\n";
  EXPECT_EQ(Relabelled(templated, {{"a", "some-name-value"}}),
            (Labels{{"a", "some-name-value"}, {"name", "value"}}));
  EXPECT_EQ(Relabelled("      - {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', "
                       "replacement: '${1}', target_label: '${3}'}\n",
                       {{"a", "some-name-0"}}),
            (Labels{{"a", "some-name-0"}}));
  // Go's expansion: "$1x" names the group "1x" (none, so empty); ${1}x is 1 then x; $$ is $.
  EXPECT_EQ(Relabelled("      - {source_labels: [a], regex: '(.*)', target_label: b, "
                       "replacement: '$1x'}\n"
                       "      - {source_labels: [a], regex: '(.*)', target_label: c, "
                       "replacement: '${1}x$$'}\n"
                       "      - {source_labels: [a], regex: '(?P<word>f)oo', target_label: d, "
                       "replacement: '$word-${word}'}\n",
                       {{"a", "foo"}, {"b", "gone"}}),
            (Labels{{"a", "foo"}, {"c", "foox$"}, {"d", "f-f"}}));
}

TEST(RelabelTest, HashmodLabelmapKeepDropEqual) {
  const Labels abc{{"a", "foo"}, {"b", "bar"}, {"c", "baz"}};
  EXPECT_EQ(Relabelled("      - {source_labels: [c], target_label: d, modulus: 1000, "
                       "action: hashmod}\n",
                       abc),
            (Labels{{"a", "foo"}, {"b", "bar"}, {"c", "baz"}, {"d", "976"}}));
  EXPECT_EQ(Relabelled("      - {source_labels: [a], target_label: b, modulus: 1000, "
                       "action: hashmod}\n",
                       {{"a", "foo\nbar"}}),
            (Labels{{"a", "foo\nbar"}, {"b", "734"}}));
  EXPECT_EQ(
      Relabelled("      - {regex: '(b.*)', replacement: 'bar_${1}', action: labelmap}\n",
                 {{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}}),
      (Labels{{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}, {"bar_b1", "bar"}, {"bar_b2", "baz"}}));
  EXPECT_EQ(Relabelled("      - {regex: '(b.*)', action: labelkeep}\n",
                       {{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}}),
            (Labels{{"b1", "bar"}, {"b2", "baz"}}));
  EXPECT_EQ(Relabelled("      - {regex: '(b.*)', action: labeldrop}\n",
                       {{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}}),
            (Labels{{"a", "foo"}}));
  const Labels ports{{"__port1", "1234"}, {"__port2", "5678"}, {"__tmp_port", "1234"}};
  EXPECT_EQ(Relabelled("      - {source_labels: [__tmp_port], target_label: __port1, "
                       "action: keepequal}\n",
                       ports),
            ports);
  EXPECT_EQ(Relabelled("      - {source_labels: [__tmp_port], target_label: __port2, "
                       "action: keepequal}\n",
                       ports),
            std::nullopt);
  EXPECT_EQ(Relabelled("      - {source_labels: [__tmp_port], target_label: __port1, "
                       "action: dropequal}\n",
                       ports),
            std::nullopt);
  EXPECT_EQ(Relabelled("      - {source_labels: [__tmp_port], target_label: __port2, "
                       "action: dropequal}\n",
                       ports),
            ports);
  // A replacement that empties a label removes it; one that empties __name__ drops the series.
  EXPECT_EQ(Relabelled("      - {source_labels: [a], regex: 'f(x?)oo', target_label: a}\n",
                       {{"a", "foo"}, {"b", "bar"}}),
            (Labels{{"b", "bar"}}));
  EXPECT_EQ(Relabelled("      - {regex: '.*', target_label: __name__, replacement: ''}\n", {}),
            std::nullopt);
  EXPECT_EQ(HashMod("baz", 1000), 976u);
}

// A receiver that answers from a script, and records what it was sent.
class StubTransport final : public Transport {
 public:
  struct Answer {
    int status = 200;
    std::string body;
    http::ClientHeaders headers;
    bool network_error = false;
  };
  std::deque<Answer> script;
  std::vector<http::ClientRequest> requests;

  http::FetchResult Post(const http::ClientRequest& request, nanoseconds,
                         const http::TlsClient*) override {
    requests.push_back(request);
    http::FetchResult r;
    Answer a = script.empty() ? Answer{} : script.front();
    if (!script.empty()) script.pop_front();
    if (a.network_error) {
      r.error = http::FetchError::kConnect;
      r.message = "connection refused";
      return r;
    }
    r.response.status = a.status;
    r.response.body = a.body;
    r.response.headers = a.headers;
    return r;
  }
};

StubTransport::Answer Reply(int status, std::string body, http::ClientHeaders headers = {}) {
  StubTransport::Answer a;
  a.status = status;
  a.body = std::move(body);
  a.headers = std::move(headers);
  return a;
}

StubTransport::Answer Down() {
  StubTransport::Answer a;
  a.network_error = true;
  return a;
}

// Advances a fake clock by each wait instead of sleeping.
class FakeWaiter final : public Waiter {
 public:
  explicit FakeWaiter(FakeClock& clock, std::vector<nanoseconds>& waits)
      : clock_(clock), waits_(waits) {}
  bool Wait(nanoseconds d) override {
    waits_.push_back(d);
    clock_.Advance(d);
    if (waits_left == 0) return false;  // as when the queue stops during the wait
    if (waits_left > 0) --waits_left;
    return true;
  }
  int waits_left = -1;  // -1: never stop
  void Stop() override {}

 private:
  FakeClock& clock_;
  std::vector<nanoseconds>& waits_;
};

RemoteWriteEndpoint Endpoint() {
  RemoteWriteEndpoint e;
  e.name = "vm";
  e.url = "http://127.0.0.1:8428/api/v1/write";
  e.queue.max_shards = 1;
  e.queue.max_samples_per_send = 3;
  e.queue.min_backoff = milliseconds(30);
  e.queue.max_backoff = milliseconds(100);
  return e;
}

std::string HeaderOf(const http::ClientRequest& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(EndpointQueueTest, Retries5xxAnd429ThenDrops400) {
  StubTransport stub;
  stub.script = {Reply(500, "busy"),
                 Reply(500, "busy"),
                 Reply(503, "down"),
                 Down(),
                 Reply(429, "slow down", {{"retry-after", "2"}}),
                 Reply(200, ""),
                 Reply(400, "out of order sample")};
  FakeClock clock;
  std::vector<nanoseconds> waits;
  RemoteWriteEndpoint e = Endpoint();
  e.headers = {{"X-Scope-OrgID", "home-lab"}};
  e.authorization = "Bearer secret";
  EndpointQueue q(e, stub, false, std::make_unique<FakeWaiter>(clock, waits));
  auto up = L({{"__name__", "up"}, {"node", "a"}});
  q.Append({{up, 1000, 1}, {up, 2000, 1}, {up, 3000, 0}, {up, 4000, 1}});
  EXPECT_EQ(q.Stats().pending, 4u);

  ASSERT_TRUE(q.SendBatch(0));  // the first three samples: 5 failures, then acknowledged
  ASSERT_EQ(stub.requests.size(), 6u);
  for (const auto& r : stub.requests) EXPECT_EQ(r.body, stub.requests[0].body);
  ASSERT_EQ(waits.size(), 5u);
  // Backoff doubles from min_backoff up to max_backoff, each wait jittered into [b/2, b]; the
  // 429's Retry-After wins.
  const nanoseconds bases[] = {milliseconds(30), milliseconds(60), milliseconds(100),
                               milliseconds(100)};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_GE(waits[i], bases[i] / 2) << i;
    EXPECT_LE(waits[i], bases[i]) << i;
  }
  EXPECT_EQ(waits[4], seconds(2));
  auto s = q.Stats();
  EXPECT_EQ(s.sent, 3u);
  EXPECT_EQ(s.retried, 15u);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_EQ(s.pending, 1u);
  EXPECT_EQ(s.highest_sent_timestamp_ms, 3000);
  EXPECT_GT(s.bytes_sent, 0u);

  ASSERT_TRUE(q.SendBatch(0));  // the last sample: 400 is final
  EXPECT_EQ(stub.requests.size(), 7u);
  EXPECT_EQ(waits.size(), 5u);
  s = q.Stats();
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.sent, 3u);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_FALSE(q.SendBatch(0));

  const auto& r = stub.requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url.target, "/api/v1/write");
  EXPECT_EQ(HeaderOf(r, "Content-Encoding"), "snappy");
  EXPECT_EQ(HeaderOf(r, "Content-Type"), "application/x-protobuf");
  EXPECT_EQ(HeaderOf(r, "X-Prometheus-Remote-Write-Version"), "0.1.0");
  EXPECT_TRUE(HeaderOf(r, "User-Agent").starts_with("meshflow-gateway/"));
  EXPECT_EQ(HeaderOf(r, "Authorization"), "Bearer secret");
  EXPECT_EQ(HeaderOf(r, "X-Scope-OrgID"), "home-lab");
  const auto req = Decode(r.body);
  ASSERT_EQ(req.timeseries_size(), 1);
  ASSERT_EQ(req.timeseries(0).samples_size(), 3);
  EXPECT_EQ(req.timeseries(0).samples(2).timestamp(), 3000);
}

TEST(EndpointQueueTest, ExternalLabelsRelabelAndShardOrder) {
  StubTransport stub;
  FakeClock clock;
  std::vector<nanoseconds> waits;
  RemoteWriteEndpoint e = Endpoint();
  e.queue.max_shards = 4;
  e.queue.max_samples_per_send = 1000;
  e.external_labels = {{"cluster", "home"}, {"node", "ignored"}};
  e.write_relabel_configs = {Rule(RelabelRule::Action::kDrop, {"__name__"}, "go_.*")};
  EndpointQueue q(e, stub, false, std::make_unique<FakeWaiter>(clock, waits));
  std::vector<std::shared_ptr<const LabelSet>> series;
  for (int i = 0; i < 20; ++i)
    series.push_back(L({{"__name__", "m"}, {"node", "n" + std::to_string(i)}}));
  auto go = L({{"__name__", "go_goroutines"}, {"node", "a"}});
  for (int t = 1; t <= 5; ++t) {
    std::vector<SeriesSample> round;
    for (const auto& l : series) round.push_back({l, t * 1000, static_cast<double>(t)});
    round.push_back({go, t * 1000, 1});
    q.Append(round);
  }
  EXPECT_EQ(q.Stats().relabel_dropped, 5u);
  EXPECT_EQ(q.Stats().pending, 100u);
  std::map<std::string, std::vector<int64_t>> seen;
  std::map<std::string, size_t> shard_of;
  for (size_t shard = 0; shard < 4; ++shard) {
    while (q.SendBatch(shard)) {
    }
  }
  for (size_t i = 0; i < stub.requests.size(); ++i) {
    const auto req = Decode(stub.requests[i].body);
    for (const auto& ts : req.timeseries()) {
      ASSERT_EQ(ts.labels_size(), 3);
      EXPECT_EQ(ts.labels(0).name(), "__name__");
      EXPECT_EQ(ts.labels(1).name(), "cluster");
      EXPECT_EQ(ts.labels(1).value(), "home");
      EXPECT_EQ(ts.labels(2).name(), "node");
      EXPECT_NE(ts.labels(2).value(), "ignored");  // a series' own label wins
      for (const auto& s : ts.samples()) seen[ts.labels(2).value()].push_back(s.timestamp());
    }
  }
  EXPECT_GT(stub.requests.size(), 1u);  // spread over several shards
  ASSERT_EQ(seen.size(), 20u);
  for (const auto& [node, stamps] : seen)
    EXPECT_EQ(stamps, (std::vector<int64_t>{1000, 2000, 3000, 4000, 5000})) << node;
}

TEST(EndpointQueueTest, FullQueueDropsTheOldestCounted) {
  StubTransport stub;
  FakeClock clock;
  std::vector<nanoseconds> waits;
  RemoteWriteEndpoint e = Endpoint();
  e.queue.capacity = 3;
  e.queue.max_samples_per_send = 2;  // requests of [1 2] [3 4] [5]: the first goes
  EndpointQueue q(e, stub, false, std::make_unique<FakeWaiter>(clock, waits));
  auto up = L({{"__name__", "up"}});
  q.Append({{up, 1, 1}, {up, 2, 1}, {up, 3, 1}, {up, 4, 1}, {up, 5, 1}});
  EXPECT_EQ(q.Stats().dropped, 2u);
  EXPECT_EQ(q.Stats().pending, 3u);
  ASSERT_TRUE(q.SendBatch(0));
  const auto req = Decode(stub.requests[0].body);
  ASSERT_EQ(req.timeseries(0).samples_size(), 2);
  EXPECT_EQ(req.timeseries(0).samples(0).timestamp(), 3);
  ASSERT_TRUE(q.SendBatch(0));
  EXPECT_EQ(Decode(stub.requests[1].body).timeseries(0).samples(0).timestamp(), 5);
  EXPECT_FALSE(q.SendBatch(0));
}

TEST(EndpointQueueTest, ThreadsSendOnTheirOwnAndStop) {
  StubTransport stub;
  RemoteWriteEndpoint e = Endpoint();
  e.queue.batch_send_deadline = milliseconds(1);
  auto q = std::make_unique<EndpointQueue>(e, stub);
  auto up = L({{"__name__", "up"}});
  q->Append({{up, 1, 1}});
  for (int i = 0; i < 500 && q->Stats().sent == 0; ++i)
    std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(q->Stats().sent, 1u);
  q->Stop();
}

TEST(RemoteWriterTest, ReloadKeepsTheQueueOfAnEndpointThatStays) {
  auto stub = std::make_unique<StubTransport>();
  stub->script = std::deque<StubTransport::Answer>(100, Down());
  RemoteWriter writer(std::move(stub));
  RemoteWriteEndpoint a = Endpoint();
  a.queue.batch_send_deadline = seconds(3600);  // nothing leaves during the test
  RemoteWriteEndpoint b = a;
  b.name = "mimir";
  writer.Configure({a, b});
  auto up = L({{"__name__", "up"}});
  writer.Append({{up, 1, 1}, {up, 2, 1}});
  RemoteWriteEndpoint c = a;
  c.name = "thanos";
  a.headers = {{"X-Scope-OrgID", "new"}};
  writer.Configure({a, c});
  std::vector<prometheus::MetricFamily> families;
  writer.Collect(families);
  std::map<std::string, double> pending;
  for (const auto& f : families) {
    if (f.name != "meshflow_remote_write_samples_pending") continue;
    for (const auto& m : f.metric) pending[m.label[0].value] = m.gauge.value;
  }
  EXPECT_EQ(pending, (std::map<std::string, double>{{"thanos", 0}, {"vm", 2}}));
}

// The queue on disk: samples not acknowledged when the gateway stops (or dies) go after the
// next start, in order; acknowledged ones do not go again.
TEST(EndpointQueueTest, DiskQueueSurvivesARestartDuringAnOutage) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("rw-disk-queue-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  RemoteWriteEndpoint e = Endpoint();
  e.queue.path = dir.string();
  e.queue.max_shards = 1;
  e.queue.max_samples_per_send = 6;  // two rounds of three series
  FakeClock clock;
  std::vector<nanoseconds> waits;
  std::vector<std::shared_ptr<const LabelSet>> series = {
      L({{"__name__", "a"}}), L({{"__name__", "b"}}), L({{"__name__", "c"}})};
  {
    StubTransport stub;
    auto waiter = std::make_unique<FakeWaiter>(clock, waits);
    FakeWaiter* stop_after = waiter.get();
    EndpointQueue q(e, stub, false, std::move(waiter), clock);
    for (int t = 1; t <= 4; ++t) {
      std::vector<SeriesSample> round;
      for (const auto& l : series) round.push_back({l, t, static_cast<double>(t)});
      q.Append(round);
    }
    EXPECT_EQ(q.Stats().pending, 12u);
    EXPECT_GT(q.Stats().bytes_on_disk, 0u);
    ASSERT_TRUE(q.SendBatch(0));  // acknowledged before the outage
    EXPECT_EQ(q.Stats().sent, 6u);
    // The receiver goes down; the queue stops while retrying the next batch.
    stub.script = std::deque<StubTransport::Answer>(3, Down());
    stop_after->waits_left = 2;
    ASSERT_TRUE(q.SendBatch(0));
    EXPECT_EQ(stub.requests.size(), 4u);
    EXPECT_EQ(q.Stats().sent, 6u);
    EXPECT_EQ(q.Stats().pending, 6u);
  }
  std::map<std::string, std::vector<int64_t>> seen;
  StubTransport stub;
  {
    EndpointQueue q(e, stub, false, std::make_unique<FakeWaiter>(clock, waits), clock);
    EXPECT_EQ(q.Stats().pending, 6u);
    while (q.SendBatch(0)) {
    }
    EXPECT_EQ(q.Stats().sent, 6u);
    EXPECT_EQ(q.Stats().pending, 0u);
  }
  {
    EndpointQueue q(e, stub, false, std::make_unique<FakeWaiter>(clock, waits), clock);
    EXPECT_EQ(q.Stats().pending, 0u);
  }
  size_t samples = 0;
  for (const auto& r : stub.requests) {
    const auto req = Decode(r.body);
    for (const auto& ts : req.timeseries()) {
      for (const auto& s : ts.samples()) {
        seen[ts.labels(0).value()].push_back(s.timestamp());
        ++samples;
      }
    }
  }
  EXPECT_EQ(samples, 6u);
  for (const auto& [name, stamps] : seen) EXPECT_EQ(stamps, (std::vector<int64_t>{3, 4})) << name;
  std::filesystem::remove_all(dir);
}

// Config: remote_write in Prometheus' shape, refused at the line of the problem.
class RemoteWriteConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("rw-config-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "token") << "s3cr3t-token\n";
    std::ofstream(dir_ / "password") << "pw\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  GatewayConfig Parse(const std::string& text) {
    return ParseGatewayConfig(text, (dir_ / "gateway.yaml").string());
  }
  std::string Error(const std::string& text) {
    try {
      Parse(text);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  }
  std::filesystem::path dir_;
};

TEST_F(RemoteWriteConfigTest, PrometheusShape) {
  const auto c = Parse(R"(scrape_interval: 10s
remote_write:
  - url: https://prometheus-prod.grafana.net/api/prom/push
    basic_auth: {username: "123456", password_file: password}
    headers: {X-Scope-OrgID: home-lab}
    external_labels: {cluster: home, region: eu}
    write_relabel_configs:
      - {source_labels: [__name__], regex: 'meshflow_.*|up', action: keep}
      - {source_labels: [node], regex: laptop-.*, action: drop}
    queue_config: {capacity: 500, max_shards: 2, max_samples_per_send: 100, batch_send_deadline: 1s, min_backoff: 10ms, max_backoff: 1s, retry_on_http_429: false}
  - url: http://vminsert:8480/insert/0/prometheus/api/v1/write
    name: vm
    bearer_token_file: token
    remote_timeout: 5s
)");
  EXPECT_EQ(c.scrape_interval, seconds(10));
  ASSERT_EQ(c.remote_write.size(), 2u);
  const auto& g = c.remote_write[0];
  EXPECT_EQ(g.name, g.url);
  EXPECT_EQ(g.authorization, "Basic MTIzNDU2OnB3");
  EXPECT_EQ(g.headers, (http::ClientHeaders{{"X-Scope-OrgID", "home-lab"}}));
  EXPECT_EQ(g.external_labels[0].first, "cluster");
  EXPECT_EQ(g.write_relabel_configs.size(), 2u);
  EXPECT_EQ(g.queue.capacity, 500);
  EXPECT_EQ(g.queue.max_shards, 2);
  EXPECT_FALSE(g.queue.retry_on_http_429);
  EXPECT_EQ(c.remote_write[1].name, "vm");
  EXPECT_EQ(c.remote_write[1].authorization, "Bearer s3cr3t-token");
  EXPECT_EQ(c.remote_write[1].remote_timeout, seconds(5));
  // The password inline, as Prometheus also takes it; the shard bounds.
  const auto inline_password = Parse(R"(remote_write:
  - url: http://a/w
    basic_auth: {username: "123456", password: pw}
    queue_config: {min_shards: 2, max_shards: 3}
)");
  EXPECT_EQ(inline_password.remote_write[0].authorization, "Basic MTIzNDU2OnB3");
  EXPECT_EQ(inline_password.remote_write[0].queue.min_shards, 2);
  EXPECT_EQ(inline_password.remote_write[0].queue.max_shards, 3);
  EXPECT_EQ(Parse("").scrape_interval, seconds(5));
}

TEST_F(RemoteWriteConfigTest, LocatedErrors) {
  EXPECT_TRUE(RE2::PartialMatch(Error("remote_write:\n  - url: http://a/w\n    urll: x\n"),
                                R"(gateway\.yaml:3:\d+: .*remote_write\[0\]\.urll.*unknown key)"))
      << Error("remote_write:\n  - url: http://a/w\n    urll: x\n");
  const std::string no_scheme = Error("remote_write:\n  - url: vm:8428/api/v1/write\n");
  EXPECT_TRUE(RE2::PartialMatch(no_scheme, R"(gateway\.yaml:2:\d+: .*url.*http://)")) << no_scheme;
  const std::string token =
      Error("remote_write:\n  - url: http://a/w\n    bearer_token_file: missing\n");
  EXPECT_TRUE(RE2::PartialMatch(token, R"(gateway\.yaml:3:\d+: .*bearer_token_file.*cannot open)"))
      << token;
  const std::string header =
      Error("remote_write:\n  - url: http://a/w\n    headers: {Content-Type: x}\n");
  EXPECT_TRUE(RE2::PartialMatch(header, R"(gateway\.yaml:3:\d+: .*headers)")) << header;
  const std::string regex = Error(
      "remote_write:\n  - url: http://a/w\n    write_relabel_configs:\n"
      "      - {source_labels: [a], regex: '(', action: keep}\n");
  EXPECT_TRUE(RE2::PartialMatch(regex, R"(gateway\.yaml:4:\d+: .*regex)")) << regex;
  const std::string dup = Error("remote_write:\n  - url: http://a/w\n  - url: http://a/w\n");
  EXPECT_TRUE(RE2::PartialMatch(dup, R"(gateway\.yaml:3:\d+: )")) << dup;
  auto relabel_error = [&](const std::string& rule) {
    return Error("remote_write:\n  - url: http://a/w\n    write_relabel_configs:\n      - " + rule +
                 "\n");
  };
  for (const auto& [rule, expected] : std::vector<std::pair<std::string, std::string>>{
           {"{source_labels: [a], action: rewrite}", R"(:4:\d+: .*action.*replace)"},
           {"{source_labels: [a], regex: 'x(', target_label: b}", R"(:4:\d+: .*regex.*RE2)"},
           {"{source_labels: [a], regex: 'x'}", R"(:4:\d+: .*target_label)"},
           {"{source_labels: [a], target_label: '-${1}'}", R"(:4:\d+: .*target_label)"},
           {"{source_labels: [a], target_label: b, action: hashmod}", R"(:4:\d+: .*modulus)"},
           {"{source_labels: [a], target_label: b, modulus: 0, action: hashmod}",
            R"(:4:\d+: .*modulus)"},
           {"{regex: a, source_labels: [b], action: labeldrop}", R"(:4:\d+: .*source_labels)"},
           {"{source_labels: [a], target_label: b, regex: x, action: keepequal}",
            R"(:4:\d+: .*regex)"},
           {"{source_labels: [a], target_label: b, action: keep}", R"(:4:\d+: .*target_label)"},
           {"{source_labels: [a], replacement: x, action: drop}", R"(:4:\d+: .*replacement)"},
       }) {
    const std::string error = relabel_error(rule);
    EXPECT_TRUE(RE2::PartialMatch(error, "gateway\\.yaml" + expected)) << rule << ": " << error;
  }
  const std::string both = Error(
      "remote_write:\n  - url: http://a/w\n    basic_auth:\n      username: u\n"
      "      password: pw\n      password_file: password\n");
  EXPECT_TRUE(RE2::PartialMatch(both, R"(gateway\.yaml:6:\d+: .*password_file.*not both)")) << both;
  const std::string shards = Error(
      "remote_write:\n  - url: http://a/w\n    queue_config: {max_shards: 2, min_shards: 3}\n");
  EXPECT_TRUE(RE2::PartialMatch(shards, R"(gateway\.yaml:3:\d+: .*min_shards.*max_shards)"))
      << shards;
  const std::string interval = Error("scrape_interval: 100ms\n");
  EXPECT_TRUE(RE2::PartialMatch(interval, R"(gateway\.yaml:1:\d+: .*scrape_interval)")) << interval;
}

}  // namespace
}  // namespace meshflow::gateway::remote_write
