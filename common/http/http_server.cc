#include "common/http/http_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace meshflow {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Civetweb 1.15 leaks connections that arrive while mg_stop() runs: a worker that takes one from
// the accept queue after the stop flag is set returns without closing it. The client then waits
// for a TLS handshake or a response that never comes, and every listener restart could leave
// such a descriptor behind. Once mg_stop() has returned no civetweb thread is left, so any
// connected stream socket still bound to one of our listening ports is such an orphan.
int CloseOrphanedConnections(const std::vector<int>& listening_ports) {
  if (listening_ports.empty()) return 0;
  std::vector<int> orphans;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", error)) {
    int fd = -1;
    const std::string name = entry.path().filename().string();
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc()) continue;
    int type = 0;
    int listening = 0;
    socklen_t length = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0 || type != SOCK_STREAM) continue;
    length = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0 || listening != 0) {
      continue;
    }
    sockaddr_storage local{};
    socklen_t local_length = sizeof local;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length) != 0) continue;
    int port = -1;
    if (local.ss_family == AF_INET) {
      port = ntohs(reinterpret_cast<const sockaddr_in&>(local).sin_port);
    } else if (local.ss_family == AF_INET6) {
      port = ntohs(reinterpret_cast<const sockaddr_in6&>(local).sin6_port);
    }
    if (std::find(listening_ports.begin(), listening_ports.end(), port) != listening_ports.end()) {
      orphans.push_back(fd);
    }
  }
  // Closed after the walk, so that the directory being read does not change under it.
  for (const int fd : orphans) {
    shutdown(fd, SHUT_RDWR);
    close(fd);
  }
  return static_cast<int>(orphans.size());
}

// The server side of the connection from `remote_address`:`remote_port` to `server_port`, or
// -1. Civetweb gives no access to a connection's socket, so it is found among this process's
// descriptors by its addresses; done only for connections being refused, so the walk is not paid
// on the normal path. After SHUT_RDWR the worker's next read sees end of file and
// civetweb closes the connection at once, instead of waiting for headers or draining a body.
int FindConnectionFd(std::string_view remote_address, int remote_port, int server_port) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", error)) {
    int fd = -1;
    const std::string name = entry.path().filename().string();
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc()) continue;
    sockaddr_storage peer{};
    socklen_t length = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) != 0) continue;
    sockaddr_storage local{};
    socklen_t local_length = sizeof local;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length) != 0) continue;
    char text[INET6_ADDRSTRLEN] = {};
    int port = -1;
    int local_port = -1;
    if (peer.ss_family == AF_INET) {
      const auto& in = reinterpret_cast<const sockaddr_in&>(peer);
      inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
      port = ntohs(in.sin_port);
      local_port = ntohs(reinterpret_cast<const sockaddr_in&>(local).sin_port);
    } else if (peer.ss_family == AF_INET6) {
      const auto& in6 = reinterpret_cast<const sockaddr_in6&>(peer);
      inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
      port = ntohs(in6.sin6_port);
      local_port = ntohs(reinterpret_cast<const sockaddr_in6&>(local).sin6_port);
    } else {
      continue;
    }
    if (port == remote_port && local_port == server_port && remote_address == text) return fd;
  }
  return -1;
}

bool ShutdownConnection(std::string_view remote_address, int remote_port, int server_port) {
  const int fd = FindConnectionFd(remote_address, remote_port, server_port);
  if (fd < 0) return false;
  shutdown(fd, SHUT_RDWR);
  return true;
}

// Bytes of the connection's request already received and not yet read by civetweb.
size_t BytesWaiting(const mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  if (info == nullptr) return 0;
  const int fd = FindConnectionFd(info->remote_addr, info->remote_port, info->server_port);
  int waiting = 0;
  if (fd < 0 || ioctl(fd, FIONREAD, &waiting) != 0 || waiting < 0) return 0;
  return static_cast<size_t>(waiting);
}

