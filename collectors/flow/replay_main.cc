// meshflow-flow-replay: the flow pipeline over capture files, for tests and benchmarks until
// the daemon's --replay flag takes over the same function.
#include <CLI/CLI.hpp>
#include <iostream>

#include "collectors/flow/replay.h"
#include "exporter/core/config_reader.h"
#include "exporter/core/log.h"

int main(int argc, char** argv) {
  CLI::App app{"Runs pcap/pcapng files through the meshflow flow pipeline, prints the exposition"};
  std::string config_file;
  std::vector<std::string> files;
  app.add_option("--config.file", config_file, "meshflow config file (default: built-in)");
  app.add_option("files", files, "pcap or pcapng files, one interface each")->required();
  CLI11_PARSE(app, argc, argv);
  meshflow::SetUpLogging("warn", meshflow::LogFormat::kLogfmt);  // stdout is the exposition
  meshflow::Config config;
  try {
    config = config_file.empty() ? meshflow::DefaultConfig("replay")
                                 : meshflow::LoadConfigFile(config_file, "replay");
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return meshflow::flow::ReplayCaptures(config, files, std::cout, std::cerr);
}
