// meshflow-flow-replay: the flow pipeline over capture files without the daemon, for tests and
// benchmarks (meshflow-exporter --replay calls the same function).
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "collectors/flow/replay.h"
#include "common/core/config_reader.h"
#include "common/core/log.h"

int main(int argc, char** argv) {
  CLI::App app{"Runs pcap/pcapng files through the meshflow flow pipeline, prints the exposition"};
  std::string config_file;
  std::vector<std::string> files;
  bool stats = false;
  app.add_option("--config.file", config_file, "meshflow config file (default: built-in)");
  app.add_flag("--stats", stats, "print peak resident memory (max_rss_kib=N) on stderr at exit");
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
  const int rc = meshflow::flow::ReplayCaptures(config, files, std::cout, std::cerr);
  if (stats) {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    // The capture is memory-mapped: its pages count while touched, so this includes them.
    std::cerr << "max_rss_kib=" << usage.ru_maxrss << "\n";
  }
  return rc;
}
