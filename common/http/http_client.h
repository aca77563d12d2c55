#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshflow::http {

class TlsClient;

// An http:// or https:// URL split for a request. Hosts may be names, IPv4 or bracketed IPv6
// literals.
struct HttpUrl {
  bool https = false;
  std::string host;  // without brackets
  uint16_t port = 80;
  std::string target = "/";  // path and query, sent as the request target

  static std::optional<HttpUrl> Parse(std::string_view text, std::string* error);
  std::string HostHeader() const;
  std::string ToString() const;
};

using ClientHeaders = std::vector<std::pair<std::string, std::string>>;

struct ClientRequest {
  std::string method = "GET";
  HttpUrl url;
  ClientHeaders headers;  // besides Host, Connection and Content-Length, which are always set
  std::string body;
};

struct ClientResponse {
  int status = 0;
  ClientHeaders headers;  // names lower-cased
  std::string body;       // after chunked decoding; content encoding untouched
  // The first header of that (lower-case) name, or empty.
  std::string_view Header(std::string_view lower_name) const;
};

enum class FetchError {
  kNone,
  kBadUrl,
  kResolve,
  kConnect,
  kTimeout,
  kTooLarge,
  kProtocol,
  kIo,
  kTls,        // the handshake failed: certificate not trusted, wrong name, no client certificate
  kCancelled,  // FetchStream: the sink's `cancelled` said so
};

std::string_view FetchErrorName(FetchError error);

struct FetchResult {
  FetchError error = FetchError::kNone;
  std::string message;  // for the user when error != kNone
  ClientResponse response;
  bool ok() const { return error == FetchError::kNone; }
};

namespace detail {

// Decodes a chunked body incrementally: Feed() after every read consumes what is complete.
class Dechunker {
 public:
  explicit Dechunker(size_t max_body) : max_body_(max_body) {}
  // True once the last chunk and the trailers are in `raw` (everything read so far); sets
  // `error` when the framing is malformed or the body passes the limit.
  bool Feed(std::string_view raw, FetchResult* error);
  std::string TakeBody() { return std::move(body_); }
  // What was decoded since the last call (streaming), leaving the decoder's copy empty.
  std::string TakeDecoded() {
    std::string out;
    out.swap(body_);
    return out;
  }
  // Drops the consumed part of `raw` (what Feed() was given), so a long stream does not grow it.
  void Compact(std::string& raw) {
    raw.erase(0, pos_);
    pos_ = 0;
  }
  // Bytes of `raw` not yet consumed.
  size_t pending(std::string_view raw) const { return raw.size() - pos_; }

 private:
  size_t max_body_;
  size_t pos_ = 0;
  bool in_trailers_ = false;
  std::string body_;
};

// Parses a response's status line and headers (up to, not including, the blank line).
bool ParseResponseHead(std::string_view head, ClientResponse* out, std::string* error);

}  // namespace detail

// One HTTP/1.1 exchange on a fresh connection that ends at `deadline` whatever the peer does:
// name resolution, a non-blocking connect on each address in turn, the TLS handshake, the write
// and the read all share it. Responses above `max_body_bytes` are abandoned as kTooLarge.
// https:// URLs use `tls`, or the system's trust store when it is null.
FetchResult Fetch(const ClientRequest& request, std::chrono::steady_clock::time_point deadline,
                  size_t max_body_bytes, const TlsClient* tls = nullptr);

// Where FetchStream hands a response's body as it arrives.
struct BodySink {
  // The status line and headers, once, before any of the body. May be empty.
  std::function<void(const ClientResponse&)> on_head;
  // Each piece of the body in order, after chunked decoding. False: stop reading; the fetch
  // ends there, successfully.
  std::function<bool(std::string_view)> on_data;
  // Asked at least every 100 ms while the fetch waits (connect, handshake, reads); true ends it
  // with kCancelled. May be empty.
  std::function<bool()> cancelled;
};

// Fetch for long responses read as they come (a Kubernetes watch): the body goes to `sink`
// instead of response.body, and has no total limit; a single chunk above `max_chunk_bytes` is
// kTooLarge. The exchange still ends at `deadline`.
FetchResult FetchStream(const ClientRequest& request,
                        std::chrono::steady_clock::time_point deadline, size_t max_chunk_bytes,
                        const TlsClient* tls, const BodySink& sink);

}  // namespace meshflow::http
