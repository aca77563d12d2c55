#include "common/http/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <utility>

#include "common/core/enum_names.h"
#include "common/core/fd.h"
#include "common/http/tls_client.h"

namespace meshflow::http {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHeaderBytes = 64 << 10;

int RemainingMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), 1 << 30)) + 1;
}

FetchResult Failure(FetchError error, std::string message) {
  FetchResult r;
  r.error = error;
  r.message = std::move(message);
  return r;
}

// FetchStream's cancellation test, for the waits of this thread's fetch; null otherwise.
thread_local const std::function<bool()>* t_cancelled = nullptr;

bool Cancelled() { return t_cancelled != nullptr && *t_cancelled && (*t_cancelled)(); }

// Waits for `events` on fd; false on timeout (or when FetchStream's fetch is cancelled).
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    int ms = RemainingMs(deadline);
    if (ms <= 0) return false;
    if (t_cancelled != nullptr) {
      if (Cancelled()) return false;
      ms = std::min(ms, 100);
    }
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, ms);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return true;  // the following call reports the error
    if (n == 0 && Clock::now() >= deadline) return false;
  }
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Resolves and connects; IP literals skip the resolver. Name resolution itself is the libc
// resolver's blocking call, bounded by its own timeout (resolv.conf), not by `deadline`.
FetchResult Connect(const HttpUrl& url, Clock::time_point deadline, Fd& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  in6_addr probe6;
  in_addr probe4;
  if (::inet_pton(AF_INET6, url.host.c_str(), &probe6) == 1 ||
      ::inet_pton(AF_INET, url.host.c_str(), &probe4) == 1)
    hints.ai_flags |= AI_NUMERICHOST;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(url.port);
  const int rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &list);
  if (rc != 0)
    return Failure(FetchError::kResolve, "resolving " + url.host + ": " + gai_strerror(rc));
  std::string last_error = "no addresses";
  FetchError last_kind = FetchError::kConnect;
  for (addrinfo* ai = list; ai; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) {
      last_error = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last_error = std::string("connect: ") + std::strerror(errno);
      continue;
    }
    if (!WaitFor(fd.get(), POLLOUT, deadline)) {
      last_error = "connect: timed out";
      last_kind = FetchError::kTimeout;
      break;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      last_error = std::string("connect: ") + std::strerror(err);
      continue;
    }
    ::freeaddrinfo(list);
    out = std::move(fd);
    return {};
  }
  ::freeaddrinfo(list);
  return Failure(last_kind, last_error);
}

