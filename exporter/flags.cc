#include "exporter/flags.h"

#include <CLI/CLI.hpp>
#include <iostream>

#include "common/core/config_reader.h"
#include "common/daemon/version.h"
#include "exporter/collector_table.h"

namespace meshflow {

std::optional<int> ParseExporterFlags(int argc, const char* const* argv, ExporterFlags& flags) {
  CLI::App app{
      "meshflow-exporter: overlay round-trip time, loss and per-role traffic between the "
      "nodes of a cluster, as Prometheus metrics.",
      "meshflow-exporter"};
  app.set_version_flag("--version", std::string("meshflow-exporter version ") +
                                        std::string(kVersion) + " (revision " +
                                        std::string(kRevision) + ")");
  auto& o = flags.exporter;
  std::vector<std::string> listen;
  app.add_option("--web.listen-address", listen,
                 "Address to listen on for the web interface and telemetry; repeatable. "
                 "[default: :9474]")
      ->type_name("[HOST]:PORT");
  app.add_option("--web.telemetry-path", o.telemetry_path, "Path under which to expose metrics.")
      ->capture_default_str()
      ->check([](const std::string& p) {
        return !p.empty() && p[0] == '/' ? std::string() : std::string("must start with /");
      });
  app.add_option("--web.max-requests", o.max_requests,
                 "Maximum number of scrapes served at once; more are refused with 503.")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--config.file", o.config_file,
                 "meshflow configuration file (YAML). Without it the built-in default is used.")
      ->type_name("FILE");
  app.add_option("--web.config.file", o.web_config_file,
                 "Web config file (exporter-toolkit format) enabling TLS and/or basic "
                 "authentication; re-read when it changes.")
      ->type_name("FILE");
  app.add_option("--runas", flags.runas,
                 "When started as root: switch to this user once capture handles and probe "
                 "sockets are open, keeping only the capabilities still needed.")
      ->type_name("USER");
  app.add_option("--push.url", flags.push.url,
                 "Push the exposition to a meshflow-gateway at this URL (its /push endpoint), "
                 "for nodes Prometheus cannot reach. Off when empty.")
      ->type_name("URL");
  app.add_option("--push.token-file", flags.push.token_file,
                 "File holding this node's bearer token for --push.url.")
      ->type_name("FILE");
  app.add_option("--push.tls-ca-file", flags.push.tls.ca_file,
                 "CA certificates an https:// --push.url is verified against (default: the "
                 "system's trust store).")
      ->type_name("FILE");
  app.add_option("--push.tls-cert-file", flags.push.tls.cert_file,
                 "Client certificate for a gateway that requires one (with --push.tls-key-file).")
      ->type_name("FILE");
  app.add_option("--push.tls-key-file", flags.push.tls.key_file,
                 "Private key of --push.tls-cert-file.")
      ->type_name("FILE");
  std::string push_interval = "5s";
  app.add_option("--push.interval", push_interval,
                 "How often to push; the gateway serves a push for three intervals.")
      ->capture_default_str()
      ->check([](const std::string& v) {
        return ParseDuration(v) ? std::string() : std::string("expected a duration such as 5s");
      });
  app.add_option("--log.level", flags.log_level, "Only log messages with this severity or above.")
      ->capture_default_str()
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--log.format", flags.log_format, "Output format of log messages.")
      ->capture_default_str()
      ->check(CLI::IsMember({"logfmt", "json"}));
  app.add_flag("--config.check", flags.config_check,
               "Check --config.file and --web.config.file (with the files they name) and exit: "
               "0 when both load, else 1 with every error located.");
  app.add_option("--replay", flags.replay_files,
                 "Run pcap/pcapng files through the flow pipeline, print the metrics and exit.")
      ->type_name("FILE...");

  // Flags are added before parsing, so the table must be read here; a value of the map is set
  // only when the user gave the flag, leaving the row's default otherwise.
  std::vector<std::pair<std::string, std::optional<bool>>> collector_flags;
  for (const auto& entry : CollectorTable()) collector_flags.emplace_back(entry.name, std::nullopt);
  size_t i = 0;
  for (const auto& entry : CollectorTable()) {
    auto& slot = collector_flags[i++].second;
    const std::string name(entry.name);
    app.add_flag_function(
        "--collector." + name + ",!--no-collector." + name,
        [&slot](std::int64_t count) { slot = count > 0; },
        std::string(entry.help) +
            (entry.enabled_by_default ? " [default: enabled]" : " [default: disabled]"));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!listen.empty()) o.listen_addresses = listen;
  flags.push.interval =
      std::chrono::duration_cast<std::chrono::milliseconds>(*ParseDuration(push_interval));
  if (!flags.push.url.empty() && flags.push.token_file.empty()) {
    std::cerr << "--push.url needs --push.token-file\n";
    return 2;
  }
  for (const auto& [name, value] : collector_flags) {
    if (value) o.collector_enabled[name] = *value;
  }
  return std::nullopt;
}

}  // namespace meshflow
