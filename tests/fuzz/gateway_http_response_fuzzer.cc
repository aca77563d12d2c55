// Upstream exporters' responses are untrusted input to the gateway's HTTP client: the head
// parser and the chunked decoder, fed in pieces of varying size as reads deliver them.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/http/http_client.h"

using namespace meshflow;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t step = 1 + data[0] % 64;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  http::ClientResponse response;
  std::string why;
  if (http::detail::ParseResponseHead(input, &response, &why)) {
    if (response.status < 100 || response.status > 599) std::abort();
  } else if (why.empty()) {
    std::abort();
  }

  constexpr size_t kMaxBody = 4096;
  http::detail::Dechunker dechunker(kMaxBody);
  std::string received;
  for (size_t at = 0; at < input.size(); at += step) {
    received.append(input.substr(at, step));
    http::FetchResult error;
    if (dechunker.Feed(received, &error)) {
      if (dechunker.TakeBody().size() > kMaxBody) std::abort();
      break;
    }
    if (!error.ok()) {
      if (error.message.empty()) std::abort();
      break;
    }
    if (dechunker.pending(received) > received.size()) std::abort();
  }
  return 0;
}
