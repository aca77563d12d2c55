// The Kubernetes source against a TLS server on loopback that answers with recorded-shape API
// responses (tests/fixtures/discovery/k8s-*): list, watch with ADDED/MODIFIED/DELETED/BOOKMARK,
// 410 Gone inside a watch and as a status, a 5xx, malformed JSON, and a token rotation. No real
// API server is involved; the fixtures are reconstructed in the exact shape of the v1 API.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "common/discovery/kubernetes.h"

namespace meshflow::discovery {
namespace {

namespace fs = std::filesystem;

std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(MESHFLOW_DISCOVERY_FIXTURES) + "/" + name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Answers each HTTPS request with the next queued response, then closes the connection.
class FakeApiServer {
 public:
  struct Response {
    int status;
    std::string body;
    // Non-empty: sent chunked, one chunk every `gap`, then (when `hold`) the connection stays
    // open until Release() or the server stops, as a watch does.
    std::vector<std::string> chunks = {};
    std::chrono::milliseconds gap{0};
    bool hold = false;
  };
  struct Seen {
    std::string request_line;
    std::string authorization;
  };

  FakeApiServer(const std::string& cert, const std::string& key) {
    // A client that went away (a cancelled watch) must not end the test with SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    ctx_ = SSL_CTX_new(TLS_server_method());
    EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM), 1);
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(fd_, 8), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeApiServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
    SSL_CTX_free(ctx_);
  }
  uint16_t port() const { return port_; }
  void Queue(int status, std::string body) {
    std::lock_guard lock(mutex_);
    queue_.push_back({status, std::move(body)});
  }
  void QueueStream(std::vector<std::string> chunks, std::chrono::milliseconds gap, bool hold) {
    std::lock_guard lock(mutex_);
    queue_.push_back({200, "", std::move(chunks), gap, hold});
  }
  void Release() { released_ = true; }
  std::vector<Seen> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  void Run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, c);
      if (SSL_accept(ssl) == 1) Serve(ssl);
      SSL_shutdown(ssl);
      SSL_free(ssl);
      close(c);
    }
  }
  void Serve(SSL* ssl) {
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      const int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) return;
      head.append(buf, static_cast<size_t>(n));
    }
    Seen s;
    s.request_line = head.substr(0, head.find("\r\n"));
    const auto auth = head.find("Authorization: ");
    if (auth != std::string::npos)
      s.authorization = head.substr(auth + 15, head.find("\r\n", auth) - auth - 15);
    Response r{500, "{\"kind\":\"Status\",\"message\":\"nothing queued\"}"};
    {
      std::lock_guard lock(mutex_);
      seen_.push_back(s);
      if (!queue_.empty()) {
        r = queue_.front();
        queue_.pop_front();
      }
    }
    if (!r.chunks.empty()) {
      const std::string start =
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: "
          "chunked\r\nConnection: close\r\n\r\n";
      SSL_write(ssl, start.data(), static_cast<int>(start.size()));
      for (const auto& c : r.chunks) {
        std::this_thread::sleep_for(r.gap);
        char size[32];
        snprintf(size, sizeof size, "%zx\r\n", c.size());
        const std::string chunk = size + c + "\r\n";
        if (SSL_write(ssl, chunk.data(), static_cast<int>(chunk.size())) <= 0) return;
      }
      while (r.hold && !released_ && !stop_)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      SSL_write(ssl, "0\r\n\r\n", 5);
      return;
    }
    const std::string out =
        "HTTP/1.1 " + std::to_string(r.status) +
        " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(r.body.size()) +
        "\r\nConnection: close\r\n\r\n" + r.body;
    SSL_write(ssl, out.data(), static_cast<int>(out.size()));
  }

  SSL_CTX* ctx_ = nullptr;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> released_{false};
  std::mutex mutex_;
  std::deque<Response> queue_;
  std::vector<Seen> seen_;
  std::thread thread_;
};

