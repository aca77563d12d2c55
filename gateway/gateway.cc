#include "gateway/gateway.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "common/core/config_reader.h"
#include "common/core/metric_builder.h"
#include "common/daemon/lifecycle.h"
#include "common/daemon/process_metrics.h"
#include "common/daemon/version.h"
#include "common/http/gzip.h"
#include "common/mesh/mesh_api.h"
#include "common/text_format/writer.h"
#include "gateway/federate.h"

namespace meshflow::gateway {

void SetMallocPolicy() {
#ifdef __GLIBC__
  // Scrape bodies are allocated on the scraper's worker threads (up to scrape.concurrency) and
  // freed on the scrape loop's; glibc gives each thread an arena of its own, whose free memory
  // only that arena reuses, so the resident size grew with the thread count. Two arenas bound it.
  mallopt(M_ARENA_MAX, 2);
  // Each scrape round builds a few buffers of megabytes (the round's samples, each shard's
  // requests) and frees them. glibc raises its mmap threshold to the largest such buffer freed,
  // after which they come from the heap and its high-water mark stays resident. A fixed
  // threshold keeps them mmapped, returned to the system when freed.
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
#endif
}
namespace {

using prometheus::MetricType;
using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kTextContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds";
constexpr std::string_view kPushIntervalHeader = "X-Meshflow-Push-Interval-Seconds";
constexpr auto kMinScrapeTimeout = std::chrono::milliseconds(100);

double WallSeconds(const Clock& clock) {
  return std::chrono::duration<double>(clock.Wall().time_since_epoch()).count();
}

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// Resident set size now, from /proc/self/statm; 0 when it cannot be read.
size_t ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0;
  unsigned long resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<size_t>(resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

std::optional<double> ParseSeconds(std::string_view text) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v) || v <= 0)
    return std::nullopt;
  return v;
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Where the Pushgateway takes pushes: /metrics/job/<job>/instance/<instance>.
constexpr std::string_view kPushgatewayPrefix = "/metrics/job/";

// The node of a Pushgateway push path, /metrics/job/<job>/instance/<node> (already URL-decoded);
// nullopt for the Pushgateway's other forms (more labels, job@base64), which are refused rather
// than guessed at.
std::optional<std::string> PushgatewayNode(std::string_view path) {
  if (!path.starts_with(kPushgatewayPrefix)) return std::nullopt;
  path.remove_prefix(kPushgatewayPrefix.size());
  std::vector<std::string_view> parts;
  for (size_t slash; (slash = path.find('/')) != std::string_view::npos;) {
    parts.push_back(path.substr(0, slash));
    path.remove_prefix(slash + 1);
  }
  parts.push_back(path);
  if (parts.size() != 3 || parts[0].empty() || parts[1] != "instance" || parts[2].empty())
    return std::nullopt;
  return std::string(parts[2]);
}
constexpr std::string_view kPushgatewayPathError =
    "expected /metrics/job/<job>/instance/<node>, where <node> is a push node of the gateway "
    "config";

// curl --data-binary sends `Content-Type: application/x-www-form-urlencoded` unless told
// otherwise, and the Pushgateway reads such a body as text format, as it does one without a
// type; so does the gateway. Returns the request to hand on: a copy without the type when the
// type is curl's default, else nullopt (use the request as it is).
std::optional<HttpRequest> WithCurlDefaultTypeAsText(const HttpRequest& request) {
  std::string type = request.Header("Content-Type");
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!type.starts_with("application/x-www-form-urlencoded")) return std::nullopt;
  HttpRequest copy = request;
  std::erase_if(copy.headers, [](const auto& h) {
    return h.first.size() == 12 &&
           std::equal(h.first.begin(), h.first.end(), "content-type",
                      [](unsigned char a, unsigned char b) { return std::tolower(a) == b; });
  });
  return copy;
}

// Percent-encodes everything but RFC 3986's unreserved characters, for a query value.
std::string QueryEscape(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

HttpResponse Text(int status, std::string body) {
  return HttpResponse::Text(status, std::move(body) + "\n");
}

// Compresses for clients that ask, as the exporter does.
void MaybeGzip(const HttpRequest& request, HttpResponse& response) {
  if (AcceptsGzip(request.Header("Accept-Encoding"))) {
    response.body = GzipCompress(response.body);
    response.headers.emplace_back("Content-Encoding", "gzip");
  }
  response.headers.emplace_back("Vary", "Accept-Encoding");
}

}  // namespace

