#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/core/config_reader.h"
#include "common/http/http_client.h"
#include "gateway/targets.h"

namespace meshflow::gateway {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class FakeResolver final : public Resolver {
 public:
  std::vector<IpAddress> Resolve(const std::string& name) override {
    ++lookups;
    auto it = records.find(name);
    return it == records.end() ? std::vector<IpAddress>{} : it->second;
  }
  std::optional<std::string> ReverseLookup(const IpAddress& a) override {
    auto it = ptr.find(a.ToString());
    if (it == ptr.end()) return std::nullopt;
    return it->second;
  }
  std::map<std::string, std::vector<IpAddress>> records;
  std::map<std::string, std::string> ptr;
  int lookups = 0;
};

IpAddress Ip(const char* s) { return *IpAddress::Parse(s); }

GatewayConfig Config() {
  GatewayConfig c;
  c.static_targets = {{"ct-serv-jp", "http://100.64.0.1:9474/metrics"}};
  c.push_nodes = {{"laptop-agent", "", "token-token-token-token"}};
  c.dns_targets = {{"meshflow.monitoring.svc", 9474, "/metrics", std::chrono::seconds(30)}};
  return c;
}

TEST(NodeNameFor, PrefersPtrHostLabelElseAddress) {
  EXPECT_EQ(NodeNameFor(Ip("100.64.0.3"), "acer-agent.tail1234.ts.net"), "acer-agent");
  EXPECT_EQ(NodeNameFor(Ip("100.64.0.3"), std::nullopt), "100.64.0.3");
  EXPECT_EQ(NodeNameFor(Ip("100.64.0.3"), "bad_label!.example"), "100.64.0.3");
  EXPECT_EQ(NodeNameFor(Ip("fd7a::3"), std::nullopt), "fd7a--3");
  EXPECT_EQ(NodeNameFor(Ip("::1"), std::nullopt), "0--1");
}

TEST(TargetRegistry, StaticPushAndDiscoveredTargets) {
  FakeResolver resolver;
  resolver.records["meshflow.monitoring.svc"] = {Ip("100.64.0.3"), Ip("fd7a::4")};
  resolver.ptr["100.64.0.3"] = "acer-agent.tailnet.ts.net";
  FakeClock clock;
  TargetRegistry registry(resolver, clock);
  registry.Configure(Config());
  EXPECT_EQ(registry.Snapshot().size(), 2u);  // DNS not resolved before the first refresh
  registry.Refresh();
  const auto all = registry.Snapshot();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0], (Target{"acer-agent", TargetSource::kDns, "http://100.64.0.3:9474/metrics"}));
  EXPECT_EQ(all[1].node, "ct-serv-jp");
  EXPECT_EQ(all[2], (Target{"fd7a--4", TargetSource::kDns, "http://[fd7a::4]:9474/metrics"}));
  EXPECT_EQ(all[3], (Target{"laptop-agent", TargetSource::kPush, ""}));
  EXPECT_EQ(registry.Find("ct-serv-jp")->source, TargetSource::kStatic);
  EXPECT_FALSE(registry.Find("nobody"));
}

TEST(TargetRegistry, ReResolvesOnlyAfterTheIntervalAndKeepsAnswersOnFailure) {
  FakeResolver resolver;
  resolver.records["meshflow.monitoring.svc"] = {Ip("100.64.0.3")};
  FakeClock clock;
  TargetRegistry registry(resolver, clock);
  registry.Configure(Config());
  registry.Refresh();
  EXPECT_EQ(resolver.lookups, 1);
  registry.Refresh();
  EXPECT_EQ(resolver.lookups, 1);  // not due yet
  clock.Advance(std::chrono::seconds(30));
  resolver.records["meshflow.monitoring.svc"] = {Ip("100.64.0.3"), Ip("100.64.0.5")};
  registry.Refresh();
  EXPECT_EQ(resolver.lookups, 2);
  EXPECT_TRUE(registry.Find("100.64.0.5"));
  // A laptop leaves: the next answer no longer has it.
  clock.Advance(std::chrono::seconds(30));
  resolver.records["meshflow.monitoring.svc"] = {Ip("100.64.0.3")};
  registry.Refresh();
  EXPECT_FALSE(registry.Find("100.64.0.5"));
  // The resolver fails: the previous answer is kept and the failure counted.
  clock.Advance(std::chrono::seconds(30));
  resolver.records.clear();
  registry.Refresh();
  EXPECT_TRUE(registry.Find("100.64.0.3"));
  EXPECT_EQ(registry.dns_failures(), 1u);
}

