#include "common/http/http_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

namespace meshflow {
namespace {

std::string Gunzip(const std::string& data) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  std::string out(1 << 20, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

TEST(Gzip, RoundTrips) {
  std::string text;
  for (int i = 0; i < 1000; ++i)
    text += "meshflow_flow_bytes_total{role=\"redis\"} " + std::to_string(i) + "\n";
  const auto packed = GzipCompress(text);
  EXPECT_LT(packed.size(), text.size() / 5);
  EXPECT_EQ(Gunzip(packed), text);
}

TEST(AcceptsGzip, FollowsQualityValues) {
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("deflate, gzip;q=0.5"));
  EXPECT_TRUE(AcceptsGzip("GZIP"));
  EXPECT_TRUE(AcceptsGzip("*"));
  EXPECT_FALSE(AcceptsGzip(""));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzipx"));
}

TEST(HttpRequest, QueryValuesAreDecodedAndRepeatable) {
  HttpRequest r;
  r.query = "match%5B%5D=up&x=1&match[]=%7Bjob%3D%22a%22%7D&target=node+1";
  EXPECT_THAT(r.QueryValues("match[]"), ::testing::ElementsAre("up", "{job=\"a\"}"));
  EXPECT_EQ(r.QueryValue("target"), "node 1");
  EXPECT_FALSE(r.QueryValue("missing"));
  r.headers = {{"Accept-Encoding", "gzip"}};
  EXPECT_EQ(r.Header("accept-encoding"), "gzip");
}

TEST(ListenAddress, TranslatesExporterToolkitSyntax) {
  EXPECT_EQ(HttpServer::ToCivetwebPorts({":9474"}), "9474");
  EXPECT_EQ(HttpServer::ToCivetwebPorts({"127.0.0.1:0", "localhost:9"}), "127.0.0.1:0,127.0.0.1:9");
  EXPECT_EQ(HttpServer::ToCivetwebPorts({":9474"}, true), "9474s");
  EXPECT_THROW(HttpServer::ToCivetwebPorts({"host.example:1"}), std::invalid_argument);
  EXPECT_THROW(HttpServer::ToCivetwebPorts({":70000"}), std::invalid_argument);
  EXPECT_THROW(HttpServer::ToCivetwebPorts({"1.2.3.4"}), std::invalid_argument);
  EXPECT_THROW(HttpServer::ToCivetwebPorts({}), std::invalid_argument);
}

// Server-side TCP connections on `port` that are open (established or waiting for us to close),
// read from the kernel's table so that the check does not share code with the server.
int OpenServerConnections(int port) {
  std::ifstream table("/proc/net/tcp");
  std::string line;
  std::getline(table, line);  // header
  int open = 0;
  while (std::getline(table, line)) {
    char local[64] = {};
    char remote[64] = {};
    unsigned state = 0;
    if (std::sscanf(line.c_str(), "%*d: %63s %63s %x", local, remote, &state) != 3) continue;
    const char* colon = std::strchr(local, ':');
    if (colon == nullptr || std::strtol(colon + 1, nullptr, 16) != port) continue;
    if (state == 0x01 || state == 0x08) ++open;  // ESTABLISHED, CLOSE_WAIT
  }
  return open;
}

// One HTTP/1.0 request; false when no answer and no close came within `wait`.
bool RequestIsAnswered(int port, std::chrono::seconds wait) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{static_cast<time_t>(wait.count()), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool answered = true;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\n\r\n";
    send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    char buffer[512];
    ssize_t n = 0;
    while ((n = recv(fd, buffer, sizeof buffer, 0)) > 0) {
    }
    answered = !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  }
  close(fd);
  return answered;
}

// Clients that arrive while the listener restarts (as it does for a renewed certificate) are
// answered or refused, never left waiting, and the server keeps no descriptor for them.
TEST(HttpServerRestart, LeavesNoClientWaitingAndNoConnectionOpen) {
  HttpServerOptions options;
  options.listen_addresses = {"127.0.0.1:0"};
  options.threads = 2;
  HttpServer server(options);
  server.Route("/metrics", {"GET"},
               [](const HttpRequest&) { return HttpResponse::Text(200, "ok\n"); });
  server.Start();
  const int port = server.BoundPorts().at(0);

  std::atomic<bool> done{false};
  std::atomic<int> requests{0};
  std::atomic<int> left_waiting{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 2; ++i) {
    clients.emplace_back([&] {
      while (!done) {
        if (!RequestIsAnswered(port, std::chrono::seconds(3))) ++left_waiting;
        ++requests;
      }
    });
  }
  for (int restart = 0; restart < 25; ++restart) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    server.Restart();
    ASSERT_EQ(server.BoundPorts().at(0), port);
  }
  done = true;
  for (auto& client : clients) client.join();
  EXPECT_GT(requests.load(), 25);
  EXPECT_EQ(left_waiting.load(), 0);