Gateway::Gateway(GatewayOptions options, const Clock& clock, std::unique_ptr<Resolver> resolver)
    : options_(std::move(options)),
      clock_(clock),
      resolver_(resolver ? std::move(resolver) : std::make_unique<SystemResolver>()),
      registry_(*resolver_, clock_),
      push_store_(clock_, &memory_budget_),
      push_reject_log_(clock_) {
  options_.http.listen_addresses = options_.listen_addresses;
}

Gateway::~Gateway() { Stop(); }

void Gateway::Apply(const GatewayConfig& config) {
  registry_.Configure(config);
  PushStore::Settings settings;
  for (const auto& p : config.push_nodes) settings.tokens[p.node] = p.token;
  settings.ttl = config.push.ttl;
  settings.default_interval = config.push.default_interval;
  settings.max_body_bytes = static_cast<size_t>(config.push.max_body_bytes);
  settings.max_series_per_push = static_cast<size_t>(config.memory.max_series_per_push);
  memory_budget_.SetBudget(static_cast<size_t>(config.memory.budget_bytes));
  push_store_.Configure(std::move(settings));
  std::lock_guard lock(config_mutex_);
  config_ = config;
}

void Gateway::Start() {
  const GatewayConfig config = LoadGatewayConfigFile(options_.config_file);
  Apply(config);
  reload_status_.Succeeded(WallSeconds(clock_));
  spdlog::info("gateway config loaded from {}: static={} dns={} push={}", config.source,
               config.static_targets.size(), config.dns_targets.size(), config.push_nodes.size());
  Scraper::Settings s;
  s.workers = static_cast<size_t>(config.scrape.concurrency);
  s.max_queue = static_cast<size_t>(config.scrape.max_queue);
  s.max_inflight_per_node = static_cast<int>(config.scrape.max_inflight_per_node);
  s.max_body_bytes = static_cast<size_t>(config.scrape.max_body_bytes);
  scraper_ = std::make_unique<Scraper>(s);
  mesh_ = std::make_unique<mesh::MeshHistory>(config.mesh);
  registry_.Refresh();
  // The budget covers the whole process: what it holds before the first push and what the HTTP
  // server may hold in bodies being read are reserved first, the rest is for what nodes send.
  {
    const size_t held = ResidentBytes() + options_.http.max_body_bytes_in_flight;
    if (!memory_budget_.Reserve("process", held))
      spdlog::warn(
          "memory.budget_bytes ({}) is below what the gateway holds without any push "
          "({}): every push will be refused",
          memory_budget_.budget(), held);
    // The mesh view's history stops growing at mesh.max_bytes: its bound is taken whole, up
    // front, so pushes can never crowd it out nor it the pushes.
    if (!memory_budget_.Reserve("mesh_history", config.mesh.max_bytes))
      spdlog::warn(
          "memory.budget_bytes ({}) has no room for mesh.max_bytes ({}) beside the process: "
          "lower mesh.max_bytes or raise the budget",
          memory_budget_.budget(), config.mesh.max_bytes);
  }
  remote_writer_ = std::make_unique<remote_write::RemoteWriter>();
  scrape_loop_ =
      std::make_unique<ScrapeLoop>(registry_, push_store_, *scraper_, *remote_writer_, clock_);
  ApplyRemoteWrite(config);

  // Pushes a little over the limit reach the handler and are counted as too_large; far bigger
  // ones are refused by the server before their body is read.
  options_.http.max_body_bytes = static_cast<size_t>(config.push.max_body_bytes) * 2;
  // As in the exporter: a broken web config stops the start rather than serving unprotected.
  server_ = std::make_unique<SecuredServer>(options_.http, options_.web_config_file);
  // Pushes carry their node's bearer token, checked by the push store.
  server_->ExemptFromBasicAuth("/push");
  server_->Route(options_.telemetry_path, {"GET", "HEAD"},
                 [this](const HttpRequest& r) { return HandleMetrics(r); });
  server_->Route("/targets", {"GET"}, [this](const HttpRequest& r) { return HandleTargets(r); });
  server_->Route("/proxy", {"GET"}, [this](const HttpRequest& r) { return HandleProxy(r); });
  // Tokens are checked from the headers, before a body is read: /push?node=NODE, and the
  // Pushgateway's /metrics/job/<job>/instance/<node> (exempt from basic auth like /push).
  auto authorize_push = [this](const HttpRequest& r,
                               const std::string& node) -> std::optional<HttpResponse> {
    const auto refused = push_store_.Authorize(node, r.Header("Authorization"));
    if (!refused) return std::nullopt;
    LogPushRejection(r, node, *refused);
    return Text(refused->http_status, refused->message);
  };
  RouteOptions push_route;
  push_route.max_body_bytes = options_.http.max_body_bytes;
  push_route.before_body = [authorize_push](const HttpRequest& r) -> std::optional<HttpResponse> {
    const std::string node = r.QueryValue("node").value_or("");
    if (node.empty()) return Text(400, "missing ?node=<node>");
    return authorize_push(r, node);
  };
  server_->Route(
      "/push", {"POST", "PUT"},
      [this](const HttpRequest& r) {
        if (auto as_text = WithCurlDefaultTypeAsText(r)) return HandlePush(*as_text);
        return HandlePush(r);
      },
      std::move(push_route));
  RouteOptions pushgateway_route;
  pushgateway_route.max_body_bytes = options_.http.max_body_bytes;
  pushgateway_route.before_body =
      [authorize_push](const HttpRequest& r) -> std::optional<HttpResponse> {
    const auto node = PushgatewayNode(r.path);
    if (!node) return Text(400, std::string(kPushgatewayPathError));
    return authorize_push(r, *node);
  };
  server_->ExemptPrefixFromBasicAuth(std::string(kPushgatewayPrefix));
  server_->RoutePrefix(
      std::string(kPushgatewayPrefix), {"POST", "PUT"},
      [this](const HttpRequest& r) { return HandlePushgatewayPush(r); },
      std::move(pushgateway_route));
  server_->Route("/federate", {"GET"}, [this](const HttpRequest& r) { return HandleFederate(r); });
  for (auto& [path, handler] : mesh::MeshRoutes(*mesh_, clock_))
    server_->Route(path, {"GET", "HEAD"}, std::move(handler));
  server_->Route("/-/healthy", {"GET", "HEAD"},
                 [](const HttpRequest&) { return HttpResponse::Text(200, "OK\n"); });
  server_->Route("/-/ready", {"GET", "HEAD"},
                 [](const HttpRequest&) { return HttpResponse::Text(200, "OK\n"); });
  RouteLifecycle(*server_, options_.request_reload);
  server_->Route("/", {"GET", "HEAD"}, [this](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body =
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>meshflow gateway</title>"
        "</head>\n<body>\n<h1>meshflow gateway</h1>\n<p>Version " +
        std::string(kVersion) +
        "</p>\n<ul>\n<li><a href=\"/mesh\">Mesh: RTT, loss and role traffic</a></li>\n"
        "<li><a href=\"/targets\">Targets (http_sd)</a></li>\n<li><a href=\"" +
        options_.telemetry_path + "\">Gateway metrics</a></li>\n</ul>\n</body></html>\n";
    return r;
  });
  server_->Start();
  started_ = true;
  {
    std::lock_guard lock(refresh_mutex_);
    stopping_ = false;
  }
  refresh_thread_ = std::thread([this] { RefreshLoop(); });
  for (const auto& a : server_->BoundAddresses()) spdlog::info("gateway listening on {}", a);
}