TEST(TargetRegistry, ConfiguredNamesWinOverDiscoveredAndDuplicatesGetAddresses) {
  FakeResolver resolver;
  resolver.records["meshflow.monitoring.svc"] = {Ip("100.64.0.1"), Ip("100.64.0.7"),
                                                 Ip("100.64.0.8")};
  resolver.ptr["100.64.0.1"] = "ct-serv-jp.tailnet";
  resolver.ptr["100.64.0.7"] = "same.tailnet";
  resolver.ptr["100.64.0.8"] = "same.tailnet";
  FakeClock clock;
  TargetRegistry registry(resolver, clock);
  registry.Configure(Config());
  registry.Refresh();
  EXPECT_EQ(registry.Find("ct-serv-jp")->source, TargetSource::kStatic);
  EXPECT_TRUE(registry.Find("same"));
  EXPECT_TRUE(registry.Find("100.64.0.8"));
}

std::string ErrorOf(const std::string& text, const std::string& file = "gw.yaml") {
  try {
    ParseGatewayConfig(text, file);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(GatewayConfig, ParsesEverySection) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("mfgw-config-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "laptop.token") << "0123456789abcdef0123\n";
  const auto c = ParseGatewayConfig(
      "advertise_address: gw.example:9475\n"
      "targets:\n"
      "  static:\n"
      "    - {node: ct-serv-jp, url: 'http://100.64.0.1:9474/metrics'}\n"
      "  dns:\n"
      "    - {name: meshflow.monitoring.svc.cluster.local, port: 9474, refresh_interval: 10s}\n"
      "  push:\n"
      "    - {node: laptop-agent, token_file: laptop.token}\n"
      "scrape: {max_timeout: 20s, concurrency: 8}\n"
      "push: {ttl: 30s, max_body_bytes: 65536}\n"
      "federate: {timeout: 4s}\n",
      (dir / "gw.yaml").string());
  std::filesystem::remove_all(dir);
  EXPECT_EQ(c.advertise_address, "gw.example:9475");
  ASSERT_EQ(c.static_targets.size(), 1u);
  EXPECT_EQ(c.dns_targets[0].refresh_interval, std::chrono::seconds(10));
  EXPECT_EQ(c.dns_targets[0].path, "/metrics");
  EXPECT_EQ(c.push_nodes[0].token, "0123456789abcdef0123");
  EXPECT_EQ(c.scrape.concurrency, 8);
  EXPECT_EQ(c.push.ttl, std::chrono::seconds(30));
  EXPECT_EQ(c.federate.timeout, std::chrono::seconds(4));
}

TEST(GatewayConfig, ErrorsNameFileLineAndField) {
  EXPECT_THAT(ErrorOf("targets:\n  statik: []\n"), HasSubstr("gw.yaml:2:3: field targets.statik"));
  EXPECT_THAT(ErrorOf("targets:\n  static:\n    - {node: a, url: 'ftp://x'}\n"),
              HasSubstr("gw.yaml:3:"));
  EXPECT_THAT(ErrorOf("targets:\n  static:\n    - {node: a, url: 'ftp://x'}\n"),
              HasSubstr("only http:// and https://"));
  EXPECT_THAT(ErrorOf("targets:\n  static:\n    - {node: 'bad name', url: 'http://x'}\n"),
              HasSubstr("field targets.static[0].node"));
  EXPECT_THAT(ErrorOf("targets:\n  static:\n    - {node: a, url: 'http://x'}\n"
                      "  push:\n    - {node: a, token_file: /nonexistent/t}\n"),
              HasSubstr("gw.yaml:5:"));
  EXPECT_THAT(ErrorOf("targets:\n  push:\n    - {node: a, token_file: /nonexistent/t}\n"),
              HasSubstr("readable token file"));
  EXPECT_THAT(ErrorOf("scrape: {concurrency: 0}\n"), HasSubstr("field scrape.concurrency"));
  EXPECT_THAT(ErrorOf("scrape: {default_timeout: 40s}\n"), HasSubstr("scrape.max_timeout"));
  EXPECT_THAT(ErrorOf("push: {ttl: 0s}\n"), HasSubstr("above zero"));
  EXPECT_THAT(ErrorOf("advertise_address: nope\n"), HasSubstr("host:port"));
  EXPECT_THAT(ErrorOf("targets:\n  dns:\n    - {name: 'a..b'}\n"), HasSubstr("DNS name"));
  EXPECT_THAT(ErrorOf("surprise: 1\n"), HasSubstr("field surprise"));
}

// One check names the error of every section and every list item, and still refuses the file.
TEST(GatewayConfig, EveryBrokenSectionAndItemIsReported) {
  const std::string e = ErrorOf(
      "surprise: 1\n"
      "targets:\n"
      "  static:\n"
      "    - {node: a, url: 'ftp://x'}\n"
      "    - {node: b, url: 'http://x'}\n"
      "    - {node: 'bad name', url: 'http://x'}\n"
      "push: {ttl: 0s}\n");
  EXPECT_THAT(e, HasSubstr("gw.yaml:1:1: field surprise"));
  EXPECT_THAT(e, HasSubstr("gw.yaml:4:"));
  EXPECT_THAT(e, HasSubstr("field targets.static[2].node"));
  EXPECT_THAT(e, HasSubstr("gw.yaml:7:"));
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 3) << e;
}

TEST(GatewayConfig, UpstreamTlsBasicAuthAndScheme) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("mfgw-upstream-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "password") << "s3cret\n";
  const auto c = ParseGatewayConfig(
      "targets:\n"
      "  static:\n"
      "    - {node: a, url: 'https://a.example/metrics'}\n"
      "  dns:\n"
      "    - {name: meshflow.svc, scheme: https}\n"
      "scrape:\n"
      "  tls_config: {insecure_skip_verify: true, server_name: meshflow.svc}\n"
      "  basic_auth: {username: prometheus, password_file: password}\n",
      (dir / "gw.yaml").string());
  EXPECT_TRUE(c.dns_targets.at(0).https);
  ASSERT_NE(c.scrape.tls, nullptr);
  EXPECT_TRUE(c.scrape.tls->config().insecure_skip_verify);
  EXPECT_EQ(c.scrape.tls->config().server_name, "meshflow.svc");
  EXPECT_EQ(c.scrape.authorization, "Basic cHJvbWV0aGV1czpzM2NyZXQ=");  // prometheus:s3cret

  const std::string gw = (dir / "gw.yaml").string();
  auto error = [&](const std::string& text) { return ErrorOf(text, gw); };
  EXPECT_THAT(error("scrape:\n  tls_config: {cert_file: c.crt}\n"),
              HasSubstr("gw.yaml:2:27: field scrape.tls_config.cert_file"));
  EXPECT_THAT(
      error("scrape:\n  tls_config:\n    ca_file: missing.crt\n"),
      AllOf(HasSubstr("gw.yaml:3:14: field scrape.tls_config.ca_file"), HasSubstr("missing.crt")));
  EXPECT_THAT(error("scrape:\n  basic_auth: {username: prometheus}\n"), HasSubstr("password_file"));
  EXPECT_THAT(error("scrape:\n  basic_auth: {username: p, password_file: nope}\n"),
              HasSubstr("readable password file"));
  EXPECT_THAT(error("targets:\n  dns:\n    - {name: a.svc, scheme: ftp}\n"),
              HasSubstr("http or https"));
  std::filesystem::remove_all(dir);
}

TEST(HttpUrl, HttpsDefaultsToPort443AndRoundTrips) {
  const auto url = http::HttpUrl::Parse("https://node.example/metrics?x=1", nullptr);
  ASSERT_TRUE(url);
  EXPECT_TRUE(url->https);
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->HostHeader(), "node.example");
  EXPECT_EQ(url->ToString(), "https://node.example/metrics?x=1");
  const auto other = http::HttpUrl::Parse("https://[fd7a::1]:9474/metrics", nullptr);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->ToString(), "https://[fd7a::1]:9474/metrics");
  EXPECT_EQ(http::HttpUrl::Parse("http://node.example:443/", nullptr)->HostHeader(),
            "node.example:443");
}