  // Connections the server still serves close within its own answer time; leaked ones never do.
  int open = OpenServerConnections(port);
  for (int i = 0; i < 100 && open > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    open = OpenServerConnections(port);
  }
  EXPECT_EQ(open, 0);
  server.Stop();
}

// Connects from `source` (any 127/8 address), sends `request` and reads until the server closes
// or `wait` passes; returns what came back.
std::string Exchange(int port, const std::string& request, const char* source = "127.0.0.1",
                     std::chrono::seconds wait = std::chrono::seconds(3)) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{static_cast<time_t>(wait.count()), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, source, &local.sin_addr);
  bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    char buffer[4096];
    ssize_t n = 0;
    while ((n = recv(fd, buffer, sizeof buffer, 0)) > 0) out.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

int StatusOf(const std::string& response) {
  if (response.size() < 12) return 0;
  return std::atoi(response.substr(9, 3).c_str());
}

class HttpServerLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions options;
    options.listen_addresses = {"127.0.0.1:0"};
    options.threads = 4;
    options.max_body_bytes = 4096;
    options.max_body_bytes_in_flight = 8192;
    server_ = std::make_unique<HttpServer>(options);
    server_->SetGuard([](const HttpRequest& r) -> std::optional<HttpResponse> {
      if (r.Header("Authorization") == "yes") return std::nullopt;
      return HttpResponse::Text(401, "no\n");
    });
    server_->Route("/echo", {"POST"}, [this](const HttpRequest& r) {
      ++handled_;
      return HttpResponse::Text(200, "got " + std::to_string(r.body.size()) + " [" + r.body + "]");
    });
    RouteOptions big;
    big.max_body_bytes = 16384;
    big.before_body = [](const HttpRequest& r) -> std::optional<HttpResponse> {
      if (r.Header("X-Token") == "ok") return std::nullopt;
      return HttpResponse::Text(403, "bad token\n");
    };
    server_->Route(
        "/big", {"POST"},
        [](const HttpRequest& r) { return HttpResponse::Text(200, std::to_string(r.body.size())); },
        big);
    server_->Route("/metrics", {"GET"},
                   [](const HttpRequest&) { return HttpResponse::Text(200, "ok\n"); });
    server_->Start();
    port_ = server_->BoundPorts().at(0);
  }

  std::unique_ptr<HttpServer> server_;
  std::atomic<int> handled_{0};
  int port_ = 0;
};

// A request is routed and authenticated from its headers: the announced body is never read
// (nor allocated) for a request that is refused anyway.
TEST_F(HttpServerLimits, RefusesBeforeReadingTheBody) {
  const std::string huge = "Content-Length: 8388608\r\n\r\n";
  EXPECT_EQ(StatusOf(Exchange(port_, "POST /echo HTTP/1.1\r\nHost: x\r\n" + huge)), 401);
  EXPECT_EQ(StatusOf(Exchange(
                port_, "POST /nowhere HTTP/1.1\r\nHost: x\r\nAuthorization: yes\r\n" + huge)),
            404);
  EXPECT_EQ(
      StatusOf(Exchange(port_, "GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: yes\r\n" + huge)),
      405);
  EXPECT_EQ(
      StatusOf(Exchange(port_, "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: yes\r\n" + huge)),
      413);
  EXPECT_EQ(StatusOf(Exchange(port_,
                              "POST /big HTTP/1.1\r\nHost: x\r\nAuthorization: yes\r\n"
                              "X-Token: no\r\nContent-Length: 10000\r\n\r\n")),
            403);
  EXPECT_EQ(handled_.load(), 0);
  EXPECT_EQ(server_->Stats().body_too_large, 1u);
}