// The connection a fetch writes and reads: plain TCP, or TLS over it.
class Stream {
 public:
  explicit Stream(Fd fd) : fd_(std::move(fd)) {}
  ~Stream() {
    if (ssl_ != nullptr) SSL_free(ssl_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // The handshake, verifying the peer as `tls` says: its certificate must name `host` (the
  // URL's) unless the config gives another server_name.
  FetchResult StartTls(const TlsClient& tls, const std::string& host, Clock::time_point deadline) {
    ssl_ = SSL_new(static_cast<SSL_CTX*>(tls.context()));
    if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_.get()) != 1) {
      return TlsFailure("setting up TLS");
    }
    const std::string& name = tls.config().server_name.empty() ? host : tls.config().server_name;
    in6_addr probe6;
    in_addr probe4;
    const bool literal = ::inet_pton(AF_INET6, name.c_str(), &probe6) == 1 ||
                         ::inet_pton(AF_INET, name.c_str(), &probe4) == 1;
    if (!literal) {
      // SSL_set_tlsext_host_name, without the macro's C cast; OpenSSL copies the name.
      SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(name.c_str()));
    }
    if (!tls.config().insecure_skip_verify) {
      const int set = literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), name.c_str())
                              : SSL_set1_host(ssl_, name.c_str());
      if (set != 1) return TlsFailure("setting the name to verify (" + name + ")");
    }
    for (;;) {
      // SSL_get_error reads this thread's error queue, which must be empty before each call.
      ERR_clear_error();
      const int r = SSL_connect(ssl_);
      if (r == 1) return {};
      const int why = SSL_get_error(ssl_, r);
      if (why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE) {
        if (!WaitFor(fd_.get(), why == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
          return Failure(FetchError::kTimeout, "TLS handshake: timed out");
        }
        continue;
      }
      const long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK) {
        ERR_clear_error();
        return Failure(FetchError::kTls,
                       std::string("TLS handshake: certificate of ") + name +
                           " not accepted: " + X509_verify_cert_error_string(verify));
      }
      return TlsFailure("TLS handshake");
    }
  }

  FetchResult SendAll(std::string_view data, Clock::time_point deadline) {
    while (!data.empty()) {
      if (ssl_ != nullptr) {
        size_t written = 0;
        ERR_clear_error();
        const int r = SSL_write_ex(ssl_, data.data(), data.size(), &written);
        if (r == 1) {
          data.remove_prefix(written);
          continue;
        }
        if (FetchResult wait = WaitForTls(r, deadline, "send"); !wait.ok()) return wait;
        continue;
      }
      const ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return Failure(FetchError::kIo, std::string("send: ") + std::strerror(errno));
      if (!WaitFor(fd_.get(), POLLOUT, deadline))
        return Failure(FetchError::kTimeout, "send: timed out");
    }
    return {};
  }

  // Reads more bytes into `buf`; 0 at end of stream.
  ssize_t ReadSome(std::string& buf, Clock::time_point deadline, FetchResult* error) {
    char chunk[16384];
    for (;;) {
      if (ssl_ != nullptr) {
        size_t got = 0;
        ERR_clear_error();
        const int r = SSL_read_ex(ssl_, chunk, sizeof chunk, &got);
        if (r == 1) {
          buf.append(chunk, got);
          return static_cast<ssize_t>(got);
        }
        if (SSL_get_error(ssl_, r) == SSL_ERROR_ZERO_RETURN) return 0;
        if (FetchResult wait = WaitForTls(r, deadline, "reading the response"); !wait.ok()) {
          *error = std::move(wait);
          return -1;
        }
        continue;
      }
      const ssize_t n = ::recv(fd_.get(), chunk, sizeof(chunk), 0);
      if (n >= 0) {
        buf.append(chunk, static_cast<size_t>(n));
        return n;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        *error = Failure(FetchError::kIo, std::string("recv: ") + std::strerror(errno));
        return -1;
      }
      if (!WaitFor(fd_.get(), POLLIN, deadline)) {
        *error = Failure(FetchError::kTimeout, "reading the response: timed out");
        return -1;
      }
    }
  }

 private:
  static FetchResult TlsFailure(const std::string& what) {
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0) return Failure(FetchError::kTls, what + " failed");
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    return Failure(FetchError::kTls, what + ": " + text);
  }

  // After an SSL call returned `result`: waits for what it wants, or says why it failed.
  FetchResult WaitForTls(int result, Clock::time_point deadline, const std::string& what) {
    const int why = SSL_get_error(ssl_, result);
    if (why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE) {
      if (!WaitFor(fd_.get(), why == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
        return Failure(FetchError::kTimeout, what + ": timed out");
      }
      return {};
    }
    if (why == SSL_ERROR_SYSCALL && errno != 0) {
      // In TLS 1.3 a server checks the client's certificate after the client has finished its
      // handshake: a refusal shows up only as the connection closing under the first write.
      return Failure(FetchError::kIo, what + ": " + std::strerror(errno) +
                                          " (the exporter closed the TLS connection: does it "
                                          "accept this client certificate?)");
    }
    return TlsFailure(what);
  }

  Fd fd_;
  SSL* ssl_ = nullptr;
};

std::optional<size_t> ParseSize(std::string_view s, int base) {
  size_t v = 0;
  s = Trim(s);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || end == s.data() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

namespace detail {

bool Dechunker::Feed(std::string_view raw, FetchResult* error) {
  for (;;) {
    if (in_trailers_) {
      const std::string_view rest = raw.substr(pos_);
      return rest.starts_with("\r\n") || rest.find("\r\n\r\n") != std::string_view::npos;
    }
    const size_t eol = raw.find("\r\n", pos_);
    if (eol == std::string_view::npos) return false;
    std::string_view size_line = raw.substr(pos_, eol - pos_);
    size_line = size_line.substr(0, size_line.find(';'));
    const auto size = ParseSize(size_line, 16);
    if (!size) {
      *error = Failure(FetchError::kProtocol, "malformed chunk size");
      return false;
    }
    if (*size > max_body_ || body_.size() + *size > max_body_) {
      *error = Failure(FetchError::kTooLarge,
                       "response body larger than " + std::to_string(max_body_) + " bytes");
      return false;
    }
    if (*size == 0) {
      pos_ = eol + 2;
      in_trailers_ = true;
      continue;
    }
    if (raw.size() < eol + 2 + *size + 2) return false;
    if (raw.substr(eol + 2 + *size, 2) != "\r\n") {
      *error = Failure(FetchError::kProtocol, "chunk not followed by CRLF");
      return false;
    }
    body_.append(raw.substr(eol + 2, *size));
    pos_ = eol + 2 + *size + 2;
  }
}

bool ParseResponseHead(std::string_view head, ClientResponse* out, std::string* error) {
  const size_t first_eol = head.find("\r\n");
  const std::string_view status_line = head.substr(0, first_eol);
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12 || status_line[8] != ' ' ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    *error = "malformed status line";
    return false;
  }
  const auto status = ParseSize(status_line.substr(9, 3), 10);
  if (!status || *status < 100 || *status > 599) {
    *error = "malformed status code";
    return false;
  }
  out->status = static_cast<int>(*status);
  if (first_eol == std::string_view::npos) return true;
  std::string_view rest = head.substr(first_eol + 2);
  while (!rest.empty()) {
    const size_t eol = rest.find("\r\n");
    const std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      *error = "malformed response header";
      return false;
    }
    out->headers.emplace_back(Lower(Trim(line.substr(0, colon))),
                              std::string(Trim(line.substr(colon + 1))));
  }
  return true;
}

}  // namespace detail

