#include "common/config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "common/core/config_reader.h"

namespace meshflow {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ErrorOf(const std::string& text) {
  try {
    ParseConfig(text, "meshflow.yml", "testnode");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Config, EmptyFileIsTheDefault) {
  const Config c = ParseConfig("", "meshflow.yml", "acer-agent");
  EXPECT_EQ(c.node_name, "acer-agent");
  EXPECT_TRUE(c.nodes.empty());
  EXPECT_EQ(c.roles.size(), BuiltinRoles().size());
  EXPECT_EQ(c.flows.max_series, 2000);
  EXPECT_EQ(c.flows.capture.snaplen, 128);
  EXPECT_EQ(c.probes.interval, std::chrono::seconds(1));
  EXPECT_EQ(c.probes.timeout, std::chrono::seconds(3));
}

TEST(Config, BuiltinRolesCoverTheReferenceCluster) {
  std::map<std::string, uint16_t> want = {{"k8s-api", 6443},
                                          {"etcd-client", 2379},
                                          {"etcd-peer", 2380},
                                          {"kubelet", 10250},
                                          {"flannel-vxlan", 8472},
                                          {"redis", 6379},
                                          {"postgresql", 5432},
                                          {"cli-relay", 8000},
                                          {"http", 80},
                                          {"https", 443},
                                          {"dns", 53},
                                          {"wireguard", 51820},
                                          {"tailscale", 41641},
                                          {"prometheus", 9090},
                                          {"node-exporter", 9100},
                                          {"minio", 9000},
                                          {"meshflow", 9474}};
  for (const auto& wanted : want) {
    // A plain name, not a structured binding: clang 14 cannot capture those in a lambda.
    const std::string& name = wanted.first;
    const uint16_t port = wanted.second;
    auto it = std::find_if(BuiltinRoles().begin(), BuiltinRoles().end(),
                           [&](const RoleSpec& r) { return r.name == name; });
    ASSERT_NE(it, BuiltinRoles().end()) << name;
    EXPECT_EQ(it->ports.at(0).first, port) << name;
  }
}

TEST(Config, FullExample) {
  const Config c = ParseConfig(R"(
node_name: acer-agent
nodes:
  - name: ct-serv-jp
    addresses: [100.64.0.1/32, "fd7a:115c:a1e0::1/128"]
  - name: acer-agent
    addresses: [100.64.0.3]
roles:
  - {name: analytics-api, proto: tcp, ports: [8080, "30000-30100"]}
flows:
  max_series: 500
  capture:
    interfaces: {include: ["^ts0$"], exclude: []}
    kinds: [{match: "^ts0$", kind: overlay}]
    snaplen: 256
    buffer_timeout: 50ms
  tcp: {enabled: false, max_connections: 1000}
probes:
  interval: 500ms
  timeout: 2s
  methods: [udp, tcp]
  peers:
    - {name: gce-agent-tw, address: 100.64.0.2, methods: [icmp], tcp_port: 80}
  reflector: {port: 19474, listen_address: "::"}
)",
                               "meshflow.yml", "ignored");
  EXPECT_EQ(c.node_name, "acer-agent");
  ASSERT_EQ(c.nodes.size(), 2u);
  EXPECT_EQ(c.nodes[0].addresses[1].ToString(), "fd7a:115c:a1e0::1/128");
  EXPECT_EQ(c.roles.front().name, "analytics-api");
  EXPECT_EQ(c.roles.front().ports[1].last, 30100);
  EXPECT_EQ(c.roles.size(), BuiltinRoles().size() + 1);
  EXPECT_EQ(c.flows.max_series, 500);
  EXPECT_EQ(c.flows.capture.include, std::vector<std::string>{"^ts0$"});
  EXPECT_TRUE(c.flows.capture.exclude.empty());
  EXPECT_EQ(c.flows.capture.kinds.front().kind, "overlay");
  EXPECT_EQ(c.flows.capture.snaplen, 256);
  EXPECT_FALSE(c.flows.tcp.enabled);
  EXPECT_EQ(c.probes.methods, (std::vector<std::string>{"udp", "tcp"}));
  EXPECT_EQ(c.probes.peers.at(0).tcp_port, 80);
  EXPECT_EQ(c.probes.reflector.port, 19474);
}

TEST(Config, BuiltinRolesCanBeTurnedOff) {
  const Config c = ParseConfig("builtin_roles: false\nroles: [{name: x, ports: [1]}]\n", "f", "n");
  ASSERT_EQ(c.roles.size(), 1u);
}

struct BadCase {
  const char* yaml;
  const char* where;
  const char* what;
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.yaml; }

class ConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigErrors, NameFileLineFieldAndExpectation) {
  const auto msg = ErrorOf(GetParam().yaml);
  EXPECT_THAT(msg, HasSubstr(GetParam().where));
  EXPECT_THAT(msg, HasSubstr(GetParam().what));
}

