#include "common/discovery/json_util.h"

namespace meshflow::discovery::detail {

std::optional<nlohmann::json> ParseJson(std::string_view text, std::string* error) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // parse_error carries the byte offset; other errors (depth, ...) only their message.
    const auto* parse = dynamic_cast<const nlohmann::json::parse_error*>(&e);
    *error = parse != nullptr
                 ? "not valid JSON (syntax error at byte " + std::to_string(parse->byte) + ")"
                 : std::string("not valid JSON (") + e.what() + ")";
    return std::nullopt;
  }
}

std::optional<std::string> StringAt(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return std::nullopt;
  const auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace meshflow::discovery::detail