void Gateway::Stop() {
  {
    std::lock_guard lock(refresh_mutex_);
    stopping_ = true;
  }
  refresh_cv_.notify_all();
  if (refresh_thread_.joinable()) refresh_thread_.join();
  if (server_) server_->Stop();
  std::lock_guard lock(remote_write_mutex_);
  if (scrape_loop_) scrape_loop_->Stop();
  scrape_loop_running_ = false;
  if (remote_writer_) remote_writer_->Stop();
  scrape_loop_.reset();
  remote_writer_.reset();
  scraper_.reset();
  started_ = false;
}

void Gateway::RefreshLoop() {
  std::unique_lock lock(refresh_mutex_);
  while (!stopping_) {
    refresh_cv_.wait_for(lock, std::chrono::seconds(1));
    if (stopping_) break;
    lock.unlock();
    registry_.Refresh();
    lock.lock();
  }
}

void Gateway::ApplyRemoteWrite(const GatewayConfig& config) {
  std::lock_guard lock(remote_write_mutex_);
  if (!scrape_loop_) return;
  remote_writer_->Configure(config.remote_write);
  ScrapeLoop::Settings s;
  s.interval = config.scrape_interval;
  s.timeout = config.scrape.default_timeout;
  s.max_body_bytes = static_cast<size_t>(config.scrape.max_body_bytes);
  s.tls = config.scrape.tls;
  s.authorization = config.scrape.authorization;
  s.observe = [this](const std::string& node, const text_format::Exposition& exposition) {
    ObserveMesh(node, exposition);
  };
  // Always running: its scrapes feed the mesh view's history even when no Prometheus scrapes
  // through /proxy. It writes samples only with remote_write endpoints.
  s.write = !config.remote_write.empty();
  scrape_loop_->Configure(std::move(s));
  if (!scrape_loop_running_) scrape_loop_->Start();
  scrape_loop_running_ = true;
}

