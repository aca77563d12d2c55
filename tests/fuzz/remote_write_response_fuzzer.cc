// A remote-write receiver's answer is untrusted input: the response head, then the verdict on
// it (retry, drop), the Retry-After header and the reason logged from the body.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/http/http_client.h"
#include "gateway/remote_write/response.h"

using namespace meshflow;
using namespace meshflow::gateway;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t blank = input.find("\r\n\r\n");
  http::FetchResult result;
  std::string why;
  if (!http::detail::ParseResponseHead(input.substr(0, blank), &result.response, &why)) return 0;
  if (blank != std::string_view::npos) result.response.body = std::string(input.substr(blank + 4));
  for (const bool retry_429 : {true, false}) {
    const auto v = remote_write::ClassifyResponse(result, retry_429);
    const int status = result.response.status;
    const bool success = status >= 200 && status < 300;
    if ((v.verdict == remote_write::Verdict::kSent) != success) std::abort();
    if (status >= 500 && v.verdict != remote_write::Verdict::kRetry) std::abort();
    if (v.retry_after && v.retry_after->count() < 0) std::abort();
    if (!success && v.reason.size() > 256 + 32) std::abort();
    for (char c : v.reason) {
      if (static_cast<unsigned char>(c) < 0x20) std::abort();
    }
  }
  if (auto r = remote_write::ParseRetryAfter(input); r && r->count() < 0) std::abort();
  return 0;
}