class KubernetesApi : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mfdisc-k8s-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '" +
        (dir_ / "key.pem").string() + "' -out '" + (dir_ / "ca.crt").string() + "' 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    WriteToken("token-1");
    server_ =
        std::make_unique<FakeApiServer>((dir_ / "ca.crt").string(), (dir_ / "key.pem").string());
    config_.enabled = true;
    config_.api_server = "https://127.0.0.1:" + std::to_string(server_->port());
    config_.token_file = (dir_ / "token").string();
    config_.ca_file = (dir_ / "ca.crt").string();
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }
  void WriteToken(const std::string& t) { std::ofstream(dir_ / "token") << t << "\n"; }
  static std::map<std::string, IpPrefix> ByName(const PollResult& r) {
    std::map<std::string, IpPrefix> out;
    for (const auto& n : *r.nodes) out.emplace(n.name, n.addresses.front());
    return out;
  }

  fs::path dir_;
  std::unique_ptr<FakeApiServer> server_;
  DiscoveryConfig::Kubernetes config_;
};

IpPrefix P(const char* t) { return *IpPrefix::Parse(t); }

TEST_F(KubernetesApi, ListWatchGoneAndTokenRotation) {
  KubernetesSource source(config_, std::chrono::seconds(1));
  server_->Queue(200, Fixture("k8s-nodelist.json"));
  PollResult r = source.Poll();
  ASSERT_TRUE(r.nodes) << r.error;
  auto nodes = ByName(r);
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes.at("acer-agent"), P("100.101.102.3/32"));

  // The kubelet rotated the token: the next request carries the new one.
  WriteToken("token-2");
  server_->Queue(200, Fixture("k8s-watch-events.jsonl"));
  r = source.Poll();
  ASSERT_TRUE(r.nodes) << r.error;
  nodes = ByName(r);
  EXPECT_EQ(nodes.size(), 3u);
  EXPECT_TRUE(nodes.count("laptop-7"));                       // ADDED
  EXPECT_EQ(nodes.at("acer-agent"), P("100.101.102.33/32"));  // MODIFIED
  EXPECT_FALSE(nodes.count("spot-vm-1"));                     // DELETED

  // A server error: the poll fails, and the watch resumes from the bookmark afterwards.
  server_->Queue(503, "{\"kind\":\"Status\",\"code\":503}");
  r = source.Poll();
  EXPECT_FALSE(r.nodes);
  EXPECT_NE(r.error.find("HTTP 503"), std::string::npos) << r.error;

  // 410 Gone inside the watch stream: a fresh list in the same poll.
  server_->Queue(200, Fixture("k8s-watch-gone.jsonl"));
  server_->Queue(200, Fixture("k8s-nodelist-after-gone.json"));
  r = source.Poll();
  ASSERT_TRUE(r.nodes) << r.error;
  EXPECT_EQ(ByName(r).size(), 3u);
  EXPECT_EQ(source.lists(), 2u);

  // 410 as the response status does the same.
  server_->Queue(410, "{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}");
  server_->Queue(200, Fixture("k8s-nodelist.json"));
  r = source.Poll();
  ASSERT_TRUE(r.nodes) << r.error;
  EXPECT_EQ(source.lists(), 3u);

  // Malformed JSON in a watch: an error that changes nothing, then a fresh list.
  server_->Queue(200, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\"}");
  r = source.Poll();
  EXPECT_FALSE(r.nodes);
  EXPECT_NE(r.error.find("line 1"), std::string::npos) << r.error;
  server_->Queue(200, Fixture("k8s-nodelist.json"));
  r = source.Poll();
  ASSERT_TRUE(r.nodes) << r.error;
  EXPECT_EQ(source.lists(), 4u);

  const auto seen = server_->seen();
  ASSERT_GE(seen.size(), 9u);
  EXPECT_EQ(seen[0].request_line, "GET /api/v1/nodes HTTP/1.1");
  EXPECT_EQ(seen[0].authorization, "Bearer token-1");
  EXPECT_EQ(seen[1].authorization, "Bearer token-2");
  EXPECT_NE(seen[1].request_line.find("watch=1"), std::string::npos);
  EXPECT_NE(seen[1].request_line.find("resourceVersion=1010"), std::string::npos);
  // After the 503, the watch resumes from the BOOKMARK's version.
  EXPECT_NE(seen[3].request_line.find("resourceVersion=1030"), std::string::npos);
}

