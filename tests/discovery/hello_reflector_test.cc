// Self-identification end to end on loopback: the probe collector's reflector answers a hello
// with its node name, and the runner uses the name for a peer a source found without one.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "collectors/probe/prober.h"
#include "common/core/fd.h"
#include "common/discovery/discovery.h"
#include "common/discovery/hello_client.h"

namespace meshflow::discovery {
namespace {

uint16_t FreeUdpPort() {
  Fd fd(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

probe::ProberOptions ReflectorOnly(uint16_t port, bool answer_hello) {
  probe::ProberOptions o;
  o.node_name = "peer-b";
  o.reflector_address = "127.0.0.1";
  o.reflector_port = port;
  o.answer_hello = answer_hello;
  return o;
}

// Starts a reflector on 127.0.0.1 that answers hellos or not, and asks it once.
std::map<IpAddress, HelloIdentity> AskReflector(bool answer_hello,
                                                std::chrono::milliseconds timeout,
                                                HelloStats* stats) {
  const uint16_t port = FreeUdpPort();
  probe::Prober prober;
  prober.Start(ReflectorOnly(port, answer_hello));
  auto answers = AskHello({*IpAddress::Parse("127.0.0.1")}, port, timeout, stats);
  prober.Stop();
  return answers;
}

TEST(HelloReflector, ReflectorAnswersWithItsName) {
  HelloStats stats;
  const auto answers = AskReflector(true, std::chrono::milliseconds(2000), &stats);
  ASSERT_EQ(answers.size(), 1u);
  const auto& id = answers.begin()->second;
  EXPECT_EQ(id.name, "peer-b");
  ASSERT_EQ(id.addresses.size(), 1u);
  EXPECT_EQ(id.addresses[0].ToString(), "127.0.0.1/32");
  EXPECT_EQ(stats.sent, 1u);
  EXPECT_EQ(stats.answered, 1u);
}

TEST(HelloReflector, SwitchedOffMeansNoAnswer) {
  HelloStats stats;
  const auto answers = AskReflector(false, std::chrono::milliseconds(300), &stats);
  EXPECT_TRUE(answers.empty());
  EXPECT_EQ(stats.sent, 1u);
}

class Nameless final : public Source {
 public:
  explicit Nameless(std::vector<const char*> addresses) {
    for (const char* a : addresses) nodes_.push_back({"", {*IpPrefix::Parse(a)}, "fake"});
  }
  std::string_view name() const override { return "fake"; }
  PollResult Poll() override { return PollResult::Ok(nodes_); }

 private:
  std::vector<DiscoveredNode> nodes_;
};

// 127.0.0.2 and 127.0.0.3 reach the loopback device, but are not interface addresses of this
// machine (those carry the local node's name whatever a hello says), so they stand for peers.
TEST(HelloReflector, RunnerNamesNamelessPeersOnlyInsideTheOverlayAndNeverMergesClaims) {
  const uint16_t port = FreeUdpPort();
  probe::Prober prober;
  auto options = ReflectorOnly(port, true);
  options.reflector_address = "0.0.0.0";
  prober.Start(options);
  Config config = DefaultConfig("self-node");
  config.discovery.enabled = true;
  config.discovery.hello.timeout = std::chrono::milliseconds(1500);
  config.probes.udp_port = port;

  config.discovery.overlay_prefixes = {*IpPrefix::Parse("10.0.0.0/8")};
  {
    std::vector<std::unique_ptr<Source>> sources;
    sources.push_back(std::make_unique<Nameless>(std::vector<const char*>{"127.0.0.2/32"}));
    Discovery d(config, nullptr, std::move(sources));
    d.PollAllOnce();
    ASSERT_EQ(d.Current().size(), 1u);
    EXPECT_EQ(d.Current()[0].name, "127.0.0.2");  // outside the overlay: not asked
  }
  config.discovery.overlay_prefixes = {*IpPrefix::Parse("127.0.0.0/8")};
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(
      std::make_unique<Nameless>(std::vector<const char*>{"127.0.0.2/32", "127.0.0.3/32"}));
  std::vector<std::vector<NodeSpec>> changes;
  Discovery d(
      config, [&](const std::vector<NodeSpec>& n) { changes.push_back(n); }, std::move(sources));
  d.PollAllOnce();
  prober.Stop();
  const auto nodes = d.Current();
  ASSERT_EQ(nodes.size(), 2u);
  // Both answer "peer-b"; each reply lists only the address it reached, so neither proves the
  // other is the same node: the first keeps the name, the second its address.
  EXPECT_EQ(nodes[0].name, "peer-b");
  EXPECT_EQ(nodes[1].name, "127.0.0.3");
  std::vector<prometheus::MetricFamily> families;
  d.Collect(families);
  double conflicts = -1;
  for (const auto& f : families)
    if (f.name == "meshflow_discovery_hello_conflicts_total")
      conflicts = f.metric.at(0).counter.value;
  EXPECT_EQ(conflicts, 1);
  ASSERT_EQ(changes.size(), 1u);
}

}  // namespace
}  // namespace meshflow::discovery