void ShutdownConnection(const mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  if (info == nullptr) return;
  ShutdownConnection(info->remote_addr, info->remote_port, info->server_port);
}

bool IsChunked(std::string_view transfer_encoding) {
  for (size_t i = 0; i + 7 <= transfer_encoding.size(); ++i) {
    if (EqualsIgnoreCase(transfer_encoding.substr(i, 7), "chunked")) return true;
  }
  return false;
}

// Percent-decoding of a path: nullopt for a NUL or a broken escape, which could make two
// different paths look alike to different readers ("/metrics%00.txt" as "/metrics").
std::optional<std::string> DecodePath(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\0') return std::nullopt;
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    int v = 0;
    if (i + 2 >= s.size()) return std::nullopt;
    const auto [end, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (ec != std::errc() || end != s.data() + i + 3 || v == 0) return std::nullopt;
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

std::string UrlDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      const auto [end, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc() && end == s.data() + i + 3) {
        out.push_back(static_cast<char>(v));
        i += 2;
      } else {
        out.push_back('%');
      }
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Civetweb's library-wide init, before any context. OpenSSL is set up only once a server
// serves TLS: its initialisation alone makes about 3 MB of libcrypto resident, a sixth of the
// exporter's memory budget on a 1 GB node. Civetweb counts its inits and sets TLS up on the
// first that asks for it, so a plain start followed by a TLS one works.
void InitCivetweb(bool tls) {
  static std::once_flag plain;
  static std::once_flag with_tls;
  std::call_once(tls ? with_tls : plain, [tls] { mg_init_library(tls ? MG_FEATURES_TLS : 0); });
}

}  // namespace

std::string HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

std::vector<std::string> HttpRequest::QueryValues(std::string_view name) const {
  std::vector<std::string> values;
  std::string_view rest = query;
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    if (UrlDecode(pair.substr(0, eq)) != name) continue;
    values.push_back(eq == std::string_view::npos ? "" : UrlDecode(pair.substr(eq + 1)));
  }
  return values;
}

std::optional<std::string> HttpRequest::QueryValue(std::string_view name) const {
  auto values = QueryValues(name);
  if (values.empty()) return std::nullopt;
  return values.front();
}

HttpResponse HttpResponse::Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpServer::HttpServer(HttpServerOptions options) : options_(std::move(options)) {}

HttpServer::~HttpServer() { Stop(); }

HttpServer::Route_ HttpServer::MakeRoute(std::vector<std::string> methods, HttpHandler handler,
                                         RouteOptions& route_options) const {
  const bool takes_body = std::any_of(methods.begin(), methods.end(), [](const std::string& m) {
    return m == "POST" || m == "PUT";
  });
  const size_t limit =
      route_options.max_body_bytes.value_or(takes_body ? options_.max_body_bytes : 0);
  return Route_{std::move(methods), std::move(handler), limit,
                std::move(route_options.before_body)};
}

void HttpServer::Route(std::string path, std::vector<std::string> methods, HttpHandler handler,
                       RouteOptions route_options) {
  routes_[std::move(path)] = MakeRoute(std::move(methods), std::move(handler), route_options);
}

int HttpServer::SourceLimit() const {
  if (options_.max_connections_per_source > 0) return options_.max_connections_per_source;
  return std::max(2, options_.threads / 2);
}

HttpServerStats HttpServer::Stats() const {
  HttpServerStats s;
  s.connections_over_source_limit = counters_.connections_over_source_limit;
  s.too_many_headers = counters_.too_many_headers;
  s.bad_path = counters_.bad_path;
  s.body_too_large = counters_.body_too_large;
  s.body_budget_exhausted = counters_.body_budget_exhausted;
  s.incomplete_body = counters_.incomplete_body;
  return s;
}

