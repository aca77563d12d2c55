// Serving benchmark for issue "exporter core": latency of GET /metrics with N series through the
// real Exporter (civetweb, collectors, serializer, gzip), and this process's resident memory.
//
//   serving_bench serve N          serve N flow-shaped series, measure itself, print one line
//   serving_bench client URL K     time K scrapes of any exporter (node_exporter as the peer)
//
// The series come from a collector that builds them the way the flow collector does (label
// values from a node x node x role grid), so the serializer and HTTP path do the real work.
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/core/log.h"
#include "common/core/metric_builder.h"
#include "exporter/exporter.h"

namespace {

class GridCollector final : public meshflow::Collector {
 public:
  explicit GridCollector(int series) : series_(series) {}
  void Collect(std::vector<prometheus::MetricFamily>& out) override {
    static const char* kRoles[] = {"k8s-api", "redis",       "postgresql", "cli-relay", "http",
                                   "https",   "etcd-client", "kubelet",    "dns",       "other"};
    meshflow::FamilyBuilder bytes("meshflow_flow_bytes_total", "Bytes by role and node pair.",
                                  prometheus::MetricType::Counter);
    int n = 0;
    for (int src = 0; n < series_; ++src) {
      for (int dst = 0; dst < 100 && n < series_; ++dst) {
        for (const char* role : kRoles) {
          if (n++ >= series_) break;
          bytes.Counter({{"iface", "tailscale0"},
                         {"role", role},
                         {"src_node", "node-" + std::to_string(src)},
                         {"dst_node", "node-" + std::to_string(dst)}},
                        1e6 + n * 1234.5);
        }
      }
    }
    bytes.AppendTo(out);
  }

 private:
  int series_;
};

struct Url {
  std::string host;
  int port;
  std::string path;
};

Url ParseUrl(const std::string& url) {
  // http://HOST:PORT/PATH
  const auto rest = url.substr(url.find("//") + 2);
  const auto slash = rest.find('/');
  const auto hostport = rest.substr(0, slash);
  const auto colon = hostport.rfind(':');
  return {hostport.substr(0, colon), std::stoi(hostport.substr(colon + 1)),
          slash == std::string::npos ? "/" : rest.substr(slash)};
}

// One keep-alive connection, K requests; returns per-request latency in seconds.
std::vector<double> TimeScrapes(const Url& url, int count, bool gzip) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(url.port));
  inet_pton(AF_INET, url.host.c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error("connect: " + std::string(std::strerror(errno)));
  }
  const std::string request = "GET " + url.path + " HTTP/1.1\r\nHost: " + url.host +
                              "\r\nUser-Agent: meshflow-bench\r\n" +
                              (gzip ? "Accept-Encoding: gzip\r\n" : "") + "\r\n";
  std::vector<double> latencies;
  std::string buffer;
  buffer.reserve(4 << 20);
  char chunk[65536];
  for (int i = 0; i < count; ++i) {
    const auto start = std::chrono::steady_clock::now();
    if (send(fd, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size())) {
      throw std::runtime_error("send failed");
    }
    buffer.clear();
    size_t header_end = std::string::npos, body_length = 0;
    bool chunked = false;
    for (;;) {
      const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) throw std::runtime_error("connection closed mid-response");
      buffer.append(chunk, static_cast<size_t>(n));
      if (header_end == std::string::npos) {
        header_end = buffer.find("\r\n\r\n");
        if (header_end == std::string::npos) continue;
        std::string headers = buffer.substr(0, header_end);
        std::transform(headers.begin(), headers.end(), headers.begin(), ::tolower);
        const auto cl = headers.find("content-length:");
        chunked = headers.find("transfer-encoding: chunked") != std::string::npos;
        if (cl == std::string::npos && !chunked) throw std::runtime_error("no Content-Length");
        if (!chunked) body_length = std::stoul(headers.substr(cl + 15));
      }
      // Go's net/http streams large bodies chunked; the last chunk is "0\r\n\r\n".
      if (chunked ? buffer.size() >= header_end + 9 &&
                        buffer.compare(buffer.size() - 5, 5, "0\r\n\r\n") == 0
                  : buffer.size() >= header_end + 4 + body_length)
        break;
    }
    latencies.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  close(fd);
  return latencies;
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}

long RssKiB(const std::string& pid) {
  std::ifstream status("/proc/" + pid + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

void Report(const std::string& who, const std::vector<double>& plain,
            const std::vector<double>& gzip, long rss_kib) {
  std::printf("%s median_ms=%.3f p99_ms=%.3f gzip_median_ms=%.3f gzip_p99_ms=%.3f rss_kib=%ld\n",
              who.c_str(), Quantile(plain, 0.5) * 1e3, Quantile(plain, 0.99) * 1e3,
              Quantile(gzip, 0.5) * 1e3, Quantile(gzip, 0.99) * 1e3, rss_kib);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "serve") {
    const int series = std::stoi(argv[2]);
    const int count = argc >= 4 ? std::stoi(argv[3]) : 200;
    meshflow::SetUpLogging("warn", meshflow::LogFormat::kLogfmt);
    meshflow::ExporterOptions options;
    options.listen_addresses = {"127.0.0.1:0"};
    meshflow::Exporter exporter(options);
    exporter.AddCollector("bench_grid", std::make_unique<GridCollector>(series));
    exporter.Start();
    const auto address = exporter.BoundAddresses().at(0);
    const Url url{"127.0.0.1", std::stoi(address.substr(address.rfind(':') + 1)), "/metrics"};
    TimeScrapes(url, 5, false);  // warm up allocator and caches
    const auto plain = TimeScrapes(url, count, false);
    const auto gzip = TimeScrapes(url, count, true);
    Report("meshflow series=" + std::to_string(series), plain, gzip, RssKiB("self"));
    exporter.Stop();
    return 0;
  }
  if (argc >= 5 && std::string(argv[1]) == "client") {
    const Url url = ParseUrl(argv[2]);
    const int count = std::stoi(argv[3]);
    TimeScrapes(url, 5, false);
    const auto plain = TimeScrapes(url, count, false);
    const auto gzip = TimeScrapes(url, count, true);
    Report(argv[4], plain, gzip, argc >= 6 ? RssKiB(argv[5]) : -1);
    return 0;
  }
  std::fprintf(stderr,
               "usage: serving_bench serve SERIES [COUNT]\n"
               "       serving_bench client URL COUNT NAME [PID]\n");
  return 2;
}
