#include "common/daemon/daemon_flags.h"

#include <CLI/CLI.hpp>

#include "common/core/log.h"
#include "common/daemon/version.h"

namespace meshflow {

void AddDaemonFlags(CLI::App& app, const DaemonFlagTexts& texts, DaemonFlags& flags) {
  app.set_version_flag("--version", std::string(texts.program) + " version " +
                                        std::string(kVersion) + " (revision " +
                                        std::string(kRevision) + ")");
  app.add_option("--web.listen-address", flags.listen_addresses, std::string(texts.listen_help))
      ->type_name("[HOST]:PORT");
  app.add_option("--web.telemetry-path", flags.telemetry_path, std::string(texts.telemetry_help))
      ->capture_default_str()
      ->check([](const std::string& p) {
        return !p.empty() && p[0] == '/' ? std::string() : std::string("must start with /");
      });
  app.add_option("--config.file", flags.config_file, std::string(texts.config_help))
      ->type_name("FILE");
  app.add_option("--web.config.file", flags.web_config_file, std::string(texts.web_config_help))
      ->type_name("FILE");
  app.add_flag("--web.enable-lifecycle", flags.enable_lifecycle,
               "Enable reloading the configuration by HTTP (POST /-/reload). SIGHUP always "
               "reloads.");
  app.add_flag("--config.check", flags.config_check,
               "Check --config.file and --web.config.file (with the files they name) and exit: 0 "
               "when both load, else 1 with every error located.");
  app.add_option("--log.level", flags.log_level, "Only log messages with this severity or above.")
      ->capture_default_str()
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--log.format", flags.log_format, "Output format of log messages.")
      ->capture_default_str()
      ->check(CLI::IsMember({"logfmt", "json"}));
}

std::optional<int> ParseCommandLine(CLI::App& app, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return std::nullopt;
}

void SetUpDaemonLogging(const DaemonFlags& flags) {
  SetUpLogging(flags.log_level, flags.log_format == "json" ? LogFormat::kJson : LogFormat::kLogfmt);
}

}  // namespace meshflow
