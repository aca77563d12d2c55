#include "common/core/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <chrono>
#include <ctime>
#include <stdexcept>

namespace meshflow {
namespace {

std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    default:
      return "error";
  }
}

std::string Rfc3339Millis(spdlog::log_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms.count() % 1000));
  return buf;
}

void AppendJsonString(std::string_view s, spdlog::memory_buf_t& out) {
  out.push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"':
        out.append(std::string_view("\\\""));
        break;
      case '\\':
        out.append(std::string_view("\\\\"));
        break;
      case '\n':
        out.append(std::string_view("\\n"));
        break;
      case '\t':
        out.append(std::string_view("\\t"));
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof esc, "\\u%04x", c);
          out.append(std::string_view(esc));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

// The line shapes of the Prometheus exporter toolkit (go-kit log): ts, level, caller, msg.
class LineFormatter final : public spdlog::formatter {
 public:
  explicit LineFormatter(LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string ts = Rfc3339Millis(msg.time);
    const std::string_view text(msg.payload.data(), msg.payload.size());
    const std::string_view level = LevelName(msg.level);
    if (format_ == LogFormat::kJson) {
      dest.append(std::string_view("{\"ts\":\""));
      dest.append(ts);
      dest.append(std::string_view("\",\"level\":\""));
      dest.append(level);
      dest.append(std::string_view("\",\"msg\":"));
      AppendJsonString(text, dest);
      dest.append(std::string_view("}\n"));
    } else {
      dest.append(std::string_view("ts="));
      dest.append(ts);
      dest.append(std::string_view(" level="));
      dest.append(level);
      dest.append(std::string_view(" msg="));
      dest.append(LogfmtValue(text));
      dest.push_back('\n');
    }
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(format_);
  }

 private:
  LogFormat format_;
};

}  // namespace

std::string LogfmtValue(std::string_view value) {
  const bool needs_quotes =
      value.empty() || value.find_first_of(" =\"\\\n\t") != std::string_view::npos;
  if (!needs_quotes) return std::string(value);
  std::string out = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

void SetUpLogging(std::string_view level, LogFormat format) {
  spdlog::level::level_enum parsed;
  if (level == "debug")
    parsed = spdlog::level::debug;
  else if (level == "info")
    parsed = spdlog::level::info;
  else if (level == "warn")
    parsed = spdlog::level::warn;
  else if (level == "error")
    parsed = spdlog::level::err;
  else
    throw std::invalid_argument("unknown log level \"" + std::string(level) +
                                "\": expected debug, info, warn or error");
  auto logger = std::make_shared<spdlog::logger>("meshflow",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_formatter(std::make_unique<LineFormatter>(format));
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace meshflow