std::optional<HttpUrl> HttpUrl::Parse(std::string_view text, std::string* error) {
  auto fail = [&](std::string message) -> std::optional<HttpUrl> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };
  HttpUrl url;
  if (text.starts_with("https://")) {
    url.https = true;
    url.port = 443;
    text.remove_prefix(8);
  } else if (text.starts_with("http://")) {
    text.remove_prefix(7);
  } else {
    return fail("only http:// and https:// URLs are supported");
  }
  const size_t slash = text.find_first_of("/?");
  std::string_view authority = text.substr(0, slash);
  if (slash != std::string_view::npos) {
    // Appending, not inserting: GCC 12 warns falsely (-Wrestrict) on insert at -O2.
    url.target.clear();
    if (text[slash] == '?') url.target.push_back('/');
    url.target.append(text.substr(slash));
  }
  if (authority.find('@') != std::string_view::npos)
    return fail("user info in URLs is not supported");
  std::string_view port_text;
  if (authority.starts_with("[")) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("unclosed [ in IPv6 host");
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail("unexpected text after ]");
      port_text = rest.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (url.host.empty()) return fail("empty host");
  for (char c : url.host) {
    if (c <= ' ' || c == '/' || c == '\\' || c == '"') return fail("invalid character in host");
  }
  if (!port_text.empty()) {
    int port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 1 || port > 65535)
      return fail("invalid port");
    url.port = static_cast<uint16_t>(port);
  }
  for (char c : url.target) {
    if (c <= ' ' || c == 0x7f) return fail("invalid character in path");
  }
  return url;
}

std::string HttpUrl::HostHeader() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string h;
  if (v6) h.push_back('[');
  h.append(host);
  if (v6) h.push_back(']');
  if (port != (https ? 443 : 80)) {
    h.push_back(':');
    h.append(std::to_string(port));
  }
  return h;
}

std::string HttpUrl::ToString() const {
  std::string out = https ? "https://" : "http://";
  out.append(HostHeader());
  out.append(target);
  return out;
}

std::string_view ClientResponse::Header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return {};
}

namespace {

constexpr EnumName<FetchError> kFetchErrorNames[] = {
    {FetchError::kNone, "none"},         {FetchError::kBadUrl, "bad_url"},
    {FetchError::kResolve, "resolve"},   {FetchError::kConnect, "connect"},
    {FetchError::kTimeout, "timeout"},   {FetchError::kTooLarge, "too_large"},
    {FetchError::kProtocol, "protocol"}, {FetchError::kIo, "io"},
    {FetchError::kTls, "tls"},           {FetchError::kCancelled, "cancelled"},
};

}  // namespace

std::string_view FetchErrorName(FetchError error) { return NameOf(kFetchErrorNames, error); }