ReloadOutcome Gateway::Reload() {
  return reload_status_.Reload("gateway config", clock_, [this] {
    const GatewayConfig config = LoadGatewayConfigFile(options_.config_file);
    Apply(config);
    registry_.Refresh();
    ApplyRemoteWrite(config);
    return config.source;
  });
}

HttpResponse Gateway::HandleTargets(const HttpRequest& request) const {
  std::string address;
  {
    std::lock_guard lock(config_mutex_);
    address = config_.advertise_address;
  }
  if (address.empty()) address = request.Header("Host");
  if (address.empty()) return Text(400, "no Host header and no advertise_address configured");
  std::string body = "[";
  bool first = true;
  for (const auto& t : registry_.Snapshot()) {
    if (!first) body += ",";
    first = false;
    body += "{\"targets\":[" + JsonString(address) +
            "],\"labels\":{\"node\":" + JsonString(t.node) +
            ",\"__metrics_path__\":\"/proxy\",\"__param_target\":" + JsonString(t.node) + "}}";
  }
  body += "]\n";
  HttpResponse r;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

std::chrono::nanoseconds Gateway::ScrapeTimeout(const HttpRequest& request) const {
  GatewayConfig::Scrape c;
  {
    std::lock_guard lock(config_mutex_);
    c = config_.scrape;
  }
  std::chrono::nanoseconds timeout = c.default_timeout;
  if (auto s = ParseSeconds(request.Header(kTimeoutHeader))) {
    timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::duration<double>(std::min(*s, Seconds(c.max_timeout)))) -
              c.timeout_offset;
  }
  return std::max<std::chrono::nanoseconds>(timeout, kMinScrapeTimeout);
}

void Gateway::Record(const std::string& node, bool up, std::chrono::nanoseconds duration) {
  std::lock_guard lock(state_mutex_);
  auto& s = node_state_[node];
  s.has_result = true;
  s.up = up;
  s.duration_seconds = Seconds(duration);
}

