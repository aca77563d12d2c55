#include "exporter/privileges.h"

#include <gtest/gtest.h>
#include <linux/capability.h>

namespace meshflow {
namespace {

// Trimmed from a real /proc/<pid>/status of an exporter started with --runas nobody.
constexpr char kStatus[] =
    "Name:\tmeshflow-export\n"
    "Umask:\t0022\n"
    "State:\tS (sleeping)\n"
    "Uid:\t65534\t65534\t65534\t65534\n"
    "Gid:\t65534\t65534\t65534\t65534\n"
    "Groups:\t\n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t0000000000002000\n"
    "CapEff:\t0000000000002000\n"
    "CapBnd:\t0000000000003400\n"
    "CapAmb:\t0000000000000000\n"
    "NoNewPrivs:\t1\n"
    "Seccomp:\t0\n";

TEST(PrivilegesTest, ParsesProcStatus) {
  const auto p = ParseProcStatus(kStatus);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->uid, 65534);
  EXPECT_EQ(p->euid, 65534);
  EXPECT_EQ(p->gid, 65534);
  EXPECT_EQ(p->cap_effective, uint64_t{1} << CAP_NET_RAW);
  EXPECT_EQ(p->cap_permitted, uint64_t{1} << CAP_NET_RAW);
  EXPECT_EQ(p->cap_bounding, 0x3400u);
  EXPECT_EQ(p->cap_ambient, 0u);
  EXPECT_TRUE(p->no_new_privs);
}

TEST(PrivilegesTest, RealAndEffectiveUidDiffer) {
  const auto p = ParseProcStatus(
      "Uid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\nCapInh:\t0\nCapPrm:\t1ffffffffff\n"
      "CapEff:\t1ffffffffff\nCapBnd:\t1ffffffffff\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->uid, 1000);
  EXPECT_EQ(p->euid, 0);
  EXPECT_EQ(p->cap_ambient, 0u);  // no CapAmb line before Linux 4.3
  EXPECT_FALSE(p->no_new_privs);
}

TEST(PrivilegesTest, RefusesTruncatedStatus) {
  EXPECT_FALSE(ParseProcStatus(""));
  EXPECT_FALSE(ParseProcStatus("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n"));
  EXPECT_FALSE(ParseProcStatus("Uid:\tx\nGid:\t0\nCapEff:\t0\n"));
  EXPECT_FALSE(
      ParseProcStatus(std::string(kStatus).replace(std::string(kStatus).find("2000"), 4, "zz00")));
}

TEST(PrivilegesTest, ReadsItsOwnStatus) {
  const ProcessPrivileges p = ReadOwnPrivileges();
  EXPECT_GE(p.uid, 0);
  EXPECT_EQ(p.cap_effective & ~p.cap_permitted, 0u);
}

TEST(PrivilegesTest, NamesCapabilities) {
  EXPECT_EQ(CapabilityName(CAP_NET_RAW), "cap_net_raw");
  EXPECT_EQ(CapabilityName(CAP_NET_ADMIN), "cap_net_admin");
  EXPECT_EQ(CapabilityName(63), "cap_63");
}

TEST(PrivilegesTest, MetricsSayWhatIsHeld) {
  std::vector<prometheus::MetricFamily> out;
  CollectPrivilegeMetrics(*ParseProcStatus(kStatus), out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].name, "meshflow_capabilities");
  ASSERT_EQ(out[0].metric.size(), 2u);
  EXPECT_EQ(out[0].metric[0].label[0].value, "cap_net_raw");
  EXPECT_EQ(out[0].metric[0].label[1].value, "effective");
  EXPECT_EQ(out[0].metric[1].label[1].value, "permitted");
  EXPECT_EQ(out[1].name, "meshflow_no_new_privs");
  EXPECT_EQ(out[1].metric[0].gauge.value, 1);
  EXPECT_EQ(out[2].name, "meshflow_running_as_root");
  EXPECT_EQ(out[2].metric[0].gauge.value, 0);
}

}  // namespace
}  // namespace meshflow