namespace {

// Fetch, or FetchStream when `sink` is given.
FetchResult FetchImpl(const ClientRequest& request, Clock::time_point deadline,
                      size_t max_body_bytes, const TlsClient* tls, const BodySink* sink) {
  std::shared_ptr<const TlsClient> system;
  if (request.url.https && tls == nullptr) {
    system = TlsClient::SystemDefault();
    if (system == nullptr)
      return Failure(FetchError::kTls, "the system's trust store did not load");
    tls = system.get();
  }
  Fd fd;
  if (FetchResult r = Connect(request.url, deadline, fd); !r.ok()) return r;
  Stream stream(std::move(fd));
  if (request.url.https) {
    if (FetchResult r = stream.StartTls(*tls, request.url.host, deadline); !r.ok()) return r;
  }

  std::string head = request.method + " " + request.url.target +
                     " HTTP/1.1\r\nHost: " + request.url.HostHeader() + "\r\nConnection: close\r\n";
  for (const auto& [k, v] : request.headers) {
    if (k.find_first_of("\r\n:") != std::string::npos ||
        v.find_first_of("\r\n") != std::string::npos)
      return Failure(FetchError::kProtocol, "invalid request header");
    head += k + ": " + v + "\r\n";
  }
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT")
    head += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
  head += "\r\n";
  if (FetchResult r = stream.SendAll(head, deadline); !r.ok()) return r;
  if (FetchResult r = stream.SendAll(request.body, deadline); !r.ok()) return r;

  std::string buf;
  size_t header_end = std::string::npos;
  FetchResult error;
  while (header_end == std::string::npos) {
    const ssize_t n = stream.ReadSome(buf, deadline, &error);
    if (n < 0) return error;
    header_end = buf.find("\r\n\r\n");
    if (header_end == std::string::npos && buf.size() > kMaxHeaderBytes)
      return Failure(FetchError::kProtocol, "response headers too large");
    if (n == 0 && header_end == std::string::npos)
      return Failure(FetchError::kProtocol, "connection closed before the response headers");
  }

  FetchResult result;
  ClientResponse& response = result.response;
  std::string why;
  if (!detail::ParseResponseHead(std::string_view(buf).substr(0, header_end), &response, &why))
    return Failure(FetchError::kProtocol, why);

  buf.erase(0, header_end + 4);
  if (sink != nullptr && sink->on_head) sink->on_head(response);
  const bool no_body = request.method == "HEAD" || response.status == 204 ||
                       response.status == 304 || response.status < 200;
  if (no_body) return result;

  const std::string te = Lower(response.Header("transfer-encoding"));
  if (te.find("chunked") != std::string::npos) {
    detail::Dechunker dechunker(max_body_bytes);
    for (;;) {
      FetchResult chunk_error;
      const bool done = dechunker.Feed(buf, &chunk_error);
      if (sink != nullptr) {
        const std::string piece = dechunker.TakeDecoded();
        if (!piece.empty() && !sink->on_data(piece)) return result;
        dechunker.Compact(buf);
      }
      if (done) {
        if (sink == nullptr) response.body = dechunker.TakeBody();
        return result;
      }
      if (!chunk_error.ok()) return chunk_error;
      // A chunk header line never needs more than a few kilobytes.
      if (dechunker.pending(buf) > max_body_bytes + 65536)
        return Failure(FetchError::kTooLarge,
                       "response body larger than " + std::to_string(max_body_bytes) + " bytes");
      const ssize_t n = stream.ReadSome(buf, deadline, &error);
      if (n < 0) return error;
      if (n == 0) return Failure(FetchError::kProtocol, "connection closed inside a chunked body");
    }
  }

  const std::string_view length_text = response.Header("content-length");
  std::optional<size_t> length;
  if (!length_text.empty()) {
    length = ParseSize(length_text, 10);
    if (!length) return Failure(FetchError::kProtocol, "malformed Content-Length");
    if (sink == nullptr && *length > max_body_bytes)
      return Failure(FetchError::kTooLarge, "response body of " + std::to_string(*length) +
                                                " bytes exceeds the limit of " +
                                                std::to_string(max_body_bytes));
  }
  if (sink != nullptr) {
    size_t left = length ? *length : SIZE_MAX;
    for (;;) {
      const size_t take = std::min(left, buf.size());
      if (take > 0 && !sink->on_data(std::string_view(buf).substr(0, take))) return result;
      left -= take;
      buf.clear();
      if (left == 0) return result;
      const ssize_t n = stream.ReadSome(buf, deadline, &error);
      if (n < 0) return error;
      if (n == 0) {
        if (length) return Failure(FetchError::kProtocol, "connection closed inside the body");
        return result;
      }
    }
  }
  for (;;) {
    if (length && buf.size() >= *length) {
      buf.resize(*length);
      break;
    }
    if (buf.size() > max_body_bytes)
      return Failure(FetchError::kTooLarge,
                     "response body larger than " + std::to_string(max_body_bytes) + " bytes");
    const ssize_t n = stream.ReadSome(buf, deadline, &error);
    if (n < 0) return error;
    if (n == 0) {
      if (length) return Failure(FetchError::kProtocol, "connection closed inside the body");
      break;
    }
  }
  response.body = std::move(buf);
  return result;
}

}  // namespace

FetchResult Fetch(const ClientRequest& request, Clock::time_point deadline, size_t max_body_bytes,
                  const TlsClient* tls) {
  return FetchImpl(request, deadline, max_body_bytes, tls, nullptr);
}

FetchResult FetchStream(const ClientRequest& request, Clock::time_point deadline,
                        size_t max_chunk_bytes, const TlsClient* tls, const BodySink& sink) {
  struct Scope {
    explicit Scope(const std::function<bool()>* c) : saved(std::exchange(t_cancelled, c)) {}
    ~Scope() { t_cancelled = saved; }
    const std::function<bool()>* saved;
  } scope(&sink.cancelled);
  FetchResult r = FetchImpl(request, deadline, max_chunk_bytes, tls, &sink);
  if (Cancelled()) return Failure(FetchError::kCancelled, "cancelled");
  return r;
}

}  // namespace meshflow::http
