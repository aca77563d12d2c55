// Discovery without the outside world: every parser on recorded or reconstructed answers, the
// hello codec, naming and merging, and the runner on fake sources.
#include "common/discovery/discovery.h"

#include <gtest/gtest.h>
#include <linux/capability.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

#include "common/config/config.h"
#include "common/core/config_reader.h"
#include "common/discovery/dns.h"
#include "common/discovery/hello.h"
#include "common/discovery/kubernetes.h"
#include "common/discovery/merge.h"
#include "common/discovery/tailscale.h"
#include "common/discovery/wireguard.h"

namespace meshflow::discovery {
namespace {

std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(MESHFLOW_DISCOVERY_FIXTURES) + "/" + name);
  EXPECT_TRUE(in) << name;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

IpPrefix P(const char* text) { return *IpPrefix::Parse(text); }
IpAddress A(const char* text) { return *IpAddress::Parse(text); }

// --- WireGuard UAPI -------------------------------------------------------------------------

TEST(WireGuardUapi, ParsesPeersAndAllowedIps) {
  const UapiParse r = ParseUapiGet(Fixture("wireguard-uapi-get.txt"));
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.peers.size(), 3u);
  EXPECT_EQ(r.peers[0].endpoint, "203.0.113.10:51820");
  EXPECT_EQ(r.peers[0].allowed_ips, (std::vector<IpPrefix>{P("10.42.0.0/24"), P("10.77.0.1/32")}));
  EXPECT_EQ(r.peers[1].allowed_ips.size(), 3u);
  const auto nodes = NodesFromPeers(r.peers);
  // The third peer routes only a subnet: nothing to probe, so no node.
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].addresses, (std::vector<IpPrefix>{P("10.77.0.1/32"), P("10.42.0.0/24")}));
  EXPECT_EQ(nodes[1].addresses.front(), P("10.77.0.3/32"));
  EXPECT_TRUE(nodes[0].name.empty());
}

TEST(WireGuardUapi, RejectsMalformedAnswersWithTheLine) {
  const std::string key(64, 'a');
  struct Case {
    std::string text;
    std::string error;
  } cases[] = {
      {"public_key=" + key + "\nallowed_ip=10.0.0.300/32\nerrno=0\n\n", "line 2: allowed_ip"},
      {"public_key=" + key + "\nerrno=0\n", "without the closing blank line"},
      {"public_key=" + key + "\n\n", "without errno="},
      {"public_key=XYZ\nerrno=0\n\n", "line 1: public_key"},
      {"allowed_ip=10.0.0.1/32\nerrno=0\n\n", "line 1: allowed_ip before any public_key"},
      {"errno=2\n\n", "errno=2"},
      {"garbage\nerrno=0\n\n", "line 1: not a key=value"},
      {"errno=0\n\nextra\n", "after the blank line"},
      {"public_key=" + key, "cut off"},
  };
  for (const auto& c : cases) {
    const UapiParse r = ParseUapiGet(c.text);
    EXPECT_FALSE(r.ok) << c.text;
    EXPECT_NE(r.error.find(c.error), std::string::npos) << r.error;
    EXPECT_TRUE(r.peers.empty());
  }
}

TEST(WireGuardUapi, EmptyDeviceIsNoPeers) {
  const UapiParse r = ParseUapiGet("private_key=" + std::string(64, '0') + "\nerrno=0\n\n");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.peers.empty());
}

TEST(WireGuardSource, MissingSocketIsAnErrorNotACrash) {
  WireGuardSource s("/nonexistent-meshflow-dir", {});
  const PollResult r = s.Poll();
  EXPECT_FALSE(r.nodes);
  EXPECT_NE(r.error.find("/nonexistent-meshflow-dir"), std::string::npos);
  WireGuardSource named("/nonexistent-meshflow-dir", {"wg0"});
  EXPECT_NE(named.Poll().error.find("wg0.sock"), std::string::npos);
}