TEST_F(HttpServerLimits, ReadsBodiesWholeOrRefusesThem) {
  const std::string head =
      "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: yes\r\n"
      "Connection: close\r\n";
  EXPECT_NE(Exchange(port_, head + "Content-Length: 5\r\n\r\nhello").find("got 5 [hello]"),
            std::string::npos);
  // Chunked: read whole, never handed on empty.
  EXPECT_NE(
      Exchange(port_, head + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
          .find("got 7 [abcdefg]"),
      std::string::npos);
  std::string chunks;
  for (int i = 0; i < 5; ++i) chunks += "400\r\n" + std::string(1024, 'x') + "\r\n";
  EXPECT_EQ(
      StatusOf(Exchange(port_, head + "Transfer-Encoding: chunked\r\n\r\n" + chunks + "0\r\n\r\n")),
      413);
  // A body that stops short of its length is not handed on truncated.
  const int fd_status = StatusOf(Exchange(port_, head + "Content-Length: 100\r\n\r\nshort",
                                          "127.0.0.1", std::chrono::seconds(15)));
  EXPECT_EQ(fd_status, 400);
  EXPECT_EQ(handled_.load(), 2);
}

TEST_F(HttpServerLimits, BodiesInFlightShareOneBudget) {
  // /big may take 16 KiB, but all bodies together only 8 KiB.
  EXPECT_EQ(StatusOf(Exchange(port_,
                              "POST /big HTTP/1.1\r\nHost: x\r\nAuthorization: yes\r\n"
                              "X-Token: ok\r\nContent-Length: 10000\r\n\r\n")),
            503);
  EXPECT_EQ(server_->Stats().body_budget_exhausted, 1u);
  const std::string ok =
      Exchange(port_,
               "POST /big HTTP/1.1\r\nHost: x\r\nAuthorization: yes\r\n"
               "X-Token: ok\r\nConnection: close\r\nContent-Length: 6000\r\n\r\n" +
                   std::string(6000, 'y'));
  EXPECT_EQ(StatusOf(ok), 200);
}

TEST_F(HttpServerLimits, RefusesTooManyHeadersAndNulInThePath) {
  std::string headers;
  for (int i = 0; i < 70; ++i) headers += "X-H" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(StatusOf(Exchange(
                port_, "GET /metrics HTTP/1.1\r\nAuthorization: yes\r\n" + headers + "\r\n")),
            431);
  EXPECT_EQ(StatusOf(Exchange(port_,
                              "GET /metrics%00.txt HTTP/1.1\r\nAuthorization: yes\r\n"
                              "Connection: close\r\n\r\n")),
            400);
  EXPECT_EQ(StatusOf(Exchange(port_,
                              "GET /metric%73 HTTP/1.1\r\nAuthorization: yes\r\n"
                              "Connection: close\r\n\r\n")),
            200);
}

// One address holding connections open gets no more than its share of the workers: the others
// keep answering.
TEST_F(HttpServerLimits, OneSourceCannotHoldEveryWorker) {
  std::vector<int> held;
  for (int i = 0; i < 6; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.2", &local.sin_addr);
    bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    held.push_back(fd);
  }
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(StatusOf(Exchange(port_,
                              "GET /metrics HTTP/1.1\r\nAuthorization: yes\r\n"
                              "Connection: close\r\n\r\n")),
            200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  for (int i = 0; i < 50 && server_->Stats().connections_over_source_limit < 4; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(server_->Stats().connections_over_source_limit, 4u);
  for (const int fd : held) close(fd);
}

}  // namespace
}  // namespace meshflow
