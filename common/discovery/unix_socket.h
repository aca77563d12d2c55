#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

namespace meshflow::discovery {

// One request and its answer over a Unix stream socket, all within `timeout`: connect, write
// `request`, read until `complete(answer so far)` says the answer is whole or the peer closes.
// Answers above `max_bytes` fail. Returns false with `error` set on any failure.
bool UnixExchange(const std::string& path, std::string_view request,
                  const std::function<bool(std::string_view)>& complete,
                  std::chrono::milliseconds timeout, size_t max_bytes, std::string* answer,
                  std::string* error);

}  // namespace meshflow::discovery