// The exporter keeps CAP_NET_ADMIN after start only for this source (kernel devices over netlink).
TEST(WireGuardSource, NeedsNetAdminOnlyWhileSwitchedOn) {
  DiscoveryConfig c;
  c.wireguard.enabled = true;
  EXPECT_TRUE(CapabilitiesWhileRunning(c).empty());  // discovery itself off
  c.enabled = true;
  EXPECT_EQ(CapabilitiesWhileRunning(c), std::vector<int>{CAP_NET_ADMIN});
  c.wireguard.enabled = false;
  c.tailscale.enabled = true;
  c.dns.enabled = true;
  c.kubernetes.enabled = true;
  EXPECT_TRUE(CapabilitiesWhileRunning(c).empty());
}

// --- Tailscale ------------------------------------------------------------------------------

TEST(Tailscale, ParsesSelfAndPeersFromStatus) {
  const TailscaleParse r = ParseTailscaleStatus(Fixture("tailscale-status.json"));
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.nodes.size(), 3u);
  std::map<std::string, DiscoveredNode> by_name;
  for (const auto& n : r.nodes) by_name[n.name] = n;
  ASSERT_TRUE(by_name.count("ct-serv-jp"));
  ASSERT_TRUE(by_name.count("acer-agent"));
  ASSERT_TRUE(by_name.count("laptop-7"));  // MagicDNS label, not "Laptop-7"
  EXPECT_EQ(by_name["acer-agent"].addresses.front(), P("100.101.102.3/32"));
  // IPv4 first even when the status lists IPv6 first.
  EXPECT_EQ(by_name["laptop-7"].addresses.front(), P("100.101.102.7/32"));
  EXPECT_EQ(by_name["laptop-7"].addresses.size(), 2u);
}

TEST(Tailscale, BadDataIsALocatedError) {
  EXPECT_NE(ParseTailscaleStatus("{\"Peer\": {\"k\": {\"HostName\": \"a\", \"TailscaleIPs\": "
                                 "[\"100.1.1.1\", \"bogus\"]}}}")
                .error.find("Peer[\"k\"].TailscaleIPs[1]: not an IP address"),
            std::string::npos);
  EXPECT_NE(ParseTailscaleStatus("{\"Peer\": [").error.find("not valid JSON"), std::string::npos);
  EXPECT_FALSE(ParseTailscaleStatus("[]").ok);
  EXPECT_FALSE(ParseTailscaleStatus("{\"Self\": {\"TailscaleIPs\": []}}").ok);  // no name
}

std::vector<std::string> NodeNames(const std::vector<DiscoveredNode>& nodes) {
  std::vector<std::string> out;
  for (const auto& n : nodes) out.push_back(n.name);
  std::sort(out.begin(), out.end());
  return out;
}

// tailscale-status-tagged.json: Self and acer-agent tagged tag:k8s and online, laptop-7 offline
// and untagged, a phone online and untagged, spot-vm-3 tagged but offline.
TEST(Tailscale, FilterKeepsOnlineAndTaggedPeers) {
  const std::string json = Fixture("tailscale-status-tagged.json");
  TailscaleParse r = ParseTailscaleStatus(json);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(NodeNames(r.nodes), (std::vector<std::string>{"acer-agent", "ct-serv-jp", "laptop-7",
                                                          "pixel-8", "spot-vm-3"}));
  EXPECT_EQ(r.filtered, 0u);
  r = ParseTailscaleStatus(json, TailscaleFilter{true, {}});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(NodeNames(r.nodes), (std::vector<std::string>{"acer-agent", "ct-serv-jp", "pixel-8"}));
  EXPECT_EQ(r.filtered, 2u);
  r = ParseTailscaleStatus(json, TailscaleFilter{false, {"tag:k8s"}});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(NodeNames(r.nodes),
            (std::vector<std::string>{"acer-agent", "ct-serv-jp", "spot-vm-3"}));
  r = ParseTailscaleStatus(json, TailscaleFilter{true, {"tag:other", "tag:k8s"}});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(NodeNames(r.nodes), (std::vector<std::string>{"acer-agent", "ct-serv-jp"}));
  EXPECT_EQ(r.filtered, 3u);
  // Self is this node: kept even untagged.
  r = ParseTailscaleStatus(Fixture("tailscale-status.json"), TailscaleFilter{true, {"tag:k8s"}});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(NodeNames(r.nodes), std::vector<std::string>{"ct-serv-jp"});
}

