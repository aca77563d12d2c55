#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
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

  static HttpResponse Text(int status, std::string body);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  // Exporter-toolkit style: ":9474", "127.0.0.1:9474", "0" picks a free port.
  std::vector<std::string> listen_addresses{":9474"};
  // Worker threads: the number of requests served at once. A slow client holds one worker at
  // most until request_timeout, so the others keep answering.
  int threads = 8;
  std::chrono::milliseconds request_timeout{10'000};
  size_t max_body_bytes = 4 << 20;
  // Serve TLS on every listen address; the certificate comes with civetweb_options.
  bool tls = false;
  // Extra civetweb options (TLS settings from the web config).
  std::vector<std::pair<std::string, std::string>> civetweb_options;
};

// Runs before every handler; returning a response (401, 403) answers the request instead.
using HttpGuard = std::function<std::optional<HttpResponse>(const HttpRequest&)>;

// An HTTP server on civetweb serving exact paths with plain-data handlers.
class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Register before Start(). An unknown path is a 404, a known one with a wrong method a 405.
  void Route(std::string path, std::vector<std::string> methods, HttpHandler handler);
  // Serves every path under `prefix` (which ends in '/') that has no exact route; the handler
  // reads the rest of the path from request.path (the Pushgateway's /metrics/job/<job>/...).
  void RoutePrefix(std::string prefix, std::vector<std::string> methods, HttpHandler handler);
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

  // Translates exporter-toolkit listen addresses to civetweb's listening_ports syntax.
  // Throws std::invalid_argument for addresses civetweb cannot serve.
  static std::string ToCivetwebPorts(const std::vector<std::string>& listen_addresses,
                                     bool tls = false);

 private:
  struct Route_ {
    std::vector<std::string> methods;
    HttpHandler handler;
  };
  static int OnRequest(mg_connection* conn);
  static int OnInitSsl(void* ssl_ctx, void* user_data);
  int Serve(mg_connection* conn);

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
