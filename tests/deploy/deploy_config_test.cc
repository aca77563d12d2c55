// The configuration files that deploy/ ships (the package's default, the Kubernetes base and
// overlays that end up in ConfigMaps) go through the exporter's own parser.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "common/config/config.h"
#include "common/core/config_reader.h"
#include "common/web/web_config.h"

namespace meshflow {
namespace {

const std::string kSource = MESHFLOW_SOURCE_DIR;

TEST(DeployConfigTest, PackageDefaultLoads) {
  const Config c = LoadConfigFile(kSource + "/deploy/meshflow.yml", "testnode");
  EXPECT_EQ(c.node_name, "testnode");
  EXPECT_FALSE(c.flows.capture.promiscuous);  // the unit grants CAP_NET_RAW only
}

TEST(DeployConfigTest, KubernetesConfigsLoad) {
  int overlays = 0;
  EXPECT_NO_THROW(LoadConfigFile(kSource + "/deploy/kubernetes/base/meshflow.yml", "n"));
  for (const auto& entry :
       std::filesystem::directory_iterator(kSource + "/deploy/kubernetes/overlays")) {
    const std::string file = entry.path().string() + "/meshflow.yml";
    SCOPED_TRACE(file);
    try {
      const Config c = LoadConfigFile(file, "n");
      // The DaemonSet adds NET_RAW only; promiscuous capture would need NET_ADMIN too.
      EXPECT_FALSE(c.flows.capture.promiscuous);
      ++overlays;
    } catch (const ConfigError& e) {
      ADD_FAILURE() << e.what();
    }
  }
  EXPECT_GE(overlays, 1);
}

TEST(DeployConfigTest, ReferenceOverlayNamesEveryNode) {
  const Config c =
      LoadConfigFile(kSource + "/deploy/kubernetes/overlays/hybrid-tailscale/meshflow.yml", "n");
  std::vector<std::string> names;
  for (const auto& n : c.nodes) names.push_back(n.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"acer-agent", "ct-serv-jp", "desktop-agent",
                                             "gce-agent-tw", "laptop-agent"}));
  const auto overlay = *IpPrefix::Parse("100.64.0.0/10");
  for (const auto& n : c.nodes) {
    for (const auto& a : n.addresses) {
      EXPECT_TRUE(overlay.Contains(a.address)) << n.name << " outside the Tailscale range";
    }
  }
}

TEST(DeployConfigTest, WebConfigExampleParses) {
  const auto w = web::LoadWebConfigFile(kSource + "/deploy/web-config.example.yml");
  ASSERT_TRUE(w.tls);
  EXPECT_EQ(w.tls->client_auth, web::ClientAuth::kRequireAndVerifyClientCert);
  EXPECT_EQ(w.basic_auth_users.size(), 1u);
}

}  // namespace
}  // namespace meshflow