TEST(Tailscale, BadFilterFieldsAreLocatedErrorsEvenWithoutAFilter) {
  EXPECT_NE(ParseTailscaleStatus("{\"Peer\": {\"k\": {\"HostName\": \"a\", \"Online\": \"yes\"}}}")
                .error.find("Peer[\"k\"].Online: not true or false"),
            std::string::npos);
  EXPECT_NE(ParseTailscaleStatus("{\"Peer\": {\"k\": {\"HostName\": \"a\", \"Tags\": [1]}}}")
                .error.find("Peer[\"k\"].Tags[0]: not a string"),
            std::string::npos);
  // A failed answer counts nothing as filtered either (found by the fuzzer).
  const TailscaleParse failed = ParseTailscaleStatus(
      "{\"Peer\": {\"a\": {\"HostName\": \"a\", \"TailscaleIPs\": [\"100.1.1.1\"]}, "
      "\"b\": {\"HostName\": \"b\", \"TailscaleIPs\": [\"\"]}}}",
      TailscaleFilter{false, {"tag:k8s"}});
  EXPECT_FALSE(failed.ok);
  EXPECT_EQ(failed.filtered, 0u);
  // A bad peer the filter would leave out still fails the whole answer.
  EXPECT_FALSE(ParseTailscaleStatus("{\"Peer\": {\"k\": {\"HostName\": \"a\", \"Online\": false, "
                                    "\"TailscaleIPs\": [\"bogus\"]}}}",
                                    TailscaleFilter{true, {}})
                   .ok);
}

// --- Kubernetes -----------------------------------------------------------------------------

const std::vector<std::string> kRule{"k3s.io/internal-ip", "InternalIP"};

TEST(Kubernetes, ListTakesTheOverlayAddressByRule) {
  const KubeNodeList r = ParseNodeList(Fixture("k8s-nodelist.json"), kRule);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.resource_version, "1010");
  ASSERT_EQ(r.nodes.size(), 3u);
  EXPECT_EQ(r.nodes[0].name, "ct-serv-jp");
  EXPECT_EQ(r.nodes[0].addresses.front(), P("100.101.102.1/32"));
  // Its other addresses follow for attribution: InternalIP, ExternalIP, flannel public IP.
  EXPECT_NE(std::find(r.nodes[0].addresses.begin(), r.nodes[0].addresses.end(), P("10.0.0.4/32")),
            r.nodes[0].addresses.end());
  EXPECT_NE(
      std::find(r.nodes[0].addresses.begin(), r.nodes[0].addresses.end(), P("203.0.113.10/32")),
      r.nodes[0].addresses.end());
  // No k3s annotation: the rule falls back to InternalIP.
  EXPECT_EQ(r.nodes[2].name, "spot-vm-1");
  EXPECT_EQ(r.nodes[2].addresses.front(), P("10.0.0.7/32"));
}

TEST(Kubernetes, ExternalIpRuleAndSkippedNodes) {
  const KubeNodeList r = ParseNodeList(Fixture("k8s-nodelist.json"), {"ExternalIP"});
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.nodes.size(), 1u);
  EXPECT_EQ(r.nodes[0].addresses.front(), P("203.0.113.10/32"));
  EXPECT_EQ(r.skipped.size(), 2u);
}

TEST(Kubernetes, WatchEventsInOrder) {
  const KubeWatchParse r = ParseWatchEvents(Fixture("k8s-watch-events.jsonl"), kRule);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.events.size(), 4u);
  using T = KubeWatchEvent::Type;
  EXPECT_EQ(r.events[0].type, T::kAdded);
  EXPECT_EQ(r.events[0].node.name, "laptop-7");
  EXPECT_EQ(r.events[0].node.addresses[0], P("100.101.102.7/32"));
  EXPECT_EQ(r.events[0].node.addresses[1], P("fd7a:115c:a1e0::7/128"));
  EXPECT_EQ(r.events[1].type, T::kModified);
  EXPECT_EQ(r.events[1].node.addresses.front(), P("100.101.102.33/32"));
  EXPECT_EQ(r.events[2].type, T::kDeleted);
  EXPECT_EQ(r.events[3].type, T::kBookmark);
  EXPECT_EQ(r.events[3].resource_version, "1030");
  const KubeWatchParse gone = ParseWatchEvents(Fixture("k8s-watch-gone.jsonl"), kRule);
  ASSERT_TRUE(gone.ok);
  EXPECT_EQ(gone.events[0].type, T::kError);
  EXPECT_EQ(gone.events[0].error_code, 410);
}

