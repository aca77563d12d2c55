// The gateway and its HTTP client over real sockets on 127.0.0.1, with small in-process HTTP
// servers standing in for exporters whose behaviour (slow, gzip, errors) the test controls.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <initializer_list>
#include <string>
#include <thread>
#include <utility>

#include "common/http/http_client.h"
#include "exporter/pusher.h"
#include "gateway/gateway.h"

namespace meshflow::gateway {
namespace {

using ::testing::HasSubstr;
using SteadyClock = std::chrono::steady_clock;

// A raw TCP server answering each connection with fixed bytes, for framing the HTTP client
// must cope with (chunked, truncated, oversized, silent).
class RawServer {
 public:
  explicit RawServer(std::string reply, std::chrono::milliseconds delay = {})
      : reply_(std::move(reply)), delay_(delay) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] {
      for (;;) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0 || stop_) {
          if (c >= 0) ::close(c);
          return;
        }
        char buf[4096];
        (void)::recv(c, buf, sizeof(buf), 0);
        std::this_thread::sleep_for(delay_);
        (void)::send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~RawServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/metrics"; }

 private:
  std::string reply_;
  std::chrono::milliseconds delay_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

http::FetchResult Get(const std::string& url,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5),
                      size_t max_body = 1 << 20, http::ClientHeaders headers = {}) {
  http::ClientRequest r;
  r.url = *http::HttpUrl::Parse(url, nullptr);
  r.headers = std::move(headers);
  return http::Fetch(r, SteadyClock::now() + timeout, max_body);
}

TEST(HttpClient, ContentLengthBody) {
  RawServer s("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nm 1\nEXTRA");
  const auto r = Get(s.url());
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.response.status, 200);
  EXPECT_EQ(r.response.body, "m 1\n");
  EXPECT_EQ(r.response.Header("content-type"), "text/plain");
}

TEST(HttpClient, ChunkedBodyWithExtensionsAndTrailers) {
  RawServer s(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nm 1\n\r\n5\r\nn 22\n\r\n0\r\n"
      "T: v\r\n\r\n");
  const auto r = Get(s.url());
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.response.body, "m 1\nn 22\n");
}

TEST(HttpClient, BodyUntilClose) {
  RawServer s("HTTP/1.0 200 OK\r\n\r\nall of it");
  const auto r = Get(s.url());
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.response.body, "all of it");
}

TEST(HttpClient, RefusesOversizedBodies) {
  RawServer declared("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n");
  EXPECT_EQ(Get(declared.url(), std::chrono::seconds(5), 1000).error, http::FetchError::kTooLarge);
  RawServer streamed("HTTP/1.0 200 OK\r\n\r\n" + std::string(5000, 'x'));
  EXPECT_EQ(Get(streamed.url(), std::chrono::seconds(5), 1000).error, http::FetchError::kTooLarge);
  RawServer chunked("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1388\r\n" +
                    std::string(5000, 'x') + "\r\n0\r\n\r\n");
  EXPECT_EQ(Get(chunked.url(), std::chrono::seconds(5), 1000).error, http::FetchError::kTooLarge);
}

TEST(HttpClient, MalformedResponsesAreProtocolErrors) {
  for (const char* reply :
       {"garbage\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "HTTP/1.1 200"}) {
    RawServer s(reply);
    const auto r = Get(s.url());
    EXPECT_EQ(r.error, http::FetchError::kProtocol) << reply << " -> " << r.message;
  }
}

TEST(HttpClient, DeadlineHoldsAgainstASilentServer) {
  RawServer s("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", std::chrono::milliseconds(3000));
  // The server answers after 3 s; only a client that gives up at its deadline sees a timeout.
  const auto r = Get(s.url(), std::chrono::milliseconds(300));
  EXPECT_EQ(r.error, http::FetchError::kTimeout);
}

TEST(HttpClient, ConnectionRefused) {
  const auto r = Get("http://127.0.0.1:1/metrics");
  EXPECT_EQ(r.error, http::FetchError::kConnect) << r.message;
}

TEST(HttpUrl, ParsesHostsPortsAndTargets) {
  auto u = http::HttpUrl::Parse("http://[::1]:9474/metrics?x=1", nullptr);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9474);
  EXPECT_EQ(u->target, "/metrics?x=1");
  EXPECT_EQ(u->HostHeader(), "[::1]:9474");
  u = http::HttpUrl::Parse("http://node.example", nullptr);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/");
  for (const char* bad : {"https://", "http://", "http://x:0/", "http://x:99999/", "http://u@x/",
                          "http://[::1/", "http://x/a b", "ftp://x"}) {
    std::string why;
    EXPECT_FALSE(http::HttpUrl::Parse(bad, &why)) << bad;
    EXPECT_FALSE(why.empty());
  }
}

