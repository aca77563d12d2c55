#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct mg_context;
struct mg_connection;

namespace meshflow {

// A request as plain data, so handlers are tested without a socket.
struct HttpRequest {
  std::string method;
  std::string path;
  std::string query;  // raw, without '?'
  std::string remote_address;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // First header with this name (case-insensitive), or "".
  std::string Header(std::string_view name) const;
  // Every value of a query parameter, URL-decoded (match[]=a&match[]=b).
  std::vector<std::string> QueryValues(std::string_view name) const;
  std::optional<std::string> QueryValue(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When set, receives the body once it has been sent, so a route that answers large bodies
  // often can write the next one into the same memory: on the virtual machines this runs on, a
  // fresh megabyte costs more in page faults than writing it.
  std::function<void(std::string&&)> recycle_body;

  static HttpResponse Text(int status, std::string body);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  // Exporter-toolkit style: ":9474", "127.0.0.1:9474", "0" picks a free port.
  std::vector<std::string> listen_addresses{":9474"};
  // Worker threads: the number of connections served at once (the HTTP library gives each open
  // connection a thread, idle keep-alive ones included).
  int threads = 32;
  // Connections one client address may hold open at once; past it a new connection is closed
  // as soon as it is taken, so one address cannot hold every worker. 0: threads / 2, at least 2.
  int max_connections_per_source = 0;
  // How long a request's headers (and then its body) may take to arrive: fits a 5 s scrape.
  std::chrono::milliseconds request_timeout{5'000};
  // How long an idle keep-alive connection keeps its worker.
  std::chrono::milliseconds keep_alive_timeout{5'000};
  // Largest body a POST or PUT route reads unless its RouteOptions say otherwise.
  size_t max_body_bytes = 4 << 20;
  // Bodies being read by all requests together; a request that would go past it gets 503.
  size_t max_body_bytes_in_flight = 32 << 20;
  // Serve TLS on every listen address; the certificate comes with civetweb_options.
  bool tls = false;
  // Extra civetweb options (TLS settings from the web config).
  std::vector<std::pair<std::string, std::string>> civetweb_options;
};

// The HTTP library keeps at most 64 headers and drops the rest without a word, so a request
// with 64 or more is refused (431): no header can go unseen.
inline constexpr int kMaxRequestHeaders = 63;

// What the server refused before any handler ran, for the daemons' self metrics.
struct HttpServerStats {
  uint64_t connections_over_source_limit = 0;  // closed: the address held too many
  uint64_t too_many_headers = 0;               // 431
  uint64_t bad_path = 0;                       // 400: a NUL or an undecodable path
  uint64_t body_too_large = 0;                 // 413 before reading
  uint64_t body_budget_exhausted = 0;          // 503: bodies in flight at the global budget
  uint64_t incomplete_body = 0;                // 400: the body stopped before its length
};

// Runs before every handler; returning a response (401, 403) answers the request instead.
using HttpGuard = std::function<std::optional<HttpResponse>(const HttpRequest&)>;

// Per-route settings; the defaults suit a route without a request body.
struct RouteOptions {
  // Largest body the route reads, refused with 413 before reading. Unset: the server's
  // max_body_bytes when the route takes POST or PUT, else 0.
  std::optional<size_t> max_body_bytes;
  // Runs after the guard, before the body is read (a bearer-token check): a response refuses.
  HttpGuard before_body;
};

// An HTTP server on civetweb serving exact paths with plain-data handlers. A request is routed
// and authenticated from its headers first; only then is its body read, within the route's limit
// and the server-wide budget for bodies in flight.
class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Register before Start(). An unknown path is a 404, a known one with a wrong method a 405.
  void Route(std::string path, std::vector<std::string> methods, HttpHandler handler,
             RouteOptions route_options = {});
  // Serves every path under `prefix` (which ends in '/') that has no exact route; the handler
  // reads the rest of the path from request.path (the Pushgateway's /metrics/job/<job>/...).
  void RoutePrefix(std::string prefix, std::vector<std::string> methods, HttpHandler handler,
                   RouteOptions route_options = {});
  void SetGuard(HttpGuard guard) { guard_ = std::move(guard); }
  // Serves TLS (or plain HTTP) from the next Start(). `init_ssl` configures civetweb's SSL_CTX
  // (passed as void*): it returns 1 when it set the context up, -1 to refuse to start.
  void SetTls(bool tls, std::function<int(void* ssl_ctx)> init_ssl);
  // Stops and starts again, e.g. for a new certificate: civetweb reads TLS settings only when a
  // context starts. Requests in flight finish first.
  void Restart();

  // Binds and starts serving; throws std::runtime_error saying which address failed and why.
  void Start();
  // Stops accepting and waits for the requests in flight.
  void Stop();
  // "host:port" of every listening socket, with the real port when 0 was asked for.
  std::vector<std::string> BoundAddresses() const;
  std::vector<int> BoundPorts() const;
  HttpServerStats Stats() const;

  // Translates exporter-toolkit listen addresses to civetweb's listening_ports syntax.
  // Throws std::invalid_argument for addresses civetweb cannot serve.
  static std::string ToCivetwebPorts(const std::vector<std::string>& listen_addresses,
                                     bool tls = false);

 private:
  struct Route_ {
    std::vector<std::string> methods;
    HttpHandler handler;
    size_t max_body_bytes = 0;
    HttpGuard before_body;
  };
  Route_ MakeRoute(std::vector<std::string> methods, HttpHandler handler,
                   RouteOptions& route_options) const;
  const Route_* FindRoute(const std::string& path) const;
  struct Counters {
    std::atomic<uint64_t> connections_over_source_limit{0};
    std::atomic<uint64_t> too_many_headers{0};
    std::atomic<uint64_t> bad_path{0};
    std::atomic<uint64_t> body_too_large{0};
    std::atomic<uint64_t> body_budget_exhausted{0};
    std::atomic<uint64_t> incomplete_body{0};
  };
  static int OnRequest(mg_connection* conn);
  static int OnInitSsl(void* ssl_ctx, void* user_data);
  static int OnInitConnection(const mg_connection* conn, void** conn_data);
  static void OnConnectionClose(const mg_connection* conn);
  int Serve(mg_connection* conn);
  // Reads the body into request.body; a response when it cannot (413, 400).
  std::optional<HttpResponse> ReadBody(mg_connection* conn, HttpRequest& request, size_t limit,
                                       bool chunked, long long content_length);
  int SourceLimit() const;

  Counters counters_;
  std::mutex sources_mutex_;
  std::map<std::string, int, std::less<>> connections_by_source_;
  std::atomic<size_t> body_bytes_in_flight_{0};

  HttpServerOptions options_;
  std::map<std::string, Route_, std::less<>> routes_;
  std::vector<std::pair<std::string, Route_>> prefix_routes_;
  HttpGuard guard_;
  std::function<int(void*)> init_ssl_;
  mg_context* context_ = nullptr;
};

// Compresses with gzip framing (for Content-Encoding: gzip).
std::string GzipCompress(std::string_view data, int level = 1);
// True when an Accept-Encoding header value allows gzip (and does not give it q=0).
bool AcceptsGzip(std::string_view accept_encoding);

}  // namespace meshflow