TEST(TargetRegistry, DiscoveredTargetsUseTheirScheme) {
  FakeResolver resolver;
  resolver.records["meshflow.svc"] = {Ip("100.64.0.3")};
  FakeClock clock;
  TargetRegistry registry(resolver, clock);
  GatewayConfig c;
  c.dns_targets = {{"meshflow.svc", 9474, "/metrics", std::chrono::seconds(30), true}};
  registry.Configure(c);
  registry.Refresh();
  ASSERT_EQ(registry.Snapshot().size(), 1u);
  EXPECT_EQ(registry.Snapshot()[0].url, "https://100.64.0.3:9474/metrics");
}

TEST(GatewayConfig, ShortTokensAreRefused) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("mfgw-short-" + std::to_string(::getpid()) + ".token");
  std::ofstream(path) << "short\n";
  EXPECT_THAT(ErrorOf("targets:\n  push:\n    - {node: a, token_file: " + path.string() + "}\n"),
              HasSubstr("at least 16"));
  std::filesystem::remove(path);
}

TEST(GatewayConfig, EmptyFileIsTheDefault) {
  const auto c = ParseGatewayConfig("", "gw.yaml");
  EXPECT_TRUE(c.static_targets.empty());
  EXPECT_EQ(c.scrape.max_timeout, std::chrono::seconds(30));
}

}  // namespace
}  // namespace meshflow::gateway
