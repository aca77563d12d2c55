#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}

namespace meshflow {

// The flags both daemons share, in the Prometheus exporter-toolkit style.
struct DaemonFlags {
  std::vector<std::string> listen_addresses;  // --web.listen-address; empty: the daemon's default
  std::string telemetry_path = "/metrics";
  std::string config_file;
  std::string web_config_file;
  bool enable_lifecycle = false;  // --web.enable-lifecycle: POST /-/reload; off as in Prometheus
  bool config_check = false;      // --config.check: check the config files and exit
  std::string log_level = "info";
  std::string log_format = "logfmt";
};

// What each daemon says in the shared flags' help.
struct DaemonFlagTexts {
  std::string_view program;  // "meshflow-exporter", for --version
  std::string_view listen_help;
  std::string_view telemetry_help;
  std::string_view config_help;
  std::string_view web_config_help;
};

// Adds --version and the shared flags to `app`, writing into `flags` when it parses.
void AddDaemonFlags(CLI::App& app, const DaemonFlagTexts& texts, DaemonFlags& flags);

// Parses the command line into what `app` was given. Returns the exit code when the program should
// stop now (--help, --version, a bad flag), nullopt to go on.
std::optional<int> ParseCommandLine(CLI::App& app, int argc, const char* const* argv);

// Copies the shared flags into a daemon's options; the listen addresses only when given, so the
// daemon's default stays otherwise.
template <typename Options>
void ApplyDaemonFlags(const DaemonFlags& flags, Options& options) {
  if (!flags.listen_addresses.empty()) options.listen_addresses = flags.listen_addresses;
  options.telemetry_path = flags.telemetry_path;
  options.config_file = flags.config_file;
  options.web_config_file = flags.web_config_file;
}

// Sets up logging as --log.level and --log.format ask.
void SetUpDaemonLogging(const DaemonFlags& flags);

}  // namespace meshflow
