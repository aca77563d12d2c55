#include <gtest/gtest.h>

#include "collectors/flow/capture/interface_selector.h"
#include "collectors/flow/interface_kinds.h"

namespace meshflow::flow {
namespace {

TEST(InterfaceSelector, DefaultsPickOverlayAndNodeInterfaces) {
  const InterfaceSelector s{CaptureConfig{}};
  for (const char* name :
       {"tailscale0", "wg0", "flannel.1", "cni0", "eth0", "eth1.100", "enp3s0", "ens5", "eno1"})
    EXPECT_TRUE(s.Selected(name)) << name;
  for (const char* name : {"lo", "veth1a2b3c", "docker0", "virbr0", "dummy0", ""})
    EXPECT_FALSE(s.Selected(name)) << name;
}

TEST(InterfaceSelector, ExcludeWinsOverInclude) {
  CaptureConfig c;
  c.include = {"^veth", "^lo$"};
  c.exclude = {"^vethskip"};
  const InterfaceSelector s{c};
  EXPECT_TRUE(s.Selected("veth0"));
  EXPECT_TRUE(s.Selected("lo"));
  EXPECT_FALSE(s.Selected("vethskip0"));
  EXPECT_FALSE(s.Selected("eth0"));
}

TEST(InterfaceSelector, PatternsMatchAnywhereUnlessAnchored) {
  CaptureConfig c;
  c.include = {"mfcap"};
  c.exclude = {};
  const InterfaceSelector s{c};
  EXPECT_TRUE(s.Selected("x-mfcap-0"));
  EXPECT_FALSE(s.Selected("eth0"));
}

TEST(InterfaceSelector, NoIncludePatternSelectsNothing) {
  CaptureConfig c;
  c.include = {};
  c.exclude = {};
  EXPECT_FALSE(InterfaceSelector{c}.Selected("eth0"));
}

TEST(InterfaceKinds, DefaultKinds) {
  const InterfaceKinds s{CaptureConfig{}.kinds};
  EXPECT_EQ(s.KindOf("tailscale0"), "overlay");
  EXPECT_EQ(s.KindOf("wg0"), "overlay");
  EXPECT_EQ(s.KindOf("flannel.1"), "overlay");
  EXPECT_EQ(s.KindOf("cni0"), "pod");
  EXPECT_EQ(s.KindOf("veth12ab"), "pod");
  EXPECT_EQ(s.KindOf("eth0"), "underlay");
  EXPECT_EQ(s.KindOf("enp3s0"), "underlay");
}

TEST(InterfaceKinds, FirstKindRuleWins) {
  CaptureConfig c;
  c.kinds.insert(c.kinds.begin(), {"^eth1$", "overlay"});
  const InterfaceKinds s{c.kinds};
  EXPECT_EQ(s.KindOf("eth1"), "overlay");
  EXPECT_EQ(s.KindOf("eth0"), "underlay");
}

TEST(InterfaceKinds, NoKindRuleMeansUnderlay) {
  CaptureConfig c;
  c.kinds.clear();
  EXPECT_EQ(InterfaceKinds{c.kinds}.KindOf("wg0"), "underlay");
}

TEST(InterfaceSelector, BadPatternThrows) {
  CaptureConfig c;
  c.include = {"("};
  EXPECT_THROW(InterfaceSelector{c}, std::invalid_argument);
}

}  // namespace
}  // namespace meshflow::flow
