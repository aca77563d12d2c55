#include <gtest/gtest.h>

#include <set>

#include "collectors/flow/decoder.h"
#include "tests/unit/flow_packets.h"

namespace meshflow::flow {
namespace {

using namespace test_packets;  // NOLINT: the packet builders

constexpr int kEthernet = 1;
constexpr int kRaw = 101;
constexpr int kSll = 113;
constexpr int kSll2 = 276;
constexpr int kNull = 0;
constexpr int kLoop = 108;

struct Decoded {
  DecodeStatus status;
  PacketInfo info;
};

Decoded Decode(int link, const Bytes& frame, uint32_t wire = 0, uint32_t captured = ~0u) {
  Decoder decoder;
  Decoded d;
  const uint32_t cap = std::min<uint32_t>(captured, static_cast<uint32_t>(frame.size()));
  // A copy of exactly the captured bytes, so ASan catches any read past them.
  std::vector<uint8_t> data(frame.begin(), frame.begin() + cap);
  d.status = decoder.Decode(link, data.data(), cap,
                            wire ? wire : static_cast<uint32_t>(frame.size()), d.info);
  return d;
}

TEST(FlowDecoder, EthernetIpv4TcpGivesAddressesPortsFlagsAndIpLength) {
  const Bytes frame = Cat({Ethernet(0x0800), TcpV4(41000, 6443, tcp_flags::kSyn, 100)});
  const auto d = Decode(kEthernet, frame);
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_EQ(d.info.ip_version, 4);
  EXPECT_EQ(d.info.src, *IpAddress::Parse("100.64.0.2"));
  EXPECT_EQ(d.info.dst, *IpAddress::Parse("100.64.0.1"));
  EXPECT_EQ(d.info.ip_bytes, 140u);
  EXPECT_EQ(d.info.l4_protocol, 6);
  EXPECT_EQ(d.info.src_port, 41000);
  EXPECT_EQ(d.info.dst_port, 6443);
  EXPECT_TRUE(d.info.has_tcp_header);
  EXPECT_EQ(d.info.tcp_flags, tcp_flags::kSyn);
  EXPECT_EQ(d.info.tcp_payload_bytes, 100u);
  EXPECT_FALSE(d.info.has_tcp_timestamp);
}

TEST(FlowDecoder, EthernetPaddingDoesNotCount) {
  // A 40-byte packet in a minimum 60-byte frame: the IP length counts, not the frame.
  const Bytes frame = Cat({Ethernet(0x0800), TcpV4(1, 2, 0), Zeros(6)});
  const auto d = Decode(kEthernet, frame);
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_EQ(d.info.ip_bytes, 40u);
}

TEST(FlowDecoder, TcpTimestampOptionIsRead) {
  const Bytes frame =
      Cat({Ethernet(0x0800), TcpV4(40000, 5432, tcp_flags::kAck, 10, TimestampOption(7, 9))});
  const auto d = Decode(kEthernet, frame);
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_TRUE(d.info.has_tcp_timestamp);
  EXPECT_EQ(d.info.ts_val, 7u);
  EXPECT_EQ(d.info.ts_ecr, 9u);
  EXPECT_EQ(d.info.tcp_payload_bytes, 10u);
}

TEST(FlowDecoder, MalformedTcpOptionsStopOptionParsingOnly) {
  const Bytes bad_option = {8, 1, 0, 0};  // length 1 is impossible
  const auto d = Decode(kEthernet, Cat({Ethernet(0x0800), TcpV4(1, 2, 0, 0, bad_option)}));
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_FALSE(d.info.has_tcp_timestamp);
}

TEST(FlowDecoder, VlanQinqAndOld9100TagsAreSkipped) {
  const Bytes ip = TcpV4(1, 6379, 0);
  for (const Bytes& frame : {Cat({Ethernet(0x8100), VlanTag(20, 0x0800), ip}),
                             Cat({Ethernet(0x88a8), VlanTag(100, 0x8100), VlanTag(20, 0x0800), ip}),
                             Cat({Ethernet(0x9100), VlanTag(7, 0x0800), ip})}) {
    const auto d = Decode(kEthernet, frame);
    ASSERT_EQ(d.status, DecodeStatus::kOk);
    EXPECT_EQ(d.info.dst_port, 6379);
    EXPECT_EQ(d.info.ip_bytes, 40u);
  }
}

TEST(FlowDecoder, TooManyVlanTagsIsNotIp) {
  const Bytes frame = Cat({Ethernet(0x8100), VlanTag(1, 0x8100), VlanTag(2, 0x8100),
                           VlanTag(3, 0x8100), VlanTag(4, 0x0800), TcpV4(1, 2, 0)});
  EXPECT_EQ(Decode(kEthernet, frame).status, DecodeStatus::kNotIp);
}

TEST(FlowDecoder, ArpIsSkippedNotAnError) {
  EXPECT_EQ(Decode(kEthernet, Cat({Ethernet(0x0806), Zeros(28)})).status, DecodeStatus::kNotIp);
}

TEST(FlowDecoder, EveryLinkTypeDecodesTheSamePacket) {
  const Bytes ip = TcpV4(41000, 6443, tcp_flags::kSyn);
  Bytes sll = {0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0};
  Put16(sll, 14, 0x0800);
  Bytes sll2 = {0, 0, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0};
  Put16(sll2, 0, 0x0800);
  const Bytes null_le = {2, 0, 0, 0};
  const Bytes null_be = {0, 0, 0, 2};
  const Bytes loop = {0, 0, 0, 2};
  const std::vector<std::pair<int, Bytes>> frames = {
      {kEthernet, Cat({Ethernet(0x0800), ip})},
      {kRaw, ip},
      {12, ip},
      {14, ip},
      {228, ip},
      {kSll, Cat({sll, ip})},
      {kSll2, Cat({sll2, ip})},
      {kNull, Cat({null_le, ip})},
      {kNull, Cat({null_be, ip})},
      {kLoop, Cat({loop, ip})},
  };
  for (const auto& [link, frame] : frames) {
    SCOPED_TRACE(link);
    const auto d = Decode(link, frame);
    ASSERT_EQ(d.status, DecodeStatus::kOk);
    EXPECT_EQ(d.info.ip_bytes, 40u);
    EXPECT_EQ(d.info.dst_port, 6443);
  }
}

TEST(FlowDecoder, NullAndLoopKnowEveryAfInet6) {
  const Bytes ip6 = Cat({Ipv6Header(17, 2, 1, 8), Udp(5353, 53, 0)});
  for (uint8_t family : {10, 24, 28, 30}) {
    const auto d = Decode(kNull, Cat({Bytes{family, 0, 0, 0}, ip6}));
    ASSERT_EQ(d.status, DecodeStatus::kOk) << int(family);
    EXPECT_EQ(d.info.ip_version, 6);
    EXPECT_EQ(Decode(kLoop, Cat({Bytes{0, 0, 0, family}, ip6})).status, DecodeStatus::kOk);
  }
  EXPECT_EQ(Decode(kNull, Cat({Bytes{7, 0, 0, 0}, ip6})).status, DecodeStatus::kNotIp);
}

TEST(FlowDecoder, UnsupportedLinkType) {
  EXPECT_FALSE(LinkDecoderFor(147).has_value());
  EXPECT_EQ(Decode(147, TcpV4(1, 2, 0)).status, DecodeStatus::kUnsupportedLinkType);
}

TEST(FlowDecoder, Ipv4OptionsAreSkipped) {
  const Bytes options = {1, 1, 1, 1, 7, 7, 4, 0, 0, 0, 0, 0};
  const Bytes tcp = Tcp(1, 5432, 0);
  const Bytes ip = Cat({Ipv4Header(6, {1, 2, 3, 4}, {5, 6, 7, 8}, tcp.size(), options), tcp});
  const auto d = Decode(kRaw, ip);
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_EQ(d.info.dst_port, 5432);
  EXPECT_EQ(d.info.ip_bytes, 52u);
}

TEST(FlowDecoder, Ipv6ExtensionHeadersAreWalked) {
  const Bytes tcp = Tcp(40000, 5432, tcp_flags::kSyn);
  const Bytes ah = {6, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  const Bytes chain = Cat({Ipv6Option8(43), Ipv6Option8(60), Ipv6Option8(51), ah, tcp});
  const Bytes ip = Cat({Ipv6Header(0, 2, 1, chain.size()), chain});
  const auto d = Decode(kRaw, ip);
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_EQ(d.info.ip_version, 6);
  EXPECT_EQ(d.info.l4_protocol, 6);
  EXPECT_EQ(d.info.dst_port, 5432);
  EXPECT_EQ(d.info.ip_bytes, 40u + chain.size());
}

TEST(FlowDecoder, Ipv6FragmentsCarryIdAndOffset) {
  Bytes frag = {17, 0, 0, 0, 0, 0, 0, 99};
  Put16(frag, 2, 0x0001);  // offset 0, more fragments
  const Bytes first_more = Cat({frag, Udp(1, 53, 100), Zeros(100)});
  auto d = Decode(kRaw, Cat({Ipv6Header(44, 2, 1, first_more.size()), first_more}));
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_TRUE(d.info.is_fragment);
  EXPECT_TRUE(d.info.more_fragments);
  EXPECT_EQ(d.info.fragment_id, 99u);
  EXPECT_TRUE(d.info.has_ports);
  Put16(frag, 2, 1232);  // offset 1232 bytes, last
  const Bytes later = Cat({frag, Zeros(64)});
  d = Decode(kRaw, Cat({Ipv6Header(44, 2, 1, later.size()), later}));
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_TRUE(d.info.is_fragment);
  EXPECT_EQ(d.info.fragment_offset, 1232u);
  EXPECT_FALSE(d.info.has_ports);
  EXPECT_EQ(d.info.l4_protocol, 17);
  EXPECT_EQ(d.info.ip_bytes, 40u + later.size());
}

TEST(FlowDecoder, Ipv4FragmentsAfterTheFirstHaveNoPorts) {
  const Bytes first = Cat({Ipv4Header(17, {1, 1, 1, 1}, {2, 2, 2, 2}, 1480, {}, 0x2000, 42),
                           Udp(1, 53, 2000), Zeros(1472)});
  auto d = Decode(kRaw, first);
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_TRUE(d.info.is_fragment);
  EXPECT_TRUE(d.info.has_ports);
  EXPECT_EQ(d.info.fragment_id, 42u);
  const Bytes later =
      Cat({Ipv4Header(17, {1, 1, 1, 1}, {2, 2, 2, 2}, 528, {}, 185, 42), Zeros(528)});
  d = Decode(kRaw, later);
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_FALSE(d.info.has_ports);
  EXPECT_EQ(d.info.fragment_offset, 1480u);
  EXPECT_EQ(d.info.ip_bytes, 548u);
}

TEST(FlowDecoder, SnaplenTruncationCountsTheIpLength) {
  const Bytes frame = Cat({Ethernet(0x0800), TcpV4(1, 5432, tcp_flags::kAck, 1400)});
  const auto d = Decode(kEthernet, frame, 0, 128);
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_EQ(d.info.ip_bytes, 1440u);
  EXPECT_EQ(d.info.tcp_payload_bytes, 1400u);
}

TEST(FlowDecoder, PortsWithoutTheRestOfTheTcpHeaderStillCount) {
  const Bytes frame = Cat({Ethernet(0x0800), TcpV4(1, 5432, tcp_flags::kSyn, 100)});
  const auto d = Decode(kEthernet, frame, 0, 14 + 20 + 8);
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_TRUE(d.info.has_ports);
  EXPECT_FALSE(d.info.has_tcp_header);
  EXPECT_EQ(d.info.ip_bytes, 140u);
}

TEST(FlowDecoder, GsoZeroLengthUsesTheWireLength) {
  Bytes ip = TcpV4(1, 6443, tcp_flags::kAck);
  Put16(ip, 2, 0);
  const Bytes frame = Cat({Ethernet(0x0800), ip});
  const auto d = Decode(kEthernet, frame, 14 + 190000, 128);
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_EQ(d.info.ip_bytes, 190000u);
  EXPECT_EQ(d.info.tcp_payload_bytes, 190000u - 40);

  Bytes ip6 = Cat({Ipv6Header(6, 2, 1, 0), Tcp(1, 5432, 0)});
  const auto d6 = Decode(kRaw, ip6, 150000);
  ASSERT_EQ(d6.status, DecodeStatus::kOk);
  EXPECT_EQ(d6.info.ip_bytes, 150000u);
}

TEST(FlowDecoder, SuperPacketAboveMtuWithItsOwnLength) {
  const Bytes frame = Cat({Ethernet(0x0800), TcpV4(1, 6443, tcp_flags::kAck, 30000)});
  const auto d = Decode(kEthernet, frame, 0, 128);
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_EQ(d.info.ip_bytes, 30040u);
}

TEST(FlowDecoder, VxlanIsDecapsulatedOnBothPortsAndOverheadReported) {
  const Bytes inner = TcpV4(52010, 5432, tcp_flags::kSyn, 10);
  const Bytes vxlan = {0x08, 0, 0, 0, 0, 0, 1, 0};
  for (uint16_t port : {8472, 4789}) {
    const Bytes udp_payload = Cat({vxlan, Ethernet(0x0800), inner});
    const Bytes frame =
        Cat({Ethernet(0x0800),
             Ipv4Header(17, {192, 168, 20, 222}, {192, 168, 20, 221}, 8 + udp_payload.size()),
             Udp(40000, port, udp_payload.size()), udp_payload});
    const auto d = Decode(kEthernet, frame);
    ASSERT_EQ(d.status, DecodeStatus::kOk);
    EXPECT_EQ(d.info.encap, Encap::kVxlan);
    EXPECT_EQ(d.info.dst_port, 5432);
    EXPECT_EQ(d.info.src, *IpAddress::Parse("100.64.0.2"));
    EXPECT_EQ(d.info.ip_bytes, 50u);
    EXPECT_EQ(d.info.encap_overhead_bytes, 20u + 8 + 8 + 14);
  }
}

TEST(FlowDecoder, VxlanPortsAreConfigurableAndNotNested) {
  const Bytes vxlan = {0x08, 0, 0, 0, 0, 0, 1, 0};
  const Bytes inner_udp = Cat({Udp(1, 8472, 20), Zeros(20)});
  const Bytes inner =
      Cat({Ipv4Header(17, {10, 42, 1, 5}, {10, 42, 0, 7}, inner_udp.size()), inner_udp});
  const Bytes payload = Cat({vxlan, Ethernet(0x0800), inner});
  const Bytes frame =
      Cat({Ethernet(0x0800), Ipv4Header(17, {1, 1, 1, 1}, {2, 2, 2, 2}, 8 + payload.size()),
           Udp(40000, 9999, payload.size()), payload});
  Decoder only_9999({9999});
  PacketInfo info;
  ASSERT_EQ(only_9999.Decode(kEthernet, frame.data(), static_cast<uint32_t>(frame.size()),
                             static_cast<uint32_t>(frame.size()), info),
            DecodeStatus::kOk);
  EXPECT_EQ(info.encap, Encap::kVxlan);
  EXPECT_EQ(info.dst_port, 8472);  // the inner VXLAN-looking packet stays plain UDP
  Decoder defaults;
  ASSERT_EQ(defaults.Decode(kEthernet, frame.data(), static_cast<uint32_t>(frame.size()),
                            static_cast<uint32_t>(frame.size()), info),
            DecodeStatus::kOk);
  EXPECT_EQ(info.encap, Encap::kNone);
  EXPECT_EQ(info.dst_port, 9999);
}

TEST(FlowDecoder, UdpOnVxlanPortWithoutIFlagIsPlainUdp) {
  const Bytes payload = Zeros(40);
  const Bytes frame = Cat({Ipv4Header(17, {1, 1, 1, 1}, {2, 2, 2, 2}, 8 + payload.size()),
                           Udp(1, 8472, payload.size()), payload});
  const auto d = Decode(kRaw, frame);
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_EQ(d.info.encap, Encap::kNone);
  EXPECT_EQ(d.info.dst_port, 8472);
}

TEST(FlowDecoder, EveryMalformedCaseHasItsReason) {
  const Bytes good = TcpV4(1, 2, tcp_flags::kSyn);
  auto with = [&](size_t at, uint8_t value) {
    Bytes b = good;
    b[at] = value;
    return b;
  };
  auto with16 = [&](size_t at, uint16_t value) {
    Bytes b = good;
    Put16(b, at, value);
    return b;
  };
  Bytes deep;
  for (int i = 0; i < 9; ++i) deep = Cat({deep, Ipv6Option8(i < 8 ? 60 : 17)});
  deep = Cat({deep, Udp(1, 53, 0)});
  const Bytes vxlan_payload = Cat({Bytes{0x08, 0, 0, 0, 0, 0, 1, 0}, Ethernet(0x0800), good});
  const Bytes vxlan = Cat({Ipv4Header(17, {1, 1, 1, 1}, {2, 2, 2, 2}, 8 + vxlan_payload.size()),
                           Udp(1, 4789, vxlan_payload.size()), vxlan_payload});
  struct Case {
    const char* what;
    int link;
    Bytes frame;
    uint32_t captured;
    DecodeStatus want;
  };
  const std::vector<Case> cases = {
      {"short ethernet", kEthernet, Zeros(10), ~0u, DecodeStatus::kTruncatedLinkHeader},
      {"cut vlan tag", kEthernet, Cat({Ethernet(0x8100), Zeros(2)}), ~0u,
       DecodeStatus::kTruncatedLinkHeader},
      {"short sll", kSll, Zeros(15), ~0u, DecodeStatus::kTruncatedLinkHeader},
      {"short sll2", kSll2, Zeros(19), ~0u, DecodeStatus::kTruncatedLinkHeader},
      {"short null", kNull, Zeros(3), ~0u, DecodeStatus::kTruncatedLinkHeader},
      {"empty raw", kRaw, {}, ~0u, DecodeStatus::kTruncatedIpHeader},
      {"short ipv4", kRaw, good, 19, DecodeStatus::kTruncatedIpHeader},
      {"short ipv6", kRaw, Cat({Ipv6Header(59, 1, 2, 0)}), 39, DecodeStatus::kTruncatedIpHeader},
      {"version 5", kRaw, with(0, 0x55), ~0u, DecodeStatus::kBadIpVersion},
      {"v6 behind 0x0800", kEthernet, Cat({Ethernet(0x0800), with(0, 0x65)}), ~0u,
       DecodeStatus::kBadIpVersion},
      {"v4 behind 0x86dd", kEthernet, Cat({Ethernet(0x86dd), good}), ~0u,
       DecodeStatus::kBadIpVersion},
      {"ihl 4", kRaw, with(0, 0x44), ~0u, DecodeStatus::kBadIpHeaderLength},
      {"ihl beyond capture", kRaw, with(0, 0x4f), ~0u, DecodeStatus::kTruncatedIpHeader},
      {"total below header", kRaw, with16(2, 19), ~0u, DecodeStatus::kBadIpLength},
      {"total beyond wire", kRaw, with16(2, 41), ~0u, DecodeStatus::kBadIpLength},
      {"ipv6 payload beyond wire", kRaw, Cat({Ipv6Header(59, 1, 2, 10)}), ~0u,
       DecodeStatus::kBadIpLength},
      {"tcp shorter than 20", kRaw, Cat({Ipv4Header(6, {1, 1, 1, 1}, {2, 2, 2, 2}, 10), Zeros(10)}),
       ~0u, DecodeStatus::kTruncatedL4},
      {"tcp ports not captured", kRaw, good, 22, DecodeStatus::kTruncatedL4},
      {"udp shorter than 8", kRaw, Cat({Ipv4Header(17, {1, 1, 1, 1}, {2, 2, 2, 2}, 4), Zeros(4)}),
       ~0u, DecodeStatus::kTruncatedL4},
      {"icmp empty", kRaw, Ipv4Header(1, {1, 1, 1, 1}, {2, 2, 2, 2}, 0), ~0u,
       DecodeStatus::kTruncatedL4},
      {"tcp offset 4", kRaw, with(32, 0x40), ~0u, DecodeStatus::kBadTcpHeaderLength},
      {"tcp offset beyond ip", kRaw, with(32, 0x60), ~0u, DecodeStatus::kBadTcpHeaderLength},
      {"nine extension headers", kRaw, Cat({Ipv6Header(60, 1, 2, deep.size()), deep}), ~0u,
       DecodeStatus::kTooManyExtensionHeaders},
      {"extension header cut", kRaw, Cat({Ipv6Header(0, 1, 2, 16), Ipv6Option8(60), Zeros(8)}), 49,
       DecodeStatus::kTruncatedExtensionHeader},
      {"extension header beyond ip", kRaw,
       Cat({Ipv6Header(0, 1, 2, 8), Bytes{60, 3, 0, 0, 0, 0, 0, 0}}), ~0u,
       DecodeStatus::kBadIpLength},
      {"vxlan cut", kRaw, vxlan, 20 + 8 + 8 + 4, DecodeStatus::kTruncatedEncapsulation},
      {"vxlan inner bad", kRaw,
       [&] {
         Bytes b = vxlan;
         b[20 + 8 + 8 + 14] = 0x43;  // inner IHL 3
         return b;
       }(),
       ~0u, DecodeStatus::kBadIpHeaderLength},
  };
  for (const auto& c : cases) {
    const auto d = Decode(c.link, c.frame, 0, c.captured);
    EXPECT_EQ(DecodeStatusName(d.status), DecodeStatusName(c.want)) << c.what;
  }
}

TEST(FlowDecoder, StatusNamesAreDistinctLabelValues) {
  std::set<std::string_view> names;
  for (int s = 0; s < static_cast<int>(DecodeStatus::kCount); ++s) {
    const auto name = DecodeStatusName(static_cast<DecodeStatus>(s));
    EXPECT_NE(name, "unknown");
    EXPECT_TRUE(names.insert(name).second) << name;
  }
}

TEST(FlowDecoder, HugeWireLengthIsBounded) {
  Bytes ip = TcpV4(1, 2, 0);
  Put16(ip, 2, 0);
  const auto d = Decode(kRaw, ip, 0xffffffffu);
  ASSERT_EQ(d.status, DecodeStatus::kOk);
  EXPECT_EQ(d.info.ip_bytes, Decoder::kMaxWireBytes);
}

}  // namespace
}  // namespace meshflow::flow