namespace {

// Marks a connection counted against its source in connections_by_source_.
char kCountedConnection;

// Civetweb fills a connection's client address before its init_connection callback but will not
// hand it out there (mg_get_request_info answers only once the connection is typed as a
// request). Its place inside the connection is fixed by the library's build, so it is learnt
// from the first request, where mg_get_request_info does answer, and used for every connection
// after; -1 before that, -2 if two requests ever disagreed (the limit is then not enforced).
std::atomic<std::ptrdiff_t> g_request_info_offset{-1};

void LearnRequestInfoOffset(const mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  if (info == nullptr) return;
  const std::ptrdiff_t offset =
      reinterpret_cast<const char*>(info) - reinterpret_cast<const char*>(conn);
  std::ptrdiff_t known = -1;
  if (!g_request_info_offset.compare_exchange_strong(known, offset) && known != offset &&
      known != -2) {
    g_request_info_offset = -2;
    spdlog::warn("http server: cannot locate client addresses; per-address limit disabled");
  }
}

const mg_request_info* ClientInfo(const mg_connection* conn) {
  if (const mg_request_info* info = mg_get_request_info(conn)) return info;
  const std::ptrdiff_t offset = g_request_info_offset;
  if (offset < 0) return nullptr;
  const auto* info =
      reinterpret_cast<const mg_request_info*>(reinterpret_cast<const char*>(conn) + offset);
  if (info->remote_addr[0] == '\0' || info->remote_port <= 0) return nullptr;
  return info;
}

}  // namespace

int HttpServer::OnInitConnection(const mg_connection* conn, void** conn_data) {
  auto* self = static_cast<HttpServer*>(mg_get_user_data(mg_get_context(conn)));
  const mg_request_info* info = ClientInfo(conn);
  *conn_data = nullptr;
  if (self == nullptr || info == nullptr) return 0;
  bool over = false;
  {
    std::lock_guard lock(self->sources_mutex_);
    int& open = self->connections_by_source_[info->remote_addr];
    if (open >= self->SourceLimit()) {
      over = true;
      if (open == 0) self->connections_by_source_.erase(info->remote_addr);
    } else {
      ++open;
      *conn_data = &kCountedConnection;
    }
  }
  if (over) {
    ++self->counters_.connections_over_source_limit;
    ShutdownConnection(info->remote_addr, info->remote_port, info->server_port);
  }
  return 0;
}

void HttpServer::OnConnectionClose(const mg_connection* conn) {
  auto* self = static_cast<HttpServer*>(mg_get_user_data(mg_get_context(conn)));
  if (self == nullptr || mg_get_user_connection_data(conn) != &kCountedConnection) return;
  const mg_request_info* info = ClientInfo(conn);
  if (info == nullptr) return;
  std::lock_guard lock(self->sources_mutex_);
  auto it = self->connections_by_source_.find(info->remote_addr);
  if (it == self->connections_by_source_.end()) return;
  if (--it->second <= 0) self->connections_by_source_.erase(it);
}

void HttpServer::RoutePrefix(std::string prefix, std::vector<std::string> methods,
                             HttpHandler handler, RouteOptions route_options) {
  prefix_routes_.emplace_back(std::move(prefix),
                              MakeRoute(std::move(methods), std::move(handler), route_options));
}

const HttpServer::Route_* HttpServer::FindRoute(const std::string& path) const {
  if (const auto exact = routes_.find(path); exact != routes_.end()) return &exact->second;
  for (const auto& [prefix, route] : prefix_routes_) {
    if (path.starts_with(prefix)) return &route;
  }
  return nullptr;
}