TEST(Kubernetes, BogusAddressFailsTheWholeList) {
  std::string text = Fixture("k8s-nodelist.json");
  const auto at = text.find("\"100.101.102.3\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 15, "\"100.101.999.3\"");
  const KubeNodeList r = ParseNodeList(text, kRule);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.nodes.empty());
  EXPECT_NE(r.error.find("items[1]: acer-agent: metadata.annotations[\"k3s.io/internal-ip\"]"),
            std::string::npos)
      << r.error;
  EXPECT_NE(ParseWatchEvents("{\"type\":\"ADDED\",\"object\":{}}\nnot json\n", kRule)
                .error.find("line 1"),
            std::string::npos);
  EXPECT_NE(ParseWatchEvents("{\"type\":\"SURPRISE\",\"object\":{}}\n", kRule)
                .error.find("unknown event type"),
            std::string::npos);
  EXPECT_FALSE(ParseNodeList("{\"kind\":\"PodList\",\"items\":[]}", kRule).ok);
}

// --- DNS ------------------------------------------------------------------------------------

TEST(Dns, ParsesAnswerSectionAndSkipsCnames) {
  // Response to "svc.example. A": a CNAME, then two A records, compressed names.
  const std::vector<uint8_t> m = {
      0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0,                         // header
      3, 's', 'v', 'c', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1,  // question
      0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 30, 0, 2, 0xc0, 0x10,                  // CNAME ->
                                                                              // example.
      0xc0, 0x10, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 77, 0,
      1,  // A 10.77.0.1
      0xc0, 0x10, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 77, 0,
      3,  // A 10.77.0.3
  };
  const DnsAnswer r = ParseDnsResponse(m, 1);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.addresses, (std::vector<IpAddress>{A("10.77.0.1"), A("10.77.0.3")}));
  std::vector<uint8_t> bad = m;
  bad[bad.size() - 5] = 3;  // rdlength 3 for an A record, and the message now ends early
  EXPECT_FALSE(ParseDnsResponse(bad, 1).ok);
  EXPECT_FALSE(ParseDnsResponse(std::vector<uint8_t>(m.begin(), m.begin() + 20), 1).ok);
}

// --- Hello ----------------------------------------------------------------------------------

TEST(Hello, RequestAndReplyRoundTrip) {
  const auto request = EncodeHelloRequest(0x0102030405060708ull);
  HelloError error{};
  ASSERT_EQ(DecodeHelloRequest(request, &error), 0x0102030405060708ull);
  const auto reply = AnswerHello(request, "acer-agent",
                                 {P("100.101.102.3/32"), P("fd7a:115c:a1e0::3/128")}, &error);
  ASSERT_TRUE(reply);
  EXPECT_LE(reply->size(), request.size());  // never an amplifier
  const auto id = DecodeHelloReply(*reply, &error);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->nonce, 0x0102030405060708ull);
  EXPECT_EQ(id->name, "acer-agent");
  EXPECT_EQ(id->addresses.size(), 2u);
  // The largest reply still fits in a request.
  HelloIdentity big{1, std::string(63, 'n'),
                    std::vector<IpPrefix>(kHelloMaxAddresses, P("fd00::/8"))};
  EXPECT_LE(EncodeHelloReply(big)->size(), kHelloRequestSize);
}

