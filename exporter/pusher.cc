#include "exporter/pusher.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/core/metric_builder.h"
#include "common/http/gzip.h"
#include "common/http/http_client.h"
#include "common/http/http_server.h"

namespace meshflow {
namespace {

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

class PushCollector final : public Collector {
 public:
  PushCollector(const std::atomic<uint64_t>& ok, const std::atomic<uint64_t>& failed,
                const std::atomic<double>& last)
      : ok_(ok), failed_(failed), last_(last) {}
  void Collect(std::vector<prometheus::MetricFamily>& out) override {
    FamilyBuilder("meshflow_push_total", "Pushes to the gateway, by result.",
                  prometheus::MetricType::Counter)
        .Counter({{"result", "success"}}, static_cast<double>(ok_.load()))
        .Counter({{"result", "failure"}}, static_cast<double>(failed_.load()))
        .AppendTo(out);
    FamilyBuilder("meshflow_push_last_success_timestamp_seconds",
                  "When the gateway last accepted a push.", prometheus::MetricType::Gauge)
        .Gauge({}, last_.load())
        .AppendTo(out);
  }

 private:
  const std::atomic<uint64_t>& ok_;
  const std::atomic<uint64_t>& failed_;
  const std::atomic<double>& last_;
};

}  // namespace

Pusher::Pusher(PusherOptions options) : options_(std::move(options)) {
  std::string why;
  const auto url = http::HttpUrl::Parse(options_.url, &why);
  if (!url) throw std::runtime_error("--push.url " + options_.url + ": " + why);
  const http::TlsClientConfig& tls = options_.tls;
  if (!tls.ca_file.empty() || !tls.cert_file.empty() || !tls.key_file.empty()) {
    if (!url->https) {
      throw std::runtime_error("--push.tls-* files need an https:// --push.url, not " +
                               options_.url);
    }
    tls_ = http::TlsClient::Create(tls, &why);
    if (tls_ == nullptr) throw std::runtime_error("--push.tls-*: " + why);
  }
  if (options_.interval < std::chrono::milliseconds(100))
    throw std::runtime_error("--push.interval must be at least 100ms");
  std::ifstream in(options_.token_file);
  if (!in) throw std::runtime_error("--push.token-file " + options_.token_file + ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  token_ = ss.str();
  while (!token_.empty() &&
         (token_.back() == '\n' || token_.back() == '\r' || token_.back() == ' '))
    token_.pop_back();
  if (token_.empty())
    throw std::runtime_error("--push.token-file " + options_.token_file + " is empty");
}

Pusher::~Pusher() { Stop(); }

void Pusher::Start(std::string node, std::function<std::string()> scrape) {
  node_ = std::move(node);
  scrape_ = std::move(scrape);
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Run(); });
  spdlog::info("pushing to {} as node {} every {}ms", options_.url, node_,
               options_.interval.count());
}

void Pusher::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Pusher::Run() {
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    // The first push goes out at once, even when Stop() follows right away.
    PushOnce();
    next += options_.interval;
    // After a long stall, start afresh instead of pushing a burst to catch up.
    if (next < std::chrono::steady_clock::now()) next = std::chrono::steady_clock::now();
    std::unique_lock lock(mutex_);
    if (wake_.wait_until(lock, next, [this] { return stopping_; })) return;
  }
}

bool Pusher::PushOnce() {
  http::ClientRequest request;
  const std::string url = options_.url + (options_.url.find('?') == std::string::npos ? "?" : "&") +
                          "node=" + UrlEncode(node_);
  request.url = *http::HttpUrl::Parse(url, nullptr);
  request.method = "POST";
  request.headers = {{"Authorization", "Bearer " + token_},
                     {"Content-Type", "text/plain; version=0.0.4; charset=utf-8"},
                     {"Content-Encoding", "gzip"},
                     {"X-Meshflow-Push-Interval-Seconds",
                      std::to_string(std::chrono::duration<double>(options_.interval).count())}};
  // Pushes cross home uplinks and metered links; text exposition shrinks about tenfold.
  // Level 6, not the scrape path's 1: a push crosses the WAN link every interval.
  request.body = GzipCompress(scrape_(), 6);
  // A push may take at most one interval, so pushes never pile up behind a slow link.
  const auto timeout =
      std::min<std::chrono::milliseconds>(options_.interval, std::chrono::seconds(30));
  const http::FetchResult result =
      http::Fetch(request, std::chrono::steady_clock::now() + timeout, 64 << 10, tls_.get());
  const bool ok = result.ok() && result.response.status / 100 == 2;
  if (ok) {
    ++succeeded_;
    last_success_ =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    if (last_failed_) spdlog::info("push to {} works again", options_.url);
    last_failed_ = false;
    return true;
  }
  ++failed_;
  if (!last_failed_) {
    if (!result.ok())
      spdlog::warn("push to {} failed ({}): {}", options_.url, http::FetchErrorName(result.error),
                   result.message);
    else
      spdlog::warn("push to {} refused with HTTP {}: {}", options_.url, result.response.status,
                   result.response.body);
  }
  last_failed_ = true;
  return false;
}

std::unique_ptr<Collector> Pusher::MakeCollector() {
  return std::make_unique<PushCollector>(succeeded_, failed_, last_success_);
}

}  // namespace meshflow