HttpResponse Gateway::HandleProxy(const HttpRequest& request) {
  const auto node = request.QueryValue("target");
  if (!node || node->empty()) return Text(400, "missing ?target=<node>");
  const auto target = registry_.Find(*node);
  if (!target) return Text(404, "unknown node \"" + *node + "\"");

  if (target->source == TargetSource::kPush) {
    const auto lookup = push_store_.Get(*node);
    if (lookup.state == PushStore::State::kNever)
      return Text(503, "node " + *node + " has not pushed since the gateway started");
    if (lookup.state != PushStore::State::kFresh) {
      return Text(503, "last push of node " + *node + " was " +
                           std::to_string(static_cast<int64_t>(Seconds(lookup.age))) +
                           "s ago, older than its TTL of " +
                           std::to_string(static_cast<int64_t>(Seconds(lookup.body->ttl))) + "s");
    }
    HttpResponse r;
    r.content_type = std::string(kTextContentType);
    r.body = lookup.body->body;
    MaybeGzip(request, r);
    return r;
  }

  const auto timeout = ScrapeTimeout(request);
  ScrapeJob job;
  job.node = *node;
  job.url = target->url;
  job.deadline = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(timeout);
  if (auto accept = request.Header("Accept"); !accept.empty())
    job.headers.emplace_back("Accept", accept);
  if (auto enc = request.Header("Accept-Encoding"); !enc.empty())
    job.headers.emplace_back("Accept-Encoding", enc);
  job.headers.emplace_back(std::string(kTimeoutHeader), std::to_string(Seconds(timeout)));
  job.headers.emplace_back("User-Agent", std::string("meshflow-gateway/") + std::string(kVersion));
  // The exporter answers every Accept the same way, so requests differ upstream only by gzip.
  job.share_key = *node + (AcceptsGzip(request.Header("Accept-Encoding")) ? "|gzip" : "|identity");
  {
    std::lock_guard lock(config_mutex_);
    job.tls = config_.scrape.tls;
    if (!config_.scrape.authorization.empty())
      job.headers.emplace_back("Authorization", config_.scrape.authorization);
  }
  const ScrapeOutcome outcome = scraper_->Scrape(std::move(job));

  if (!outcome.refused.empty()) {
    Record(*node, false, outcome.duration);
    return Text(503, "scrape of node " + *node + " not started: " + outcome.refused);
  }
  const http::FetchResult& fetch = outcome.fetch;
  // The upstream URL and error text describe the inside of the overlay: only a client that gave
  // credentials sees them (with basic auth configured, every request that gets here has).
  const bool details = server_ && server_->RequiresAuth();
  if (!fetch.ok()) {
    Record(*node, false, outcome.duration);
    const int status = fetch.error == http::FetchError::kTimeout ? 504 : 502;
    if (!details) {
      spdlog::debug("scraping node {} at {} failed: {}", *node, target->url, fetch.message);
      return Text(status, "scraping node " + *node + " failed (" +
                              std::string(http::FetchErrorName(fetch.error)) + ")");
    }
    return Text(status, "scraping node " + *node + " at " + target->url + " failed (" +
                            std::string(http::FetchErrorName(fetch.error)) + "): " + fetch.message);
  }
  if (fetch.response.status != 200) {
    Record(*node, false, outcome.duration);
    if (!details)
      return Text(502, "node " + *node + " exporter answered HTTP " +
                           std::to_string(fetch.response.status));
    return Text(502, "node " + *node + " exporter at " + target->url + " answered HTTP " +
                         std::to_string(fetch.response.status));
  }
  Record(*node, true, outcome.duration);
  {
    // The mesh view learns from every scrape that passes through; a body it cannot read is
    // still returned unchanged.
    const auto enc = fetch.response.Header("content-encoding");
    bool too_large = false;
    std::string why;
    const auto plain = enc == "gzip"
                           ? http::GunzipBounded(fetch.response.body, 64 << 20, &too_large, &why)
                           : std::optional<std::string>(fetch.response.body);
    text_format::Exposition exposition;
    if (plain && (enc.empty() || enc == "gzip") &&
        !text_format::ParseTextFormat(*plain, {}, &exposition))
      ObserveMesh(*node, exposition);
  }
  HttpResponse r;
  const auto content_type = fetch.response.Header("content-type");
  r.content_type = content_type.empty() ? std::string(kTextContentType) : std::string(content_type);
  r.body = fetch.response.body;
  if (auto enc = fetch.response.Header("content-encoding"); !enc.empty())
    r.headers.emplace_back("Content-Encoding", std::string(enc));
  r.headers.emplace_back("Vary", "Accept-Encoding");
  return r;
}

