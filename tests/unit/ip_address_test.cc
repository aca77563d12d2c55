#include "common/core/ip_address.h"

#include <gtest/gtest.h>

namespace meshflow {
namespace {

TEST(IpAddress, ParsesAndPrintsBothFamilies) {
  EXPECT_EQ(IpAddress::Parse("100.64.0.1")->ToString(), "100.64.0.1");
  EXPECT_EQ(IpAddress::Parse("fd7a:115c:a1e0::1")->ToString(), "fd7a:115c:a1e0::1");
  EXPECT_TRUE(IpAddress::Parse("10.0.0.1")->is_v4());
  EXPECT_FALSE(IpAddress::Parse("::1")->is_v4());
  EXPECT_FALSE(IpAddress::Parse("10.0.0.256"));
  EXPECT_FALSE(IpAddress::Parse("tailscale0"));
}

TEST(IpAddress, V4FromHostOrderMatchesParsed) {
  EXPECT_EQ(IpAddress::FromV4(0x64400001), *IpAddress::Parse("100.64.0.1"));
}

TEST(IpPrefix, BareAddressIsHostPrefix) {
  auto p = IpPrefix::Parse("192.168.20.221");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->bits, 32);
  EXPECT_EQ(IpPrefix::Parse("fd7a::1")->bits, 128);
}

TEST(IpPrefix, ContainsRespectsFamilyAndLength) {
  auto cgnat = *IpPrefix::Parse("100.64.0.0/10");
  EXPECT_TRUE(cgnat.Contains(*IpAddress::Parse("100.127.255.255")));
  EXPECT_FALSE(cgnat.Contains(*IpAddress::Parse("100.128.0.0")));
  auto ula = *IpPrefix::Parse("fd7a:115c:a1e0::/48");
  EXPECT_TRUE(ula.Contains(*IpAddress::Parse("fd7a:115c:a1e0:ab12::5")));
  EXPECT_FALSE(ula.Contains(*IpAddress::Parse("100.64.0.1")));
  // ::/0 must not swallow IPv4, nor 0.0.0.0/0 IPv6.
  EXPECT_FALSE(IpPrefix::Parse("::/0")->Contains(*IpAddress::Parse("1.2.3.4")));
  EXPECT_FALSE(IpPrefix::Parse("0.0.0.0/0")->Contains(*IpAddress::Parse("::1")));
  EXPECT_TRUE(IpPrefix::Parse("0.0.0.0/0")->Contains(*IpAddress::Parse("1.2.3.4")));
}

TEST(IpPrefix, RejectsMalformedWithReason) {
  std::string why;
  EXPECT_FALSE(IpPrefix::Parse("10.0.0.1/24", &why));
  EXPECT_NE(why.find("host bits"), std::string::npos);
  EXPECT_FALSE(IpPrefix::Parse("10.0.0.0/33", &why));
  EXPECT_NE(why.find("0..32"), std::string::npos);
  EXPECT_FALSE(IpPrefix::Parse("10.0.0.0/", &why));
  EXPECT_FALSE(IpPrefix::Parse("10.0.0.0/x", &why));
  EXPECT_FALSE(IpPrefix::Parse("nonsense/8", &why));
}

}  // namespace
}  // namespace meshflow
