#include "exporter/flags.h"

#include <gtest/gtest.h>

#include "exporter/collector_table.h"

namespace meshflow {
namespace {

std::optional<int> Parse(std::vector<const char*> args, ExporterFlags& flags) {
  args.insert(args.begin(), "meshflow-exporter");
  return ParseExporterFlags(static_cast<int>(args.size()), args.data(), flags);
}

TEST(Flags, Defaults) {
  ExporterFlags f;
  EXPECT_FALSE(Parse({}, f));
  EXPECT_EQ(f.exporter.listen_addresses, std::vector<std::string>{":9474"});
  EXPECT_EQ(f.exporter.telemetry_path, "/metrics");
  EXPECT_EQ(f.daemon.log_level, "info");
  EXPECT_EQ(f.daemon.log_format, "logfmt");
  EXPECT_FALSE(f.daemon.enable_lifecycle);
  EXPECT_TRUE(f.exporter.collector_enabled.empty());
}

TEST(Flags, RepeatableListenAddressAndOthers) {
  ExporterFlags f;
  EXPECT_FALSE(Parse(
      {"--web.listen-address", "127.0.0.1:1", "--web.listen-address=:2", "--web.telemetry-path",
       "/m", "--config.file", "c.yml", "--log.level", "debug", "--log.format", "json"},
      f));
  EXPECT_EQ(f.exporter.listen_addresses, (std::vector<std::string>{"127.0.0.1:1", ":2"}));
  EXPECT_EQ(f.exporter.telemetry_path, "/m");
  EXPECT_EQ(f.exporter.config_file, "c.yml");
  EXPECT_EQ(f.daemon.log_format, "json");
}

TEST(Flags, LifecycleEndpointsOnlyWhenAskedFor) {
  ExporterFlags f;
  EXPECT_FALSE(Parse({"--web.enable-lifecycle"}, f));
  EXPECT_TRUE(f.daemon.enable_lifecycle);
}

TEST(Flags, PushOverTls) {
  ExporterFlags f;
  EXPECT_FALSE(Parse({"--push.url", "https://gw.example:9475/push", "--push.token-file", "t",
                      "--push.interval", "2s", "--push.tls-ca-file", "ca.crt",
                      "--push.tls-cert-file", "node.crt", "--push.tls-key-file", "node.key"},
                     f));
  EXPECT_EQ(f.push.url, "https://gw.example:9475/push");
  EXPECT_EQ(f.push.interval, std::chrono::seconds(2));
  EXPECT_EQ(f.push.tls.ca_file, "ca.crt");
  EXPECT_EQ(f.push.tls.cert_file, "node.crt");
  EXPECT_EQ(f.push.tls.key_file, "node.key");
}

TEST(Flags, BadValuesStopWithAnError) {
  ExporterFlags f;
  EXPECT_NE(Parse({"--log.format", "xml"}, f).value_or(0), 0);
  EXPECT_NE(Parse({"--web.telemetry-path", "metrics"}, f).value_or(0), 0);
  EXPECT_NE(Parse({"--no-such-flag"}, f).value_or(0), 0);
}

TEST(Flags, EveryCollectorHasAnOnAndOffFlag) {
  for (const auto& entry : CollectorTable()) {
    const std::string on = "--collector." + std::string(entry.name);
    const std::string off = "--no-collector." + std::string(entry.name);
    ExporterFlags a;
    EXPECT_FALSE(Parse({on.c_str()}, a));
    EXPECT_TRUE(a.exporter.collector_enabled.at(std::string(entry.name)));
    ExporterFlags b;
    EXPECT_FALSE(Parse({off.c_str()}, b));
    EXPECT_FALSE(b.exporter.collector_enabled.at(std::string(entry.name)));
  }
}

}  // namespace
}  // namespace meshflow