TEST(Hello, RejectsMalformedWithAReason) {
  auto request = EncodeHelloRequest(7);
  HelloError error{};
  auto expect = [&](std::span<const uint8_t> b, HelloError want) {
    EXPECT_FALSE(DecodeHelloRequest(b, &error));
    EXPECT_EQ(error, want) << HelloErrorName(error);
  };
  expect(std::span(request.data(), 100), HelloError::kTooShort);
  auto padded = request;
  padded[300] = 1;
  expect(padded, HelloError::kPaddingNotZero);
  auto v2 = request;
  v2[4] = 2;
  expect(v2, HelloError::kBadVersion);
  auto probe = request;
  probe[2] = 'P';
  expect(probe, HelloError::kNotHello);
  const auto reply = *EncodeHelloReply({7, "a", {P("10.0.0.1/32")}});
  auto trailing = reply;
  trailing.push_back(0);
  EXPECT_FALSE(DecodeHelloReply(trailing, &error));
  EXPECT_EQ(error, HelloError::kTrailingBytes);
  auto badname = reply;
  badname[17] = '-';
  EXPECT_FALSE(DecodeHelloReply(badname, &error));
  EXPECT_EQ(error, HelloError::kBadName);
  auto hostbits = reply;
  hostbits[hostbits.size() - 5] = 8;  // 10.0.0.1/8: host bits set
  EXPECT_FALSE(DecodeHelloReply(hostbits, &error));
  EXPECT_EQ(error, HelloError::kBadAddress);
  EXPECT_FALSE(EncodeHelloReply({7, "external", {}}));
  // ::ffff:0.0.0.3 as an IPv6 address would decode to the IPv4 0.0.0.3 and re-encode
  // differently (found by the fuzzer).
  std::vector<uint8_t> mapped(reply.begin(), reply.begin() + 18);  // header, name "a"
  const uint8_t v6[] = {1, 6, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 3};
  mapped.insert(mapped.end(), std::begin(v6), std::end(v6));
  EXPECT_FALSE(DecodeHelloReply(mapped, &error));
  EXPECT_EQ(error, HelloError::kBadAddress);
}

// --- Naming and merging ---------------------------------------------------------------------

TEST(Merge, NamesByIdentityElseAddress) {
  const std::vector<std::vector<DiscoveredNode>> sets = {
      {{"", {P("10.77.0.1/32"), P("10.42.0.0/24")}, "wireguard"},
       {"", {P("fd00::3/128")}, "wireguard"}},
  };
  MergeReport report;
  const auto nodes = NameAndMerge(sets, {{A("10.77.0.1"), "ct-serv-jp"}}, &report);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].name, "ct-serv-jp");
  EXPECT_EQ(nodes[0].addresses.size(), 2u);
  EXPECT_EQ(nodes[1].name, "fd00--3");
  EXPECT_EQ(AddressName(A("::1")), "0--1");
}

TEST(Merge, SameNameUnitesAddressesSameAddressFirstWins) {
  const std::vector<std::vector<DiscoveredNode>> sets = {
      {{"a", {P("100.64.0.1/32")}, "kubernetes"}, {"b", {P("100.64.0.2/32")}, "kubernetes"}},
      {{"a", {P("fd7a::1/128")}, "tailscale"}, {"c", {P("100.64.0.2/32")}, "tailscale"}},
  };
  MergeReport report;
  const auto nodes = NameAndMerge(sets, {}, &report);
  ASSERT_EQ(nodes.size(), 2u);  // c lost its only address to b
  EXPECT_EQ(nodes[0].addresses.size(), 2u);
  ASSERT_EQ(report.conflicts.size(), 1u);
  EXPECT_NE(report.conflicts[0].find("already claimed by node b"), std::string::npos);
}

TEST(Merge, InvalidNamesAreDroppedAndReported) {
  MergeReport report;
  const auto nodes = NameAndMerge({{{std::string(80, 'x'), {P("10.0.0.1/32")}, "kubernetes"},
                                    {"overflow", {P("10.0.0.2/32")}, "kubernetes"}}},
                                  {}, &report);
  EXPECT_TRUE(nodes.empty());
  EXPECT_EQ(report.conflicts.size(), 2u);
}