INSTANTIATE_TEST_SUITE_P(
    EveryField, ConfigErrors,
    ::testing::Values(
        BadCase{"node_nmae: x\n", "meshflow.yml:1:1: field node_nmae", "known keys"},
        BadCase{"node_name: \"bad name\"\n", "meshflow.yml:1:", "field node_name"},
        BadCase{"nodes: {a: 1}\n", "meshflow.yml:1:", "field nodes: expected a list"},
        BadCase{"nodes:\n  - name: a\n", "meshflow.yml:2:", "field nodes[0].addresses"},
        BadCase{"nodes:\n  - name: a\n    addresses: [10.0.0.1/8]\n",
                "meshflow.yml:3:", "host bits"},
        BadCase{"nodes:\n  - {name: a, addresses: [1.2.3.4]}\n  - {name: a, addresses: []}\n",
                "meshflow.yml:3:", "not used before"},
        BadCase{"nodes:\n  - {name: external, addresses: []}\n", "meshflow.yml:2:", "reserved"},
        BadCase{"nodes:\n  - {name: a, adresses: []}\n",
                "meshflow.yml:2:", "field nodes[0].adresses"},
        BadCase{"roles:\n  - {name: r, ports: [0]}\n",
                "meshflow.yml:2:", "field roles[0].ports[0]"},
        BadCase{"roles:\n  - {name: r, ports: [\"9-3\"]}\n", "meshflow.yml:2:", "port range"},
        BadCase{"roles:\n  - {name: r, proto: sctp, ports: [1]}\n",
                "meshflow.yml:2:", "one of tcp, udp, any"},
        BadCase{"roles:\n  - {name: r, ports: []}\n", "meshflow.yml:2:", "at least one port"},
        BadCase{"flows:\n  max_series: 5\n", "meshflow.yml:2:", "field flows.max_series"},
        BadCase{"flows:\n  capture:\n    snaplen: 20\n",
                "meshflow.yml:3:", "field flows.capture.snaplen"},
        BadCase{"flows:\n  capture:\n    interfaces: {include: [\"(\"]}\n",
                "meshflow.yml:3:", "RE2"},
        BadCase{"flows:\n  capture:\n    buffer_timeout: 0s\n", "meshflow.yml:3:", "from 1ms"},
        BadCase{"flows:\n  capture:\n    kinds: [{match: x, kind: vpn}]\n",
                "meshflow.yml:3:", "overlay, underlay, pod"},
        BadCase{"flows:\n  tcp: {enabled: yes}\n", "meshflow.yml:2:", "true or false"},
        BadCase{"probes:\n  interval: fast\n", "meshflow.yml:2:", "a duration"},
        BadCase{"probes:\n  methods: [icmp, http]\n", "meshflow.yml:2:", "icmp, udp, tcp"},
        BadCase{"probes:\n  peers:\n    - {name: p}\n",
                "meshflow.yml:3:", "field probes.peers[0].address"},
        BadCase{"probes:\n  reflector: {listen_address: nowhere}\n",
                "meshflow.yml:2:", "IPv4 or IPv6"},
        BadCase{"probes: [1]\n", "meshflow.yml:1:", "field probes: expected a mapping"},
        BadCase{"a: [\n", "meshflow.yml:2:", "invalid YAML"}));

// A check names the error of every section and of every list item, not only the first, and the
// file is still refused as a whole.
TEST(Config, EveryBrokenSectionAndItemIsReported) {
  const std::string yaml =
      "node_nmae: x\n"
      "nodes:\n"
      "  - {name: a, addresses: [10.0.0.1/8]}\n"
      "  - {name: b, addresses: [10.0.0.2/32]}\n"
      "  - {name: c}\n"
      "roles:\n"
      "  - {name: r, ports: [0]}\n"
      "probes:\n"
      "  interval: fast\n";
  const auto msg = ErrorOf(yaml);
  EXPECT_THAT(msg, HasSubstr("meshflow.yml:1:1: field node_nmae"));
  EXPECT_THAT(msg, HasSubstr("meshflow.yml:3:"));
  EXPECT_THAT(msg, HasSubstr("host bits"));
  EXPECT_THAT(msg, HasSubstr("field nodes[2].addresses"));
  EXPECT_THAT(msg, HasSubstr("field roles[0].ports[0]"));
  EXPECT_THAT(msg, HasSubstr("meshflow.yml:9:"));
  EXPECT_THAT(msg, Not(HasSubstr("nodes[1]")));
  EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 4) << msg;
}

TEST(Config, UnreadableFileIsNamed) {
  try {
    LoadConfigFile("/nonexistent/meshflow.yml", "n");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/meshflow.yml: cannot read"));
  }
}

}  // namespace
}  // namespace meshflow