std::string HttpServer::ToCivetwebPorts(const std::vector<std::string>& listen_addresses,
                                        bool tls) {
  if (listen_addresses.empty()) throw std::invalid_argument("no listen address given");
  std::string ports;
  for (const auto& address : listen_addresses) {
    const auto colon = address.rfind(':');
    std::string host = colon == std::string::npos ? "" : address.substr(0, colon);
    const std::string port = colon == std::string::npos ? address : address.substr(colon + 1);
    int port_number = -1;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || port_number < 0 ||
        port_number > 65535) {
      throw std::invalid_argument("listen address \"" + address +
                                  "\": expected [host]:port with a port from 0 to 65535");
    }
    if (host.size() >= 2 && host.front() == '[') {
      if (mg_check_feature(8) == 0) {
        throw std::invalid_argument("listen address \"" + address +
                                    "\": this build's HTTP library cannot listen on IPv6; "
                                    "listen on an IPv4 address or on all addresses (\":" +
                                    port + "\")");
      }
    } else if (host == "localhost") {
      host = "127.0.0.1";
    } else if (!host.empty()) {
      in_addr ignored{};
      if (inet_pton(AF_INET, host.c_str(), &ignored) != 1) {
        throw std::invalid_argument("listen address \"" + address +
                                    "\": expected an IPv4 address, localhost or nothing before "
                                    "the port");
      }
    }
    if (!ports.empty()) ports += ',';
    ports += host.empty() ? port : host + ":" + port;
    // Civetweb marks a TLS listener with an "s" after the port.
    if (tls) ports += 's';
  }
  return ports;
}

void HttpServer::Start() {
  InitCivetweb(options_.tls);
  const std::string ports = ToCivetwebPorts(options_.listen_addresses, options_.tls);
  const std::string threads = std::to_string(options_.threads);
  const std::string timeout = std::to_string(options_.request_timeout.count());
  const std::string keep_alive = std::to_string(options_.keep_alive_timeout.count());
  std::vector<std::string> storage = {"listening_ports", ports, "num_threads", threads,
                                      "request_timeout_ms", timeout, "enable_keep_alive", "yes",
                                      "keep_alive_timeout_ms", keep_alive,
                                      "enable_auth_domain_check", "no",
                                      // The path is decoded here, where a NUL in it is refused;
                                      // civetweb would cut the path at the NUL.
                                      "decode_url", "no",
                                      // Headers and body go out in separate writes: without
                                      // this, Nagle holds the body for the client's delayed
                                      // ACK (40 ms on Linux) on every small response.
                                      "tcp_nodelay", "1"};
  for (const auto& [k, v] : options_.civetweb_options) {
    storage.push_back(k);
    storage.push_back(v);
  }
  std::vector<const char*> argv;
  for (const auto& s : storage) argv.push_back(s.c_str());
  argv.push_back(nullptr);

  mg_callbacks callbacks{};
  callbacks.begin_request = &HttpServer::OnRequest;
  callbacks.init_connection = &HttpServer::OnInitConnection;
  callbacks.connection_close = &HttpServer::OnConnectionClose;
  if (options_.tls && init_ssl_) callbacks.init_ssl = &HttpServer::OnInitSsl;
  // Civetweb reports bind failures and TLS setup errors through log_message; keep the last one
  // made on this thread so Start() can say why. Worker threads report per-connection trouble
  // (a failed handshake) through the same callback: that goes to the debug log.
  static thread_local std::string* start_error = nullptr;
  std::string last_error;
  start_error = &last_error;
  callbacks.log_message = [](const mg_connection*, const char* message) {
    if (start_error != nullptr) {
      *start_error = message;
    } else {
      spdlog::debug("http server: {}", message);
    }
    return 1;
  };
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.user_data = this;
  init.configuration_options = argv.data();
  mg_error_data error{};
  char error_text[256] = {};
  error.text = error_text;
  error.text_buffer_size = sizeof error_text;
  context_ = mg_start2(&init, &error);
  start_error = nullptr;
  if (context_ == nullptr) {
    std::string why = error_text[0] != '\0' ? error_text : last_error;
    throw std::runtime_error("cannot serve HTTP on " + ports + ": " +
                             (why.empty() ? "unknown error" : why));
  }
  // One request to ourselves teaches where civetweb keeps client addresses (see ClientInfo),
  // so the per-address limit holds from the first attacker on. Over TLS the first real request
  // teaches it.
  if (g_request_info_offset == -1 && !options_.tls) {
    const auto bound = BoundPorts();
    if (!bound.empty()) {
      const auto& asked = options_.listen_addresses.front();
      const auto colon = asked.rfind(':');
      std::string host = colon == std::string::npos ? "" : asked.substr(0, colon);
      if (host.empty() || host == "0.0.0.0" || host == "localhost") host = "127.0.0.1";
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      timeval wait{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(bound.front()));
      inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
      if (fd >= 0 && connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
        constexpr std::string_view kProbe = "HEAD /-/healthy HTTP/1.0\r\n\r\n";
        send(fd, kProbe.data(), kProbe.size(), MSG_NOSIGNAL);
        char sink[512];
        while (recv(fd, sink, sizeof sink, 0) > 0) {
        }
      }
      if (fd >= 0) close(fd);
    }
  }
}

