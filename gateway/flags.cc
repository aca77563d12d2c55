#include "gateway/flags.h"

#include <CLI/CLI.hpp>

namespace meshflow::gateway {

std::optional<int> ParseGatewayFlags(int argc, const char* const* argv, GatewayFlags& flags) {
  CLI::App app{
      "meshflow-gateway: one Prometheus target per node for every node of a cluster, scraped "
      "through the gateway or pushing to it, with an honest up and a TTL on pushes.",
      "meshflow-gateway"};
  AddDaemonFlags(app,
                 {"meshflow-gateway",
                  "Address to listen on for the web interface, /targets, /proxy, /push and "
                  "/federate; repeatable. [default: :9475]",
                  "Path under which to expose the gateway's own metrics.",
                  "Gateway configuration file (YAML).",
                  "Web config file (TLS and basic auth, exporter-toolkit format), re-read when it "
                  "changes. Pushes authenticate with their node's token instead."},
                 flags.daemon);
  auto& o = flags.gateway;
  app.add_option("--web.max-requests", o.http.threads,
                 "Requests served at once; each /proxy request holds one while its node answers.")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  if (auto exit_code = ParseCommandLine(app, argc, argv)) return exit_code;
  ApplyDaemonFlags(flags.daemon, o);
  return std::nullopt;
}

}  // namespace meshflow::gateway