TEST(Merge, StaticEntriesWin) {
  const std::vector<NodeSpec> statics = {{"a", {P("10.0.0.1/32")}}};
  const std::vector<NodeSpec> found = {{"a", {P("10.9.9.9/32")}},
                                       {"b", {P("10.0.0.1/32"), P("10.0.0.2/32")}},
                                       {"c", {P("10.0.0.1/32")}}};
  MergeReport report;
  const auto merged = MergeWithStatic(statics, found, &report);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].addresses, (std::vector<IpPrefix>{P("10.0.0.1/32")}));
  EXPECT_EQ(merged[1].name, "b");
  EXPECT_EQ(merged[1].addresses, (std::vector<IpPrefix>{P("10.0.0.2/32")}));
  EXPECT_EQ(report.conflicts.size(), 2u);
}

// --- The runner -----------------------------------------------------------------------------

class ScriptedSource final : public Source {
 public:
  explicit ScriptedSource(std::vector<PollResult> script) : script_(std::move(script)) {}
  std::string_view name() const override { return "scripted"; }
  PollResult Poll() override {
    PollResult r = script_.at(std::min(next_, script_.size() - 1));
    ++next_;
    return r;
  }

 private:
  std::vector<PollResult> script_;
  size_t next_ = 0;
};

TEST(Runner, FailingSourceKeepsItsLastGoodSetAndCounts) {
  Config config = DefaultConfig("self");
  config.discovery.enabled = true;
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(std::make_unique<ScriptedSource>(std::vector<PollResult>{
      PollResult::Ok({{"n1", {P("10.1.0.1/32")}, "scripted"}}),
      PollResult::Fail("socket missing"),
      PollResult::Fail("socket missing"),
      PollResult::Ok(
          {{"n1", {P("10.1.0.1/32")}, "scripted"}, {"n2", {P("10.1.0.2/32")}, "scripted"}}),
  }));
  std::vector<std::vector<NodeSpec>> changes;
  Discovery d(
      config, [&](const std::vector<NodeSpec>& n) { changes.push_back(n); }, std::move(sources));
  d.PollAllOnce();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0][0].name, "n1");
  d.PollAllOnce();
  d.PollAllOnce();
  EXPECT_EQ(changes.size(), 1u);  // failures change nothing
  auto states = d.States();
  EXPECT_TRUE(states[0].failing);
  EXPECT_EQ(states[0].errors, 2u);
  EXPECT_EQ(states[0].last_good.size(), 1u);
  EXPECT_EQ(d.Current().size(), 1u);
  d.PollAllOnce();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[1].size(), 2u);
  states = d.States();
  EXPECT_FALSE(states[0].failing);
  EXPECT_EQ(states[0].polls, 4u);
  std::vector<prometheus::MetricFamily> families;
  d.Collect(families);
  bool saw_errors = false;
  for (const auto& f : families) {
    if (f.name != "meshflow_discovery_errors_total") continue;
    saw_errors = true;
    EXPECT_EQ(f.metric.at(0).counter.value, 2);
    EXPECT_EQ(f.metric.at(0).label.at(0).value, "scripted");
  }
  EXPECT_TRUE(saw_errors);
}

// A source whose answer the test sets between polls.
class SettableSource final : public Source {
 public:
  explicit SettableSource(std::shared_ptr<PollResult> next) : next_(std::move(next)) {}
  std::string_view name() const override { return "settable"; }
  PollResult Poll() override { return *next_; }

 private:
  std::shared_ptr<PollResult> next_;
};

double Sample(const Discovery& d, const std::string& name) {
  std::vector<prometheus::MetricFamily> families;
  d.Collect(families);
  for (const auto& f : families) {
    if (f.name != name) continue;
    return f.type == prometheus::MetricType::Counter ? f.metric.at(0).counter.value
                                                     : f.metric.at(0).gauge.value;
  }
  ADD_FAILURE() << "no " << name;
  return -1;
}