// The watch is applied as it streams: each event is published while the server still holds the
// connection open (a line split across two chunks included), and Cancel() ends the watch at once.
TEST_F(KubernetesApi, WatchEventsApplyAsTheyStreamAndCancelIsPrompt) {
  KubernetesSource source(config_, std::chrono::seconds(60));
  std::mutex mutex;
  std::vector<std::vector<DiscoveredNode>> published;
  source.SetUpdate([&](std::vector<DiscoveredNode> nodes) {
    std::lock_guard lock(mutex);
    published.push_back(std::move(nodes));
  });
  server_->Queue(200, Fixture("k8s-nodelist.json"));
  PollResult r = source.Poll();
  ASSERT_TRUE(r.nodes) << r.error;
  ASSERT_EQ(ByName(r).size(), 3u);

  std::vector<std::string> lines;
  std::istringstream events(Fixture("k8s-watch-events.jsonl"));
  for (std::string line; std::getline(events, line);) lines.push_back(line + "\n");
  ASSERT_EQ(lines.size(), 4u);  // ADDED laptop-7, MODIFIED acer-agent, DELETED spot-vm-1, BOOKMARK
  std::vector<std::string> chunks{lines[0], lines[1].substr(0, 40), lines[1].substr(40), lines[2],
                                  lines[3]};
  server_->QueueStream(chunks, std::chrono::milliseconds(50), /*hold=*/true);
  std::atomic<bool> returned{false};
  PollResult watched;
  std::thread poller([&] {
    watched = source.Poll();
    returned = true;
  });
  // All three changes published, each one as its line arrived, the watch still open.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    {
      std::lock_guard lock(mutex);
      if (published.size() >= 3) break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "events not published";
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(returned);
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(published.size(), 3u);  // the BOOKMARK changes no node
    auto names = [](const std::vector<DiscoveredNode>& set) {
      std::map<std::string, IpPrefix> out;
      for (const auto& n : set) out.emplace(n.name, n.addresses.front());
      return out;
    };
    EXPECT_TRUE(names(published[0]).count("laptop-7"));
    EXPECT_EQ(names(published[0]).at("acer-agent"), P("100.101.102.3/32"));
    EXPECT_EQ(names(published[1]).at("acer-agent"), P("100.101.102.33/32"));
    EXPECT_TRUE(names(published[1]).count("spot-vm-1"));
    EXPECT_FALSE(names(published[2]).count("spot-vm-1"));
  }
  // Stop: the watch ends within a fraction of a second, not at its 60 s timeout.
  const auto cancel_at = std::chrono::steady_clock::now();
  source.Cancel();
  poller.join();
  const auto took = std::chrono::steady_clock::now() - cancel_at;
  EXPECT_LT(took, std::chrono::milliseconds(500));
  std::cout << "watch ended " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
            << " ms after Cancel()\n";
  EXPECT_FALSE(watched.nodes);
  EXPECT_EQ(watched.error, "stopped");
  server_->Release();
  // A cancelled source polls no more.
  EXPECT_EQ(source.Poll().error, "stopped");
}

TEST_F(KubernetesApi, UntrustedCertificateAndMissingTokenAreErrors) {
  fs::path other = dir_ / "other.crt";
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=127.0.0.1 -keyout /dev/null -out '" +
      other.string() + "' 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto c = config_;
  c.ca_file = other.string();
  server_->Queue(200, Fixture("k8s-nodelist.json"));
  PollResult r = KubernetesSource(c).Poll();
  EXPECT_FALSE(r.nodes);
  EXPECT_NE(r.error.find("tls"), std::string::npos) << r.error;
  c = config_;
  c.token_file = (dir_ / "no-such-token").string();
  r = KubernetesSource(c).Poll();
  EXPECT_FALSE(r.nodes);
  EXPECT_NE(r.error.find("token"), std::string::npos) << r.error;
}

}  // namespace
}  // namespace meshflow::discovery
