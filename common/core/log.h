#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

namespace meshflow {

enum class LogFormat { kLogfmt, kJson };

// Installs the process-wide logger writing to stderr in the given format. Throws
// std::invalid_argument for an unknown level name (debug, info, warn, error).
void SetUpLogging(std::string_view level, LogFormat format);

// Quotes a value for logfmt when it needs it ("a b" -> "\"a b\"").
std::string LogfmtValue(std::string_view value);

}  // namespace meshflow