HttpResponse Gateway::HandlePush(const HttpRequest& request) {
  PushRequest push;
  push.node = request.QueryValue("node").value_or("");
  if (push.node.empty()) return Text(400, "missing ?node=<node>");
  push.authorization = request.Header("Authorization");
  push.content_type = request.Header("Content-Type");
  push.content_encoding = request.Header("Content-Encoding");
  if (auto s = ParseSeconds(request.Header(kPushIntervalHeader)))
    push.announced_interval =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(*s));
  push.length_known =
      !request.Header("Content-Length").empty() || !request.Header("Transfer-Encoding").empty();
  push.body = request.body;
  const PushOutcome outcome = push_store_.Push(push);
  if (outcome.accepted() && scrape_loop_running_) scrape_loop_->TakePush(push.node);
  if (outcome.accepted()) {
    if (const auto lookup = push_store_.Get(push.node); lookup.body && lookup.body->exposition)
      ObserveMesh(push.node, *lookup.body->exposition);
  }
  if (!outcome.accepted()) LogPushRejection(request, push.node, outcome);
  HttpResponse r = Text(outcome.http_status, outcome.message);
  if (outcome.http_status == 429) r.headers.emplace_back("Retry-After", "5");
  return r;
}

void Gateway::LogPushRejection(const HttpRequest& request, const std::string& node,
                               const PushOutcome& outcome) {
  // Counted always (meshflow_gateway_push_rejected_total); logged once a minute per address.
  uint64_t suppressed = 0;
  if (push_reject_log_.Allow(request.remote_address, &suppressed)) {
    spdlog::warn(
        "push rejected node={} remote={} reason={}: {} ({} more rejections from this "
        "address in the last minute not logged)",
        node, request.remote_address, outcome.reason, outcome.message, suppressed);
  }
}

HttpResponse Gateway::HandlePushgatewayPush(const HttpRequest& request) {
  const auto node = PushgatewayNode(request.path);
  if (!node) return Text(400, std::string(kPushgatewayPathError));
  HttpRequest push = WithCurlDefaultTypeAsText(request).value_or(request);
  push.query = "node=" + QueryEscape(*node);
  return HandlePush(push);
}

