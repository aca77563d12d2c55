// Replays every fixture capture (tests/fixtures/flow, made by generate.py) through the flow
// pipeline and compares everything it reports with what the generator says the packets are.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "collectors/flow/flow_pipeline.h"
#include "collectors/flow/replay.h"
#include "tests/unit/flow_test_util.h"

namespace meshflow::flow {
namespace {

using test_packets::Flatten;
using test_packets::FlowKey;

const std::string kDir = MESHFLOW_FLOW_FIXTURES;

class FlowFixture : public ::testing::TestWithParam<std::string> {};

std::vector<std::string> FixtureNames() {
  std::vector<std::string> names;
  for (const auto& entry : YAML::LoadFile(kDir + "/expected.json")) {
    names.push_back(entry.first.as<std::string>());
  }
  return names;
}

TEST_P(FlowFixture, PipelineReportsWhatTheGeneratorWrote) {
  const std::string file = GetParam();
  const YAML::Node want = YAML::LoadFile(kDir + "/expected.json")[file];
  const Config config = LoadConfigFile(kDir + "/config.yaml", "replay");
  FlowPipeline pipeline(config, [] { return std::vector<IpAddress>{}; });
  std::string error;
  ASSERT_TRUE(ReplayFile(kDir + "/" + file, pipeline, &error, "if0")) << error;
  std::vector<prometheus::MetricFamily> families;
  pipeline.CollectCaptureFamilies(families);
  pipeline.Collect(families);
  const auto got = Flatten(families);

  EXPECT_EQ(got.at("meshflow_capture_packets_total{iface=if0}"), want["packets"].as<double>());
  size_t series = 0;
  for (const auto& s : want["series"]) {
    const std::string key = s.first.as<std::string>();
    const auto bar1 = key.find('|'), bar2 = key.rfind('|');
    const std::string role = key.substr(0, bar1);
    const std::string src = key.substr(bar1 + 1, bar2 - bar1 - 1);
    const std::string dst = key.substr(bar2 + 1);
    const auto value = [&](const char* name) {
      const auto it = got.find(FlowKey(name, "if0", role, src, dst));
      return it == got.end() ? -1.0 : it->second;
    };
    EXPECT_EQ(value("meshflow_flow_bytes_total"), s.second[0].as<double>()) << key;
    EXPECT_EQ(value("meshflow_flow_packets_total"), s.second[1].as<double>()) << key;
    EXPECT_EQ(value("meshflow_flow_connections_total"), s.second[2].as<double>()) << key;
    ++series;
  }
  EXPECT_EQ(got.at("meshflow_flow_series{}"), static_cast<double>(series));

  for (int s = static_cast<int>(DecodeStatus::kTruncatedLinkHeader);
       s < static_cast<int>(DecodeStatus::kCount); ++s) {
    const std::string reason(DecodeStatusName(static_cast<DecodeStatus>(s)));
    const double expected =
        want["decode_errors"][reason] ? want["decode_errors"][reason].as<double>() : 0;
    EXPECT_EQ(got.at("meshflow_capture_decode_errors_total{iface=if0,reason=" + reason + "}"),
              expected)
        << reason;
  }
  const double not_ip = want["skipped"]["not_ip"] ? want["skipped"]["not_ip"].as<double>() : 0;
  EXPECT_EQ(got.at("meshflow_capture_skipped_packets_total{iface=if0,reason=not_ip}"), not_ip);
  const double vxlan =
      want["encap_overhead"]["vxlan"] ? want["encap_overhead"]["vxlan"].as<double>() : 0;
  EXPECT_EQ(got.at("meshflow_encap_overhead_bytes_total{iface=if0,encap=vxlan}"), vxlan);
  if (want["fragments_unmatched"]) {
    EXPECT_EQ(got.at("meshflow_flow_fragments_unmatched_total{}"),
              want["fragments_unmatched"].as<double>());
  }
}

TEST_P(FlowFixture, MappedReaderAndLibpcapAgree) {
  const std::string file = kDir + "/" + GetParam();
  const Config config = LoadConfigFile(kDir + "/config.yaml", "replay");
  std::map<std::string, double> results[2];
  const CaptureReader readers[2] = {CaptureReader::kAuto, CaptureReader::kLibpcap};
  for (int i = 0; i < 2; ++i) {
    FlowPipeline pipeline(config, [] { return std::vector<IpAddress>{}; });
    std::string error;
    ASSERT_TRUE(ReplayFile(file, pipeline, &error, "if0", readers[i])) << error;
    std::vector<prometheus::MetricFamily> families;
    pipeline.CollectCaptureFamilies(families);
    pipeline.Collect(families);
    results[i] = Flatten(families);
  }
  EXPECT_EQ(results[0], results[1]);
}

INSTANTIATE_TEST_SUITE_P(Captures, FlowFixture, ::testing::ValuesIn(FixtureNames()),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           for (auto& c : name) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

TEST(FlowReplay, WritesTheExpositionAndReturnsZero) {
  const Config config = LoadConfigFile(kDir + "/config.yaml", "replay");
  std::ostringstream out, err;
  ASSERT_EQ(
      ReplayCaptures(config, {kDir + "/tailscale0.pcap", kDir + "/ethernet_ng.pcapng"}, out, err),
      0)
      << err.str();
  const std::string text = out.str();
  EXPECT_NE(text.find("# TYPE meshflow_flow_bytes_total counter"), std::string::npos);
  EXPECT_NE(text.find("meshflow_flow_bytes_total{iface=\"tailscale0\",role=\"k8s-api\","
                      "src_node=\"acer-agent\",dst_node=\"ct-serv-jp\"} 637"),
            std::string::npos);
  EXPECT_NE(text.find("meshflow_capture_interface_info{iface=\"tailscale0\",kind=\"overlay\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("meshflow_capture_packets_total{iface=\"ethernet_ng\"} 14"),
            std::string::npos);
  EXPECT_TRUE(err.str().empty());
}

// The whole exposition text of a few captures, byte for byte: names, HELP and TYPE lines, label
// order and values. Passive TCP is off so its own families do not churn this file.
// MESHFLOW_UPDATE_GOLDEN=1 rewrites it; review the diff before committing it.
TEST(FlowReplay, ExpositionMatchesTheGoldenFile) {
  Config config = LoadConfigFile(kDir + "/config.yaml", "replay");
  config.flows.tcp.enabled = false;
  std::ostringstream out, err;
  ASSERT_EQ(ReplayCaptures(config,
                           {kDir + "/ethernet.pcap", kDir + "/vxlan.pcap", kDir + "/fragments.pcap",
                            kDir + "/malformed.pcap"},
                           out, err),
            0)
      << err.str();
  const std::string golden_path = kDir + "/golden.prom";
  if (std::getenv("MESHFLOW_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(golden_path, std::ios::binary) << out.str();
  }
  std::ifstream in(golden_path, std::ios::binary);
  const std::string golden((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(out.str(), golden);
}

TEST(FlowReplay, UnreadableOrNonCaptureFilesFailNamingTheFile) {
  const Config config = DefaultConfig("replay");
  for (const std::string& bad : {kDir + "/config.yaml", kDir + "/no-such-file.pcap"}) {
    std::ostringstream out, err;
    EXPECT_EQ(ReplayCaptures(config, {kDir + "/ethernet.pcap", bad}, out, err), 1);
    EXPECT_NE(err.str().find(bad), std::string::npos) << err.str();
    EXPECT_TRUE(out.str().empty());
  }
  std::ostringstream out, err;
  EXPECT_EQ(ReplayCaptures(config, {}, out, err), 1);
}

// A capture cut mid-record (tcpdump killed while writing) is an error naming the file, from
// either reader.
TEST(FlowReplay, TruncatedCaptureIsAnError) {
  std::ifstream in(kDir + "/ethernet.pcap", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string cut = ::testing::TempDir() + "/cut.pcap";
  for (size_t keep : {bytes.size() - 5, size_t{24 + 16 + 10}, size_t{24 + 7}}) {
    std::ofstream(cut, std::ios::binary) << bytes.substr(0, keep);
    for (auto reader : {CaptureReader::kAuto, CaptureReader::kLibpcap}) {
      const Config config = DefaultConfig("replay");
      FlowPipeline pipeline(config, [] { return std::vector<IpAddress>{}; });
      std::string error;
      EXPECT_FALSE(ReplayFile(cut, pipeline, &error, "", reader)) << keep;
      EXPECT_NE(error.find(cut), std::string::npos) << error;
    }
  }
}

TEST(FlowReplay, ByteSwappedMicrosecondPcapIsRead) {
  // A big-endian microsecond pcap (as written on a big-endian host): one raw IPv4 TCP packet.
  std::string file = ::testing::TempDir() + "/be.pcap";
  const unsigned char header[] = {0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0,    4,    0, 0, 0, 0,
                                  0,    0,    0,    0,    0, 0, 0xff, 0xff, 0, 0, 0, 101};
  const unsigned char record[] = {0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 40, 0, 0, 0, 40};
  const unsigned char packet[] = {
      0x45, 0,    0,    40,   0, 1, 0, 0, 64, 6, 0, 0, 100,  64,   0,    2,    100, 64, 0, 1,
      0x9c, 0x40, 0x19, 0x2b, 0, 0, 0, 1, 0,  0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0,   0,  0, 0};
  {
    std::ofstream out(file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(header), sizeof header);
    out.write(reinterpret_cast<const char*>(record), sizeof record);
    out.write(reinterpret_cast<const char*>(packet), sizeof packet);
  }
  const Config config = LoadConfigFile(kDir + "/config.yaml", "replay");
  std::map<std::string, double> results[2];
  int i = 0;
  for (auto reader : {CaptureReader::kAuto, CaptureReader::kLibpcap}) {
    FlowPipeline pipeline(config, [] { return std::vector<IpAddress>{}; });
    std::string error;
    ASSERT_TRUE(ReplayFile(file, pipeline, &error, "if0", reader)) << error;
    std::vector<prometheus::MetricFamily> families;
    pipeline.Collect(families);
    results[i++] = Flatten(families);
  }
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0].at(FlowKey("meshflow_flow_connections_total", "if0", "k8s-api", "acer-agent",
                                  "ct-serv-jp")),
            1);
}

}  // namespace
}  // namespace meshflow::flow