std::vector<std::string> Names(const std::vector<NodeSpec>& nodes) {
  std::vector<std::string> out;
  for (const auto& n : nodes) out.push_back(n.name);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Runner, NodeThatLeavesIsKeptForStaleAfterThenDropped) {
  Config config = DefaultConfig("self");
  config.discovery.enabled = true;
  config.discovery.stale_after = std::chrono::minutes(5);
  auto now = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  const auto t0 = now;
  auto next = std::make_shared<PollResult>(PollResult::Ok(
      {{"n1", {P("10.1.0.1/32")}, "settable"}, {"n2", {P("10.1.0.2/32")}, "settable"}}));
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(std::make_unique<SettableSource>(next));
  std::vector<std::vector<NodeSpec>> changes;
  Discovery d(
      config, [&](const std::vector<NodeSpec>& n) { changes.push_back(n); }, std::move(sources),
      [&] { return now; });
  d.PollAllOnce();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(Names(d.Current()), (std::vector<std::string>{"n1", "n2"}));

  // n2 leaves: still in the node table, counted as stale, no change handed on.
  *next = PollResult::Ok({{"n1", {P("10.1.0.1/32")}, "settable"}});
  now = t0 + std::chrono::seconds(30);
  d.PollAllOnce();
  EXPECT_EQ(Names(d.Current()), (std::vector<std::string>{"n1", "n2"}));
  EXPECT_EQ(changes.size(), 1u);
  EXPECT_EQ(Sample(d, "meshflow_discovery_stale_nodes"), 1);
  EXPECT_EQ(Sample(d, "meshflow_discovery_merged_nodes"), 2);

  // Just before stale_after since the first poll that found it gone (t0 + 30 s): kept.
  now = t0 + std::chrono::seconds(30) + std::chrono::minutes(5) - std::chrono::milliseconds(1);
  d.PollAllOnce();
  EXPECT_EQ(Names(d.Current()), (std::vector<std::string>{"n1", "n2"}));
  EXPECT_EQ(Sample(d, "meshflow_discovery_stale_expired_total"), 0);

  // At stale_after: dropped, counted, handed on.
  now = t0 + std::chrono::seconds(30) + std::chrono::minutes(5);
  d.PollAllOnce();
  EXPECT_EQ(Names(d.Current()), std::vector<std::string>{"n1"});
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(Names(changes[1]), std::vector<std::string>{"n1"});
  EXPECT_EQ(Sample(d, "meshflow_discovery_stale_nodes"), 0);
  EXPECT_EQ(Sample(d, "meshflow_discovery_stale_expired_total"), 1);

  // Back: listed again at once.
  *next = PollResult::Ok(
      {{"n1", {P("10.1.0.1/32")}, "settable"}, {"n2", {P("10.1.0.2/32")}, "settable"}});
  now += std::chrono::seconds(1);
  d.PollAllOnce();
  EXPECT_EQ(Names(d.Current()), (std::vector<std::string>{"n1", "n2"}));
}

TEST(Runner, StaleNodeComesBackOrIsReplacedAtOnce) {
  Config config = DefaultConfig("self");
  config.discovery.enabled = true;
  config.discovery.stale_after = std::chrono::minutes(5);
  auto now = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  auto next = std::make_shared<PollResult>(PollResult::Ok(
      {{"n1", {P("10.1.0.1/32")}, "settable"}, {"n2", {P("10.1.0.2/32")}, "settable"}}));
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(std::make_unique<SettableSource>(next));
  Discovery d(config, nullptr, std::move(sources), [&] { return now; });
  d.PollAllOnce();
  // n2 gone for a minute, then listed again: its grace starts over.
  *next = PollResult::Ok({{"n1", {P("10.1.0.1/32")}, "settable"}});
  now += std::chrono::minutes(1);
  d.PollAllOnce();
  *next = PollResult::Ok(
      {{"n1", {P("10.1.0.1/32")}, "settable"}, {"n2", {P("10.1.0.2/32")}, "settable"}});
  now += std::chrono::minutes(1);
  d.PollAllOnce();
  EXPECT_EQ(Sample(d, "meshflow_discovery_stale_nodes"), 0);
  *next = PollResult::Ok({{"n1", {P("10.1.0.1/32")}, "settable"}});
  now += std::chrono::minutes(4);
  d.PollAllOnce();
  EXPECT_EQ(Names(d.Current()), (std::vector<std::string>{"n1", "n2"}));  // gone for 0 s
  now += std::chrono::minutes(4);
  d.PollAllOnce();
  EXPECT_EQ(Names(d.Current()), (std::vector<std::string>{"n1", "n2"}));  // gone for 4 min
  // Another node at n2's address: the kept n2 gives way at once, not after its grace.
  *next = PollResult::Ok(
      {{"n1", {P("10.1.0.1/32")}, "settable"}, {"n3", {P("10.1.0.2/32")}, "settable"}});
  now += std::chrono::seconds(1);
  d.PollAllOnce();
  EXPECT_EQ(Names(d.Current()), (std::vector<std::string>{"n1", "n3"}));
  EXPECT_EQ(Sample(d, "meshflow_discovery_stale_nodes"), 0);
  EXPECT_EQ(Sample(d, "meshflow_discovery_stale_expired_total"), 0);
}

