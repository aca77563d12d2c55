#include "gateway/remote_write/response.h"

#include <charconv>

namespace meshflow::gateway::remote_write {

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty() || value.size() > 10) return std::nullopt;
  int64_t seconds = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc() || end != value.data() + value.size() || seconds < 0) return std::nullopt;
  return std::chrono::seconds(seconds);
}

std::string ReceiverReason(std::string_view body) {
  constexpr size_t kMax = 256;
  std::string out;
  for (char c : body) {
    if (c == '\n' || out.size() >= kMax) break;
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

ResponseVerdict ClassifyResponse(const http::FetchResult& result, bool retry_on_http_429) {
  ResponseVerdict v;
  if (!result.ok()) {
    v.verdict = Verdict::kRetry;
    v.reason = std::string(http::FetchErrorName(result.error)) + ": " + result.message;
    return v;
  }
  const int status = result.response.status;
  if (status >= 200 && status < 300) return v;
  v.reason = "HTTP " + std::to_string(status);
  if (auto said = ReceiverReason(result.response.body); !said.empty()) v.reason += ": " + said;
  if (status >= 500 || (status == 429 && retry_on_http_429)) {
    v.verdict = Verdict::kRetry;
    if (status == 429 || status == 503)
      v.retry_after = ParseRetryAfter(result.response.Header("retry-after"));
    return v;
  }
  v.verdict = Verdict::kDrop;
  return v;
}

}  // namespace meshflow::gateway::remote_write
