#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "common/core/config_reader.h"
#include "common/core/log.h"
#include "common/daemon/control_signals.h"
#include "common/daemon/version.h"
#include "common/web/web_config_watcher.h"
#include "gateway/gateway.h"

namespace {

struct GatewayFlags {
  meshflow::gateway::GatewayOptions gateway;
  std::string log_level = "info";
  std::string log_format = "logfmt";
  bool config_check = false;  // --config.check: check the files and exit
};

std::optional<int> ParseFlags(int argc, char** argv, GatewayFlags& flags) {
  CLI::App app{
      "meshflow-gateway: one Prometheus target per node for every node of a cluster, scraped "
      "through the gateway or pushing to it, with an honest up and a TTL on pushes.",
      "meshflow-gateway"};
  app.set_version_flag("--version", std::string("meshflow-gateway version ") +
                                        std::string(meshflow::kVersion) + " (revision " +
                                        std::string(meshflow::kRevision) + ")");
  auto& o = flags.gateway;
  std::vector<std::string> listen;
  app.add_option("--web.listen-address", listen,
                 "Address to listen on for the web interface, /targets, /proxy, /push and "
                 "/federate; repeatable. [default: :9475]")
      ->type_name("[HOST]:PORT");
  app.add_option("--web.telemetry-path", o.telemetry_path,
                 "Path under which to expose the gateway's own metrics.")
      ->capture_default_str()
      ->check([](const std::string& p) {
        return !p.empty() && p[0] == '/' ? std::string() : std::string("must start with /");
      });
  app.add_option("--web.max-requests", o.http.threads,
                 "Requests served at once; each /proxy request holds one while its node answers.")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--config.file", o.config_file, "Gateway configuration file (YAML).")
      ->type_name("FILE");
  app.add_option("--web.config.file", o.web_config_file,
                 "Web config file (TLS and basic auth, exporter-toolkit format), re-read when it "
                 "changes. Pushes authenticate with their node's token instead.")
      ->type_name("FILE");
  app.add_option("--log.level", flags.log_level, "Only log messages with this severity or above.")
      ->capture_default_str()
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--log.format", flags.log_format, "Output format of log messages.")
      ->capture_default_str()
      ->check(CLI::IsMember({"logfmt", "json"}));
  app.add_flag("--config.check", flags.config_check,
               "Check --config.file and --web.config.file (with the token and certificate files "
               "they name) and exit: 0 when both load, else 1 with every error located.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!listen.empty()) o.listen_addresses = listen;
  return std::nullopt;
}

// --config.check: loads the config file (with its token and TLS files) and the web config
// (with its certificate files) as a start would, without opening a socket. Every file is
// checked even when an earlier one fails; each problem is located by file, line and field.
int CheckConfigFiles(const std::string& config_file, const std::string& web_config_file) {
  int failed = 0;
  const auto check = [&failed](const std::string& file, const auto& load) {
    try {
      load(file);
      std::cout << file << ": ok\n";
    } catch (const std::exception& e) {
      std::cerr << e.what() << "\n";
      ++failed;
    }
  };
  if (config_file.empty()) {
    std::cout << "no --config.file: no targets until a config names some\n";
  } else {
    check(config_file, [](const std::string& f) { meshflow::gateway::LoadGatewayConfigFile(f); });
  }
  if (!web_config_file.empty()) {
    check(web_config_file, [](const std::string& f) { meshflow::web::WebConfigWatcher{f}; });
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  GatewayFlags flags;
  if (auto exit_code = ParseFlags(argc, argv, flags)) return *exit_code;
  if (flags.config_check) {
    return CheckConfigFiles(flags.gateway.config_file, flags.gateway.web_config_file);
  }
  try {
    meshflow::SetUpLogging(flags.log_level, flags.log_format == "json"
                                                ? meshflow::LogFormat::kJson
                                                : meshflow::LogFormat::kLogfmt);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  const sigset_t signals = meshflow::BlockControlSignals();
  meshflow::gateway::Gateway gateway(flags.gateway);
  try {
    gateway.Start();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
  for (;;) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) continue;
    if (signal == SIGHUP) {
      gateway.Reload();
      continue;
    }
    spdlog::info("received {}, stopping", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    gateway.Stop();
    return 0;
  }
}