TEST(Runner, StaleAfterZeroDropsAtTheNextPoll) {
  Config config = DefaultConfig("self");
  config.discovery.enabled = true;
  config.discovery.stale_after = std::chrono::seconds(0);
  auto next = std::make_shared<PollResult>(PollResult::Ok(
      {{"n1", {P("10.1.0.1/32")}, "settable"}, {"n2", {P("10.1.0.2/32")}, "settable"}}));
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(std::make_unique<SettableSource>(next));
  Discovery d(config, nullptr, std::move(sources));
  d.PollAllOnce();
  *next = PollResult::Ok({{"n1", {P("10.1.0.1/32")}, "settable"}});
  d.PollAllOnce();
  EXPECT_EQ(Names(d.Current()), std::vector<std::string>{"n1"});
}

// --- Config ---------------------------------------------------------------------------------

TEST(DiscoveryConfig, ParsesAndLocatesErrors) {
  const Config c = ParseConfig(
      "discovery:\n  enabled: true\n  overlay_prefixes: [100.64.0.0/10]\n"
      "  wireguard: {enabled: true, interfaces: [wg0]}\n"
      "  kubernetes: {enabled: true, overlay_address: [ExternalIP]}\n"
      "  dns: {enabled: true, names: [meshflow.example], server: '127.0.0.1:5353'}\n",
      "t.yml", "self");
  EXPECT_TRUE(c.discovery.enabled);
  EXPECT_EQ(c.discovery.wireguard.interfaces, std::vector<std::string>{"wg0"});
  EXPECT_EQ(c.discovery.kubernetes.overlay_address, std::vector<std::string>{"ExternalIP"});
  EXPECT_EQ(c.discovery.dns.server, "127.0.0.1:5353");
  try {
    ParseConfig("discovery:\n  kubernetes:\n    overlay_address: [Hostname]\n", "t.yml", "self");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("t.yml:3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ParseConfig("discovery:\n  wireguard: {interfaces: [../x]}\n", "t.yml", "self"),
               ConfigError);
  EXPECT_THROW(ParseConfig("discovery:\n  dns: {enabled: true}\n", "t.yml", "self"), ConfigError);
  EXPECT_EQ(ParseConfig("discovery:\n  stale_after: 90s\n", "t.yml", "self").discovery.stale_after,
            std::chrono::seconds(90));
  EXPECT_EQ(DefaultConfig("self").discovery.stale_after, std::chrono::minutes(5));
  EXPECT_THROW(ParseConfig("discovery:\n  stale_after: 25h\n", "t.yml", "self"), ConfigError);
  const Config t = ParseConfig("discovery:\n  tailscale: {online_only: false, tags: ['tag:k8s']}\n",
                               "t.yml", "self");
  EXPECT_FALSE(t.discovery.tailscale.online_only);
  EXPECT_EQ(t.discovery.tailscale.tags, std::vector<std::string>{"tag:k8s"});
  EXPECT_THROW(ParseConfig("discovery:\n  tailscale: {tags: [k8s]}\n", "t.yml", "self"),
               ConfigError);
  EXPECT_THROW(ParseConfig("discovery:\n  dns: {server: \"::1\"}\n", "t.yml", "self"), ConfigError);
}

}  // namespace
}  // namespace meshflow::discovery