HttpResponse Gateway::HandleFederate(const HttpRequest& request) {
  GatewayConfig::Federate limits_config;
  {
    std::lock_guard lock(config_mutex_);
    limits_config = config_.federate;
  }
  auto refuse = [&](int status, std::string why) {
    std::lock_guard lock(state_mutex_);
    ++federate_refused_;
    return Text(status, std::move(why));
  };
  if (request.query.size() > static_cast<size_t>(limits_config.max_query_bytes))
    return refuse(414, "query of " + std::to_string(request.query.size()) +
                           " bytes exceeds federate.max_query_bytes (" +
                           std::to_string(limits_config.max_query_bytes) + ")");
  const auto selector_texts = request.QueryValues("match[]");
  if (selector_texts.size() > static_cast<size_t>(limits_config.max_selectors))
    return refuse(400, std::to_string(selector_texts.size()) +
                           " match[] selectors exceed federate.max_selectors (" +
                           std::to_string(limits_config.max_selectors) + ")");
  std::vector<Selector> selectors;
  for (const auto& text : selector_texts) {
    std::string why;
    auto selector = ParseSelector(text, &why);
    if (!selector) return Text(400, "bad match[] \"" + text + "\": " + why);
    selectors.push_back(std::move(*selector));
  }
  if (selectors.empty()) return Text(400, "at least one match[] selector is required");

  std::chrono::nanoseconds timeout;
  size_t max_body = 0;
  std::shared_ptr<const http::TlsClient> tls;
  std::string authorization;
  {
    std::lock_guard lock(config_mutex_);
    timeout = config_.federate.timeout;
    max_body = static_cast<size_t>(config_.scrape.max_body_bytes);
    tls = config_.scrape.tls;
    authorization = config_.scrape.authorization;
  }
  if (!request.Header(kTimeoutHeader).empty()) timeout = std::min(timeout, ScrapeTimeout(request));
  const auto deadline =
      SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(timeout);

  const auto targets = registry_.Snapshot();
  std::vector<NodeExposition> nodes(targets.size());
  std::vector<ScrapeJob> jobs;
  std::vector<size_t> job_index;
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto& t = targets[i];
    nodes[i].node = t.node;
    if (t.source == TargetSource::kPush) {
      const auto lookup = push_store_.Get(t.node);
      if (lookup.state == PushStore::State::kFresh) nodes[i].exposition = lookup.body->exposition;
      continue;
    }
    ScrapeJob job;
    job.node = t.node;
    job.url = t.url;
    job.deadline = deadline;
    job.headers = {{"Accept", "text/plain;version=0.0.4"},
                   {"Accept-Encoding", "identity"},
                   {std::string(kTimeoutHeader), std::to_string(Seconds(timeout))}};
    if (!authorization.empty()) job.headers.emplace_back("Authorization", authorization);
    job.tls = tls;
    job.share_key = t.node + "|identity";
    jobs.push_back(std::move(job));
    job_index.push_back(i);
  }
  const auto outcomes = scraper_->ScrapeAll(std::move(jobs));
  text_format::TextFormatLimits limits;
  limits.max_body_bytes = max_body;
  for (size_t k = 0; k < outcomes.size(); ++k) {
    const auto& o = outcomes[k];
    const std::string& node = nodes[job_index[k]].node;
    const bool ok = o.refused.empty() && o.fetch.ok() && o.fetch.response.status == 200;
    if (!ok) {
      if (o.refused.empty()) Record(node, false, o.duration);
      continue;
    }
    auto exposition = std::make_shared<text_format::Exposition>();
    if (auto error =
            text_format::ParseTextFormat(o.fetch.response.body, limits, exposition.get())) {
      spdlog::debug("federate: node {} exposition not valid: {}", node, error->ToString());
      Record(node, false, o.duration);
      continue;
    }
    Record(node, true, o.duration);
    ObserveMesh(node, *exposition);
    nodes[job_index[k]].exposition = std::move(exposition);
  }
  FederateStats stats;
  HttpResponse r;
  r.content_type = std::string(kTextContentType);
  // Upstream waits are bounded by the timeout; selecting and writing by the time budget.
  const auto budget_end = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                                   limits_config.time_budget);
  r.body = Federate(nodes, selectors, &stats, budget_end);
  if (stats.type_conflicts > 0) {
    std::lock_guard lock(state_mutex_);
    type_conflicts_ += stats.type_conflicts;
  }
  if (stats.out_of_time)
    return refuse(503,
                  "federation took longer than federate.time_budget; ask with narrower "
                  "match[] selectors");
  MaybeGzip(request, r);
  return r;
}

void Gateway::ObserveMesh(const std::string& node, const text_format::Exposition& exposition) {
  mesh_->Observe(node, exposition, WallSeconds(clock_));
}