// An exporter stand-in on the project's own HTTP server.
class FakeExporter {
 public:
  explicit FakeExporter(std::function<HttpResponse(const HttpRequest&)> handler) {
    HttpServerOptions o;
    o.listen_addresses = {"127.0.0.1:0"};
    o.threads = 4;
    server_ = std::make_unique<HttpServer>(o);
    server_->Route("/metrics", {"GET"}, std::move(handler));
    server_->Start();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server_->BoundPorts().at(0)) + "/metrics";
  }

 private:
  std::unique_ptr<HttpServer> server_;
};

// The config's targets section with these static nodes, each {node name, scrape URL}.
std::string StaticTargets(std::initializer_list<std::pair<std::string, std::string>> nodes) {
  std::string yaml = "targets:\n  static:\n";
  for (const auto& [node, url] : nodes) yaml += "    - {node: " + node + ", url: '" + url + "'}\n";
  return yaml;
}

std::string TempDir() {
  auto dir = std::filesystem::temp_directory_path() /
             ("mfgw-test-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::create_directories(dir);
  return dir.string();
}

class GatewayLoopback : public ::testing::Test {
 protected:
  void StartGateway(const std::string& yaml) {
    dir_ = TempDir();
    std::ofstream(dir_ + "/laptop.token") << kLaptopToken << "\n";
    std::ofstream(dir_ + "/acer.token") << kAcerToken << "\n";
    std::ofstream(dir_ + "/gateway.yaml") << yaml;
    GatewayOptions o;
    o.listen_addresses = {"127.0.0.1:0"};
    o.config_file = dir_ + "/gateway.yaml";
    o.http.threads = 16;
    o.request_reload = request_reload_;
    gateway_ = std::make_unique<Gateway>(o);
    gateway_->Start();
    base_ = "http://" + gateway_->BoundAddresses().at(0);
    // BoundAddresses says localhost for 0.0.0.0 only; here it is the literal we asked for.
  }
  void TearDown() override {
    if (gateway_) gateway_->Stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  http::FetchResult Call(const std::string& method, const std::string& path_and_query,
                         http::ClientHeaders headers = {}, std::string body = "") {
    http::ClientRequest r;
    r.method = method;
    r.url = *http::HttpUrl::Parse(base_ + path_and_query, nullptr);
    r.headers = std::move(headers);
    r.body = std::move(body);
    return http::Fetch(r, SteadyClock::now() + std::chrono::seconds(10), 16 << 20);
  }
  http::FetchResult Push(const std::string& node, const std::string& token, std::string body) {
    return Call("POST", "/push?node=" + node,
                {{"Authorization", "Bearer " + token}, {"Content-Type", "text/plain"}},
                std::move(body));
  }

  static constexpr char kLaptopToken[] = "laptop-token-0123456789abcdef";
  static constexpr char kAcerToken[] = "acer-token-0123456789abcdefgh";
  std::string dir_;
  std::function<ReloadOutcome()> request_reload_;  // --web.enable-lifecycle when set
  std::unique_ptr<Gateway> gateway_;
  std::string base_;
};

TEST_F(GatewayLoopback, ProxyPassesBodyTypeAndEncodingThrough) {
  FakeExporter exporter([](const HttpRequest& r) {
    HttpResponse out;
    out.content_type = "text/plain; version=0.0.4; charset=utf-8";
    out.body = "# TYPE m gauge\nm 1\n";
    if (AcceptsGzip(r.Header("Accept-Encoding"))) {
      out.body = GzipCompress(out.body);
      out.headers.emplace_back("Content-Encoding", "gzip");
    }
    out.headers.emplace_back("X-Seen-Timeout", r.Header("X-Prometheus-Scrape-Timeout-Seconds"));
    return out;
  });
  StartGateway(StaticTargets({{"acer-agent", exporter.url()}}));
  auto r = Call("GET", "/proxy?target=acer-agent");
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.response.status, 200);
  EXPECT_EQ(r.response.body, "# TYPE m gauge\nm 1\n");
  EXPECT_EQ(r.response.Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  r = Call("GET", "/proxy?target=acer-agent",
           {{"Accept-Encoding", "gzip"}, {"X-Prometheus-Scrape-Timeout-Seconds", "4"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.response.Header("content-encoding"), "gzip");
  EXPECT_EQ(r.response.body, GzipCompress("# TYPE m gauge\nm 1\n"));
}

TEST_F(GatewayLoopback, DeadAndSlowNodesFailAloneWithTheirOwnStatus) {
  FakeExporter fast([](const HttpRequest&) { return HttpResponse::Text(200, "m 1\n"); });
  FakeExporter slow([](const HttpRequest&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    return HttpResponse::Text(200, "m 1\n");
  });
  FakeExporter broken([](const HttpRequest&) { return HttpResponse::Text(500, "oops\n"); });
  StartGateway(StaticTargets({{"fast", fast.url()},
                              {"slow", slow.url()},
                              {"broken", broken.url()},
                              {"dead", "http://127.0.0.1:1/metrics"}}) +
               "scrape: {timeout_offset: 0s}\n");
  const http::ClientHeaders timeout{{"X-Prometheus-Scrape-Timeout-Seconds", "1"}};
  auto slow_call =
      std::async(std::launch::async, [&] { return Call("GET", "/proxy?target=slow", timeout); });
  auto fast_call = Call("GET", "/proxy?target=fast", timeout);
  EXPECT_EQ(fast_call.response.status, 200);
  const auto slow_result = slow_call.get();
  EXPECT_EQ(slow_result.response.status, 504);
  EXPECT_THAT(slow_result.response.body, HasSubstr("timeout"));
  const auto dead = Call("GET", "/proxy?target=dead");
  EXPECT_EQ(dead.response.status, 502);
  EXPECT_THAT(dead.response.body, HasSubstr("connect"));
  EXPECT_EQ(Call("GET", "/proxy?target=broken").response.status, 502);
  EXPECT_EQ(Call("GET", "/proxy?target=nobody").response.status, 404);
  EXPECT_EQ(Call("GET", "/proxy").response.status, 400);

  const auto metrics = Call("GET", "/metrics").response.body;
  EXPECT_THAT(metrics, HasSubstr("meshflow_gateway_target_up{node=\"fast\",source=\"static\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("meshflow_gateway_target_up{node=\"slow\",source=\"static\"} 0"));
  EXPECT_THAT(metrics, HasSubstr("meshflow_gateway_target_up{node=\"dead\",source=\"static\"} 0"));
  EXPECT_THAT(metrics, HasSubstr("meshflow_gateway_scrape_duration_seconds{node=\"fast\"}"));
  EXPECT_THAT(metrics, HasSubstr("meshflow_build_info{"));
  EXPECT_THAT(metrics, HasSubstr("process_resident_memory_bytes"));
}

TEST_F(GatewayLoopback, ADeadNodeHoldsAtMostItsShareOfWorkers) {
  FakeExporter slow([](const HttpRequest&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    return HttpResponse::Text(200, "m 1\n");
  });
  FakeExporter fast([](const HttpRequest&) { return HttpResponse::Text(200, "m 1\n"); });
  StartGateway(StaticTargets({{"slow", slow.url()}, {"fast", fast.url()}}) +
               "scrape: {concurrency: 2, max_inflight_per_node: 1, timeout_offset: 0s}\n");
  // Requests that ask alike share one scrape; these ask differently (gzip or not), so one scrape
  // runs and the node's only slot refuses the others.
  std::vector<std::future<http::FetchResult>> calls;
  for (const char* encoding : {"gzip", "identity", "identity"}) {
    calls.push_back(std::async(std::launch::async, [&, encoding] {
      return Call("GET", "/proxy?target=slow",
                  {{"X-Prometheus-Scrape-Timeout-Seconds", "5"}, {"Accept-Encoding", encoding}});
    }));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // The refused scrapes answer at once; by then the other one holds one of two workers.
  const auto refused_by = SteadyClock::now() + std::chrono::seconds(1);
  auto any_ready = [&] {
    for (auto& c : calls)
      if (c.wait_for(std::chrono::milliseconds(0)) == std::future_status::ready) return true;
    return false;
  };
  while (!any_ready() && SteadyClock::now() < refused_by)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(any_ready());
  // The second worker is still free for another node: with a 0.5 s deadline, waiting for a
  // slow scrape to finish (1.5 s) would end in 503/504 instead.
  EXPECT_EQ(Call("GET", "/proxy?target=fast", {{"X-Prometheus-Scrape-Timeout-Seconds", "0.5"}})
                .response.status,
            200);
  std::vector<int> statuses;
  for (auto& c : calls) statuses.push_back(c.get().response.status);
  std::sort(statuses.begin(), statuses.end());
  EXPECT_EQ(statuses, (std::vector<int>{200, 503, 503}));
  EXPECT_THAT(Call("GET", "/metrics").response.body,
              HasSubstr("meshflow_gateway_scrapes_refused_total 2"));
}

// An exporter's probe series for one link: every call reports 10 more replies and 1 more loss,
// so two scrapes a resolution apart make one point of history.
std::string ProbeExposition(int call) {
  const std::string link = "src_node=\"alpha\",dst_node=\"beta\",method=\"udp\"";
  const int replies = 10 * call;
  return "# TYPE meshflow_probe_lost_total counter\nmeshflow_probe_lost_total{" + link + "} " +
         std::to_string(call) +
         "\n# TYPE meshflow_probe_rtt_seconds histogram\nmeshflow_probe_rtt_seconds_bucket{" +
         link + ",le=\"0.01\"} " + std::to_string(replies) +
         "\nmeshflow_probe_rtt_seconds_bucket{" + link + ",le=\"+Inf\"} " +
         std::to_string(replies) + "\nmeshflow_probe_rtt_seconds_sum{" + link + "} " +
         std::to_string(0.005 * replies) + "\nmeshflow_probe_rtt_seconds_count{" + link + "} " +
         std::to_string(replies) + "\n";
}

// Without remote_write and without anyone scraping through /proxy, the gateway's own scrape
// loop still feeds the mesh view's history.
TEST_F(GatewayLoopback, ScrapeLoopFeedsTheMeshViewWithoutRemoteWrite) {
  std::atomic<int> calls{0};
  FakeExporter exporter(
      [&](const HttpRequest&) { return HttpResponse::Text(200, ProbeExposition(++calls)); });
  StartGateway(StaticTargets({{"alpha", exporter.url()}}) +
               "scrape_interval: 1s\nmesh: {resolution: 1s}\n");
  std::string body;
  const auto give_up = SteadyClock::now() + std::chrono::seconds(20);
  while (SteadyClock::now() < give_up) {
    const auto r = Call("GET", "/api/v1/mesh?window=1m&method=udp");
    ASSERT_EQ(r.response.status, 200) << r.response.body;
    body = r.response.body;
    if (body.find("\"received\":") != std::string::npos &&
        body.find("\"received\":0,") == std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_GE(calls.load(), 2);
  EXPECT_THAT(body, HasSubstr("\"src\":\"alpha\",\"dst\":\"beta\""));
  EXPECT_THAT(body, HasSubstr("\"state\":\"fresh\""));
  EXPECT_THAT(body, ::testing::Not(HasSubstr("\"received\":0,")));
}

// /proxy keeps its node's slot and its workers while the scrape loop runs (here for
// remote_write, whose receiver is down): the loop's scrapes of a slow node have their own.
TEST_F(GatewayLoopback, ProxyIsNeverRefusedForTheScrapeLoop) {
  std::atomic<int> loop_calls{0};
  FakeExporter slow([&](const HttpRequest& r) {
    if (r.Header("X-Prometheus-Scrape-Timeout-Seconds").rfind("1.", 0) == 0) ++loop_calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(900));
    return HttpResponse::Text(200, "m 1\n");
  });
  StartGateway(StaticTargets({{"slow", slow.url()}}) +
               "scrape_interval: 1s\n"
               "scrape: {concurrency: 1, max_inflight_per_node: 1, timeout_offset: 0s}\n"
               "remote_write:\n  - url: 'http://127.0.0.1:1/api/v1/write'\n");
  // The loop scrapes the node back to back: each scrape takes most of its one-second round.
  for (int i = 0; i < 4; ++i) {
    const auto r =
        Call("GET", "/proxy?target=slow", {{"X-Prometheus-Scrape-Timeout-Seconds", "5"}});
    EXPECT_EQ(r.response.status, 200) << i << ": " << r.response.body;
    EXPECT_EQ(r.response.body, "m 1\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  EXPECT_GE(loop_calls.load(), 2);
  const auto metrics = Call("GET", "/metrics").response.body;
  EXPECT_NE(metrics.find("meshflow_gateway_scrapes_refused_total 0\n"), std::string::npos);
}

// Concurrent requests for one node asked alike share one upstream scrape.
TEST_F(GatewayLoopback, ConcurrentProxyRequestsShareOneScrape) {
  std::atomic<int> upstream{0};
  FakeExporter slow([&](const HttpRequest&) {
    ++upstream;
    std::this_thread::sleep_for(std::chrono::seconds(2));
    return HttpResponse::Text(200, "m 1\n");
  });
  StartGateway(StaticTargets({{"slow", slow.url()}}) + "scrape: {max_inflight_per_node: 1}\n");
  std::vector<std::future<http::FetchResult>> calls;
  for (int i = 0; i < 8; ++i) {
    calls.push_back(std::async(std::launch::async, [&] {
      return Call("GET", "/proxy?target=slow", {{"X-Prometheus-Scrape-Timeout-Seconds", "5"}});
    }));
  }
  for (auto& c : calls) EXPECT_EQ(c.get().response.status, 200);
  EXPECT_LE(upstream.load(), 2);
}

TEST_F(GatewayLoopback, TargetsAnswerInHttpSdFormat) {
  StartGateway(
      "targets:\n  static:\n    - {node: ct-serv-jp, url: 'http://127.0.0.1:1/metrics'}\n"
      "  push:\n    - {node: laptop-agent, token_file: laptop.token}\n");
  const auto r = Call("GET", "/targets");
  ASSERT_EQ(r.response.status, 200);
  EXPECT_EQ(r.response.Header("content-type"), "application/json");
  const std::string host = base_.substr(7);
  EXPECT_EQ(r.response.body,
            "[{\"targets\":[\"" + host +
                "\"],\"labels\":{\"node\":\"ct-serv-jp\",\"__metrics_path__\":\"/proxy\","
                "\"__param_target\":\"ct-serv-jp\"}},{\"targets\":[\"" +
                host +
                "\"],\"labels\":{\"node\":\"laptop-agent\",\"__metrics_path__\":\"/proxy\","
                "\"__param_target\":\"laptop-agent\"}}]\n");
}

TEST_F(GatewayLoopback, PushIsServedAndBadPushesChangeNothing) {
  StartGateway(
      "targets:\n  push:\n    - {node: laptop-agent, token_file: laptop.token}\n"
      "    - {node: acer-agent, token_file: acer.token}\n"
      "push: {max_body_bytes: 2048}\n");
  EXPECT_EQ(Call("GET", "/proxy?target=laptop-agent").response.status, 503);
  auto r = Push("laptop-agent", kLaptopToken, "# TYPE m gauge\nm 1\n");
  ASSERT_EQ(r.response.status, 200) << r.response.body;
  EXPECT_EQ(Call("GET", "/proxy?target=laptop-agent").response.body, "# TYPE m gauge\nm 1\n");

  EXPECT_EQ(Push("laptop-agent", kLaptopToken, "m{ 2\n").response.status, 400);
  EXPECT_EQ(Push("laptop-agent", kLaptopToken, std::string(3000, '#')).response.status, 413);
  EXPECT_EQ(Push("laptop-agent", "wrong-token-wrong-token-wrong", "m 2\n").response.status, 401);
  EXPECT_EQ(Push("laptop-agent", kAcerToken, "m 2\n").response.status, 403);
  EXPECT_EQ(Call("POST", "/push?node=laptop-agent", {}, "m 2\n").response.status, 401);
  EXPECT_EQ(Call("GET", "/proxy?target=laptop-agent").response.body, "# TYPE m gauge\nm 1\n");
  EXPECT_EQ(Call("GET", "/proxy?target=acer-agent").response.status, 503);

  const auto metrics = Call("GET", "/metrics").response.body;
  for (const char* reason : {"malformed", "too_large", "bad_token", "wrong_node", "missing_token"})
    EXPECT_THAT(metrics, HasSubstr("meshflow_gateway_push_rejected_total{reason=\"" +
                                   std::string(reason) + "\"} 1"));
  EXPECT_THAT(metrics,
              HasSubstr("meshflow_gateway_target_up{node=\"laptop-agent\",source=\"push\"} 1"));
  EXPECT_THAT(metrics,
              HasSubstr("meshflow_gateway_target_up{node=\"acer-agent\",source=\"push\"} 0"));
  EXPECT_THAT(metrics,
              HasSubstr("meshflow_gateway_last_push_timestamp_seconds{node=\"laptop-agent\"}"));
}

TEST_F(GatewayLoopback, PusherDeliversTheExposition) {
  StartGateway("targets:\n  push:\n    - {node: laptop-agent, token_file: laptop.token}\n");
  PusherOptions o;
  o.url = base_ + "/push";
  o.token_file = dir_ + "/laptop.token";
  o.interval = std::chrono::milliseconds(500);
  Pusher pusher(o);
  pusher.Start("laptop-agent", [] { return std::string("# TYPE pushed gauge\npushed 42\n"); });
  pusher.Stop();  // the first push happens at once, before the first wait
  EXPECT_EQ(Call("GET", "/proxy?target=laptop-agent").response.body,
            "# TYPE pushed gauge\npushed 42\n");
  Pusher impostor(o);
  impostor.Start("acer-agent", [] { return std::string("x 1\n"); });
  impostor.Stop();
  EXPECT_FALSE(impostor.PushOnce());
}

TEST_F(GatewayLoopback, FederateMergesScrapedAndPushedNodes) {
  FakeExporter a([](const HttpRequest&) {
    return HttpResponse::Text(200, "# TYPE meshflow_x gauge\nmeshflow_x{peer=\"b\"} 1\nother 5\n");
  });
  StartGateway(StaticTargets({{"acer-agent", a.url()}, {"dead", "http://127.0.0.1:1/metrics"}}) +
               "  push:\n    - {node: laptop-agent, token_file: laptop.token}\n");
  ASSERT_EQ(
      Push("laptop-agent", kLaptopToken, "# TYPE meshflow_x gauge\nmeshflow_x 2\n").response.status,
      200);
  auto r = Call("GET", "/federate?match[]=%7B__name__%3D~%22meshflow_.*%22%7D");
  ASSERT_EQ(r.response.status, 200) << r.response.body;
  EXPECT_EQ(r.response.body,
            "# TYPE meshflow_x gauge\nmeshflow_x{peer=\"b\",node=\"acer-agent\"} 1\n"
            "meshflow_x{node=\"laptop-agent\"} 2\n");
  r = Call("GET", "/federate?match[]=other&match[]=meshflow_x%7Bnode%3D%22laptop-agent%22%7D");
  EXPECT_EQ(r.response.body,
            "# TYPE meshflow_x gauge\nmeshflow_x{node=\"laptop-agent\"} 2\n"
            "# TYPE other untyped\nother{node=\"acer-agent\"} 5\n");
  EXPECT_EQ(Call("GET", "/federate").response.status, 400);
  EXPECT_EQ(Call("GET", "/federate?match[]=%7B%7D").response.status, 400);
}

TEST_F(GatewayLoopback, NoReloadByHttpWithoutLifecycle) {
  StartGateway("targets:\n  static:\n    - {node: one, url: 'http://127.0.0.1:1/metrics'}\n");
  EXPECT_EQ(Call("POST", "/-/reload").response.status, 404);
}

// POST /-/reload waits for the control thread (main() in the daemon) to reload: the config is
// never parsed on an HTTP worker.
TEST_F(GatewayLoopback, ReloadPicksUpNewTargetsOnTheControlThread) {
  ControlLoop control(/*take_signals=*/false);
  request_reload_ = [&control] { return control.RequestReload(); };
  std::atomic<int> reloads_elsewhere{0};
  std::thread control_thread([&] {
    const auto me = std::this_thread::get_id();
    control.Run([&] {
      if (std::this_thread::get_id() != me) ++reloads_elsewhere;
      return gateway_->Reload();
    });
  });
  StartGateway("targets:\n  static:\n    - {node: one, url: 'http://127.0.0.1:1/metrics'}\n");
  std::ofstream(dir_ + "/gateway.yaml")
      << "targets:\n  static:\n    - {node: two, url: 'http://127.0.0.1:1/metrics'}\n";
  EXPECT_EQ(Call("POST", "/-/reload").response.status, 200);
  EXPECT_THAT(Call("GET", "/targets").response.body, HasSubstr("\"two\""));
  std::ofstream(dir_ + "/gateway.yaml") << "targets:\n  bogus: 1\n";
  const auto r = Call("POST", "/-/reload");
  EXPECT_EQ(r.response.status, 500);
  EXPECT_THAT(r.response.body, HasSubstr("gateway.yaml:2:3"));
  EXPECT_THAT(Call("GET", "/targets").response.body, HasSubstr("\"two\""));
  control.Quit();
  control_thread.join();
  EXPECT_EQ(reloads_elsewhere, 0);
  // Once the loop has stopped, a request is refused at once instead of waiting forever.
  const auto late = Call("POST", "/-/reload");
  EXPECT_EQ(late.response.status, 500);
  EXPECT_THAT(late.response.body, HasSubstr("stopping"));
}

}  // namespace
}  // namespace meshflow::gateway
