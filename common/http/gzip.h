#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace meshflow::http {

// Compressing is meshflow::GzipCompress (common/http/http_server.h).

// Inflates a gzip body, giving up as soon as the output would pass `max_output` bytes, so a
// small compressed body cannot expand into gigabytes. nullopt with `*too_large` set when it
// would, with `*error` set when the data is not valid gzip.
std::optional<std::string> GunzipBounded(std::string_view data, size_t max_output, bool* too_large,
                                         std::string* error);

}  // namespace meshflow::http
