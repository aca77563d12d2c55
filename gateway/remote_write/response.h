#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/http/http_client.h"

namespace meshflow::gateway::remote_write {

// What to do with a batch after the receiver's answer.
enum class Verdict {
  kSent,   // 2xx
  kRetry,  // 5xx, 429 (unless retry_on_http_429 is off), or no answer at all
  kDrop,   // any other status: the receiver will never take this batch
};

struct ResponseVerdict {
  Verdict verdict = Verdict::kSent;
  // For logs: the status or network error and the receiver's own words.
  std::string reason;
  // The receiver's Retry-After (delay seconds) on 429 and 503, when it sent one.
  std::optional<std::chrono::seconds> retry_after;
};

ResponseVerdict ClassifyResponse(const http::FetchResult& result, bool retry_on_http_429);

// Retry-After as delay-seconds (RFC 9110); nullopt for an HTTP date or anything malformed.
std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value);

// The first line of a response body with control bytes replaced, at most 256 bytes: what the
// receiver said about a refused batch, safe to log.
std::string ReceiverReason(std::string_view body);

}  // namespace meshflow::gateway::remote_write
