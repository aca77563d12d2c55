#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace meshflow::discovery::detail {

// Parses JSON, exceptions caught here; nullopt and `error` ("JSON syntax error at byte N") on
// failure.
std::optional<nlohmann::json> ParseJson(std::string_view text, std::string* error);

// A string member of an object, or nullopt when absent or not a string.
std::optional<std::string> StringAt(const nlohmann::json& object, const char* key);

}  // namespace meshflow::discovery::detail