void Gateway::CollectSelf(std::vector<prometheus::MetricFamily>& out) {
  const auto targets = registry_.Snapshot();
  FamilyBuilder up("meshflow_gateway_target_up",
                   "Whether the node's last scrape through the gateway succeeded, or for a "
                   "pushing node whether its last push is younger than its TTL.",
                   MetricType::Gauge);
  FamilyBuilder last_push("meshflow_gateway_last_push_timestamp_seconds",
                          "When the node's last accepted push arrived.", MetricType::Gauge);
  FamilyBuilder duration("meshflow_gateway_scrape_duration_seconds",
                         "Duration of the node's last scrape through the gateway.",
                         MetricType::Gauge);
  std::map<std::string, double> per_source{{"static", 0}, {"dns", 0}, {"push", 0}};
  {
    std::lock_guard lock(state_mutex_);
    for (const auto& t : targets) {
      const std::string source(TargetSourceName(t.source));
      per_source[source] += 1;
      if (t.source == TargetSource::kPush) {
        const auto lookup = push_store_.Get(t.node);
        up.Gauge({{"node", t.node}, {"source", source}},
                 lookup.state == PushStore::State::kFresh ? 1 : 0);
        if (lookup.body) last_push.Gauge({{"node", t.node}}, lookup.body->received_wall_seconds);
        continue;
      }
      auto it = node_state_.find(t.node);
      if (it == node_state_.end() || !it->second.has_result) continue;
      up.Gauge({{"node", t.node}, {"source", source}}, it->second.up ? 1 : 0);
      duration.Gauge({{"node", t.node}}, it->second.duration_seconds);
    }
  }
  up.AppendTo(out);
  last_push.AppendTo(out);
  duration.AppendTo(out);

  FamilyBuilder rejected("meshflow_gateway_push_rejected_total",
                         "Pushes refused, by reason; a refused push changes nothing.",
                         MetricType::Counter);
  for (const auto& [reason, n] : push_store_.RejectedByReason())
    rejected.Counter({{"reason", reason}}, static_cast<double>(n));
  rejected.AppendTo(out);

  FamilyBuilder count("meshflow_gateway_targets",
                      "Nodes the gateway knows, by where they came from.", MetricType::Gauge);
  for (const auto& [source, n] : per_source) count.Gauge({{"source", source}}, n);
  count.AppendTo(out);

  FamilyBuilder("meshflow_gateway_scrapes_refused_total",
                "Upstream scrapes not started: too many in flight for the node, a full queue, "
                "or a deadline passed while queued.",
                MetricType::Counter)
      .Counter({}, scraper_ ? static_cast<double>(scraper_->refused_total()) : 0)
      .AppendTo(out);
  FamilyBuilder("meshflow_gateway_dns_lookup_failures_total",
                "DNS discovery lookups that failed or found no address; the previous answer is "
                "kept.",
                MetricType::Counter)
      .Counter({}, static_cast<double>(registry_.dns_failures()))
      .AppendTo(out);
  {
    std::lock_guard lock(state_mutex_);
    FamilyBuilder("meshflow_gateway_federate_type_conflicts_total",
                  "Families left out of /federate for a node because another node gave the same "
                  "name another type.",
                  MetricType::Counter)
        .Counter({}, static_cast<double>(type_conflicts_))
        .AppendTo(out);
  }

  {
    std::lock_guard lock(state_mutex_);
    FamilyBuilder("meshflow_gateway_federate_refused_total",
                  "Federation requests refused for too many selectors, a too long query or "
                  "running past federate.time_budget.",
                  MetricType::Counter)
        .Counter({}, static_cast<double>(federate_refused_))
        .AppendTo(out);
  }
  FamilyBuilder("meshflow_gateway_scrapes_shared_total",
                "Upstream scrapes asked for while the same scrape was in flight, answered by it.",
                MetricType::Counter)
      .Counter({}, scraper_ ? static_cast<double>(scraper_->shared_total()) : 0)
      .AppendTo(out);
  FamilyBuilder("meshflow_gateway_memory_budget_bytes",
                "The memory budget for what nodes send (memory.budget_bytes).", MetricType::Gauge)
      .Gauge({}, static_cast<double>(memory_budget_.budget()))
      .AppendTo(out);
  FamilyBuilder used("meshflow_gateway_memory_used_bytes",
                     "Bytes of the memory budget held, by consumer.", MetricType::Gauge);
  FamilyBuilder over("meshflow_gateway_memory_refused_total",
                     "Reservations refused because the memory budget was used up, by consumer; "
                     "each is a 429.",
                     MetricType::Counter);
  const auto refused_by = memory_budget_.RefusedByConsumer();
  for (const std::string consumer :
       {"process", "mesh_history", "stored_pushes", "pushes_in_flight"}) {
    const auto u = memory_budget_.UsedByConsumer();
    used.Gauge({{"consumer", consumer}},
               u.count(consumer) ? static_cast<double>(u.at(consumer)) : 0);
    over.Counter({{"consumer", consumer}},
                 refused_by.count(consumer) ? static_cast<double>(refused_by.at(consumer)) : 0);
  }
  used.AppendTo(out);
  over.AppendTo(out);

  if (remote_writer_) remote_writer_->Collect(out);
  reload_status_.CollectSelf(out);
  if (server_) server_->Collect(out);
}

HttpResponse Gateway::HandleMetrics(const HttpRequest& request) {
  std::vector<prometheus::MetricFamily> families;
  CollectSelf(families);
  HttpResponse r;
  r.content_type = std::string(kTextContentType);
  r.body = SerializeExposition(families);
  MaybeGzip(request, r);
  return r;
}

}  // namespace meshflow::gateway
