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

}  // namespace
}  // namespace meshflow