void HttpServer::Stop() {
  if (context_ == nullptr) return;
  // Civetweb's accept loop polls its sockets in 2 s quanta and mg_stop() waits for it, which
  // would make SIGTERM take up to two seconds. A connection to our own listener wakes the poll.
  std::vector<std::pair<std::string, int>> wake;
  const auto ports = BoundPorts();
  for (size_t i = 0; i < ports.size() && i < options_.listen_addresses.size(); ++i) {
    const auto& asked = options_.listen_addresses[i];
    const auto colon = asked.rfind(':');
    std::string host = colon == std::string::npos ? "" : asked.substr(0, colon);
    if (host.empty() || host == "0.0.0.0" || host == "localhost") host = "127.0.0.1";
    wake.emplace_back(host, ports[i]);
  }
  mg_context* context = context_;
  context_ = nullptr;
  std::atomic<bool> stopped{false};
  std::thread stopper([context, &stopped] {
    mg_stop(context);
    stopped = true;
  });
  for (int attempt = 0; attempt < 150 && !stopped; ++attempt) {
    for (const auto& [host, port] : wake) {
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(port));
      inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
      if (fd >= 0) {
        connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
        close(fd);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stopper.join();
  if (const int closed = CloseOrphanedConnections(ports); closed > 0) {
    spdlog::debug("closed {} connection(s) the HTTP server left open while stopping", closed);
  }
}

std::vector<int> HttpServer::BoundPorts() const {
  std::vector<int> out;
  if (context_ == nullptr) return out;
  mg_server_port ports[16];
  const int n = mg_get_server_ports(context_, 16, ports);
  for (int i = 0; i < n; ++i) out.push_back(ports[i].port);
  return out;
}

std::vector<std::string> HttpServer::BoundAddresses() const {
  std::vector<std::string> out;
  const auto ports = BoundPorts();
  for (size_t i = 0; i < ports.size() && i < options_.listen_addresses.size(); ++i) {
    const auto& asked = options_.listen_addresses[i];
    const auto colon = asked.rfind(':');
    std::string host = colon == std::string::npos ? "" : asked.substr(0, colon);
    if (host.empty() || host == "0.0.0.0") host = "localhost";
    out.push_back(host + ":" + std::to_string(ports[i]));
  }
  return out;
}

void HttpServer::SetTls(bool tls, std::function<int(void* ssl_ctx)> init_ssl) {
  options_.tls = tls;
  init_ssl_ = std::move(init_ssl);
}

void HttpServer::Restart() {
  // Rebind the ports actually bound, so that a listener asked for on port 0 does not move.
  const std::vector<int> ports = BoundPorts();
  if (ports.size() == options_.listen_addresses.size()) {
    for (size_t i = 0; i < ports.size(); ++i) {
      std::string& address = options_.listen_addresses[i];
      const auto colon = address.rfind(':');
      address = (colon == std::string::npos ? "" : address.substr(0, colon + 1)) +
                std::to_string(ports[i]);
    }
  }
  Stop();
  Start();
}

int HttpServer::OnInitSsl(void* ssl_ctx, void* user_data) {
  return static_cast<HttpServer*>(user_data)->init_ssl_(ssl_ctx);
}

int HttpServer::OnRequest(mg_connection* conn) {
  auto* self = static_cast<HttpServer*>(mg_get_user_data(mg_get_context(conn)));
  if (g_request_info_offset == -1) LearnRequestInfoOffset(conn);
  return self->Serve(conn);
}

std::optional<HttpResponse> HttpServer::ReadBody(mg_connection* conn, HttpRequest& request,
                                                 size_t limit, bool chunked,
                                                 long long content_length) {
  if (!chunked && content_length <= 0) return std::nullopt;
  if (!chunked && static_cast<unsigned long long>(content_length) > limit) {
    ++counters_.body_too_large;
    return HttpResponse::Text(
        413, "request body too large: the limit is " + std::to_string(limit) + " bytes\n");
  }
  // A chunked body's size is known only at its end, so it holds its route's whole limit.
  const size_t reserve = chunked ? limit + 1 : static_cast<size_t>(content_length);
  size_t before = body_bytes_in_flight_.load();
  do {
    if (before + reserve > options_.max_body_bytes_in_flight) {
      ++counters_.body_budget_exhausted;
      HttpResponse busy = HttpResponse::Text(503, "too many request bodies in flight\n");
      busy.headers.emplace_back("Retry-After", "1");
      return busy;
    }
  } while (!body_bytes_in_flight_.compare_exchange_weak(before, before + reserve));
  struct Release {
    std::atomic<size_t>& in_flight;
    size_t bytes;
    ~Release() { in_flight -= bytes; }
  } release{body_bytes_in_flight_, reserve};

  // Read in steps, so memory grows with what arrives rather than with what was announced.
  constexpr size_t kStep = 64 << 10;
  const size_t want = chunked ? limit + 1 : static_cast<size_t>(content_length);
  for (;;) {
    const size_t got = request.body.size();
    if (got >= want) break;
    const size_t step = std::min(kStep, want - got);
    request.body.resize(got + step);
    const int n = mg_read(conn, request.body.data() + got, step);
    request.body.resize(got + static_cast<size_t>(std::max(n, 0)));
    if (n <= 0) break;
  }
  if (chunked && request.body.size() > limit) {
    ++counters_.body_too_large;
    request.body.clear();
    return HttpResponse::Text(
        413, "request body too large: the limit is " + std::to_string(limit) + " bytes\n");
  }
  if (!chunked && request.body.size() < want) {
    ++counters_.incomplete_body;
    request.body.clear();
    return HttpResponse::Text(400, "request body ended before its Content-Length\n");
  }
  return std::nullopt;
}

int HttpServer::Serve(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  HttpRequest request;
  request.method = info->request_method ? info->request_method : "";
  request.query = info->query_string ? info->query_string : "";
  request.remote_address = info->remote_addr;
  for (int i = 0; i < info->num_headers; ++i) {
    request.headers.emplace_back(info->http_headers[i].name, info->http_headers[i].value);
  }
  const bool chunked = IsChunked(request.Header("Transfer-Encoding"));
  const bool has_body = chunked || info->content_length > 0;

  // Everything up to the body is decided from the headers alone: a refused request costs no
  // memory for what it announced.
  HttpResponse response;
  bool body_unread = has_body;
  const auto path = DecodePath(info->local_uri ? info->local_uri : "");
  const Route_* route = nullptr;
  if (info->num_headers > kMaxRequestHeaders) {
    ++counters_.too_many_headers;
    response = HttpResponse::Text(
        431, "more than " + std::to_string(kMaxRequestHeaders) + " request headers\n");
  } else if (!path) {
    ++counters_.bad_path;
    response = HttpResponse::Text(400, "invalid path\n");
  } else {
    request.path = *path;
    const Route_* matched = FindRoute(request.path);
    std::optional<HttpResponse> refused;
    if (guard_) refused = guard_(request);
    if (refused) {
      response = std::move(*refused);
    } else if (matched == nullptr) {
      response = HttpResponse::Text(404, "not found\n");
    } else if (std::find(matched->methods.begin(), matched->methods.end(), request.method) ==
               matched->methods.end()) {
      response = HttpResponse::Text(405, "method not allowed\n");
      std::string allow;
      for (const auto& m : matched->methods) allow += (allow.empty() ? "" : ", ") + m;
      response.headers.emplace_back("Allow", allow);
    } else if (matched->before_body && (refused = matched->before_body(request))) {
      response = std::move(*refused);
    } else {
      route = matched;
    }
  }
  bool body_started = false;
  if (route != nullptr) {
    if (auto refused =
            ReadBody(conn, request, route->max_body_bytes, chunked, info->content_length)) {
      response = std::move(*refused);
      body_started = response.status == 400 || response.status == 413;
      route = nullptr;
    } else {
      body_unread = false;
    }
  }
  if (route != nullptr) {
    try {
      response = route->handler(request);
    } catch (const std::exception& e) {
      spdlog::error("handler for {} failed: {}", request.path, e.what());
      response = HttpResponse::Text(500, "internal error\n");
    }
  }

  // A refused request's body, when small and already here, is read and dropped so the
  // connection stays usable and the client is not reset before it reads the answer. One that is
  // large, chunked, partly read or still to come is not waited for: the connection is closed.
  constexpr long long kDrainLimit = 64 << 10;
  if (body_unread && !chunked && !body_started && info->content_length <= kDrainLimit &&
      BytesWaiting(conn) >= static_cast<size_t>(info->content_length)) {
    char sink[4096];
    long long left = info->content_length;
    while (left > 0) {
      const int n =
          mg_read(conn, sink, static_cast<size_t>(std::min<long long>(left, sizeof sink)));
      if (n <= 0) break;
      left -= n;
    }
    body_unread = left > 0;
  }

  mg_response_header_start(conn, response.status);
  mg_response_header_add(conn, "Content-Type", response.content_type.c_str(), -1);
  const std::string length = std::to_string(response.body.size());
  mg_response_header_add(conn, "Content-Length", length.c_str(), -1);
  for (const auto& [k, v] : response.headers) {
    mg_response_header_add(conn, k.c_str(), v.c_str(), -1);
  }
  if (body_unread) mg_response_header_add(conn, "Connection", "close", -1);
  mg_response_header_send(conn);
  if (request.method != "HEAD" && !response.body.empty()) {
    mg_write(conn, response.body.data(), response.body.size());
  }
  if (response.recycle_body) response.recycle_body(std::move(response.body));
  // A body left unread would otherwise be read and thrown away by civetweb to keep the
  // connection alive: a worker spent on whatever the client chooses to send.
  if (body_unread) ShutdownConnection(conn);
  return response.status;
}

std::string GzipCompress(std::string_view data, int level) {
  z_stream zs{};
  // 15 window bits + 16 selects the gzip wrapper instead of raw zlib.
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  std::string out;
  out.resize(deflateBound(&zs, data.size()) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  const size_t produced = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("gzip compression failed");
  out.resize(produced);
  return out;
}

bool AcceptsGzip(std::string_view accept_encoding) {
  std::string_view rest = accept_encoding;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    const auto semi = item.find(';');
    std::string_view coding = item.substr(0, semi);
    while (!coding.empty() && coding.back() == ' ') coding.remove_suffix(1);
    if (!EqualsIgnoreCase(coding, "gzip") && coding != "*") continue;
    if (semi == std::string_view::npos) return true;
    std::string_view params = item.substr(semi + 1);
    const auto q = params.find("q=");
    if (q == std::string_view::npos) return true;
    double weight = 1;
    const auto value = params.substr(q + 2);
    std::from_chars(value.data(), value.data() + value.size(), weight);
    return weight > 0;
  }
  return false;
}

}  // namespace meshflow
