#include <gtest/gtest.h>

#include <vector>

#include "collectors/probe/codec.h"

namespace meshflow::probe {
namespace {

ProbePacket Request() {
  ProbePacket p;
  p.type = ProbeType::kRequest;
  p.session = 0x0102030405060708ull;
  p.sequence = 42;
  p.send_time_ns = 0xFFFFFFFFFFFFFFF0ull;
  return p;
}

DecodeError ErrorOf(const std::vector<uint8_t>& bytes) {
  const DecodeResult r = Decode(bytes);
  EXPECT_FALSE(r.packet.has_value());
  return r.error;
}

TEST(ProbeCodec, RoundTripsRequestAndReply) {
  const ProbePacket request = Request();
  const ProbeBytes bytes = Encode(request);
  ASSERT_EQ(bytes.size(), kProbeSize);
  EXPECT_EQ(bytes[0], 'M');
  EXPECT_EQ(bytes[3], 'R');
  auto r = Decode(bytes);
  ASSERT_TRUE(r.packet);
  EXPECT_EQ(*r.packet, request);

  ProbePacket reply = request;
  reply.type = ProbeType::kReply;
  reply.receive_count = 7;
  reply.turnaround_ns = 30'000;
  r = Decode(Encode(reply));
  ASSERT_TRUE(r.packet);
  EXPECT_EQ(*r.packet, reply);
}

TEST(ProbeCodec, EncodesBigEndian) {
  const ProbeBytes b = Encode(Request());
  EXPECT_EQ(b[8], 0x01);
  EXPECT_EQ(b[15], 0x08);
  EXPECT_EQ(b[23], 42);
}

TEST(ProbeCodec, RequestNeverCarriesReplyFields) {
  ProbePacket p = Request();
  p.receive_count = 99;  // ignored for requests
  p.turnaround_ns = 5;
  EXPECT_EQ(Decode(Encode(p)).packet->receive_count, 0u);
  EXPECT_EQ(Decode(Encode(p)).packet->turnaround_ns, 0u);
}

TEST(ProbeCodec, TurnaroundIsStampedIntoAnEncodedReply) {
  ProbePacket p = Request();
  p.type = ProbeType::kReply;
  p.receive_count = 1;
  ProbeBytes b = Encode(p);
  SetTurnaround(b, 41'234);
  EXPECT_EQ(Decode(b).packet->turnaround_ns, 41'234u);
  EXPECT_EQ(Decode(b).packet->sequence, 42u);
}

TEST(ProbeCodec, RejectsEveryMalformedShape) {
  const ProbeBytes good = Encode(Request());
  std::vector<uint8_t> b(good.begin(), good.end());

  EXPECT_EQ(ErrorOf({}), DecodeError::kTooShort);
  EXPECT_EQ(ErrorOf(std::vector<uint8_t>(b.begin(), b.end() - 1)), DecodeError::kTooShort);
  auto longer = b;
  longer.push_back(0);
  EXPECT_EQ(ErrorOf(longer), DecodeError::kTooLong);

  auto bad = b;
  bad[0] = 'X';
  EXPECT_EQ(ErrorOf(bad), DecodeError::kBadMagic);
  bad = b;
  bad[4] = 2;
  EXPECT_EQ(ErrorOf(bad), DecodeError::kBadVersion);
  bad = b;
  bad[5] = 0;
  EXPECT_EQ(ErrorOf(bad), DecodeError::kBadType);
  bad[5] = 3;
  EXPECT_EQ(ErrorOf(bad), DecodeError::kBadType);
  bad = b;
  bad[7] = 1;
  EXPECT_EQ(ErrorOf(bad), DecodeError::kReservedNotZero);
  bad = b;
  bad[39] = 1;  // a count in a request
  EXPECT_EQ(ErrorOf(bad), DecodeError::kReplyFieldInRequest);
  bad = b;
  bad[47] = 1;  // a turnaround in a request
  EXPECT_EQ(ErrorOf(bad), DecodeError::kReplyFieldInRequest);
}

TEST(ProbeCodec, ErrorNamesAreDistinctLabelValues) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < kDecodeErrorCount; ++i)
    names.insert(DecodeErrorName(static_cast<DecodeError>(i)));
  EXPECT_EQ(names.size(), kDecodeErrorCount);
  EXPECT_EQ(names.count("unknown"), 0u);
}

// An echo request turned into the reply a peer would send: type 0 (ICMPv4) or 129 (ICMPv6).
IcmpEchoBytes AsReply(IcmpEchoBytes b, bool v4) {
  b[0] = v4 ? 0 : 129;
  return b;
}

TEST(IcmpEcho, RequestCarriesIdSequenceAndAValidChecksum) {
  const IcmpEchoBytes b = EncodeIcmpEcho(true, 0xBEEF, 0x0102030405060708, 0x1234);
  EXPECT_EQ(b[0], 8);
  EXPECT_EQ(b[4], 0xBE);
  EXPECT_EQ(b[5], 0xEF);
  EXPECT_EQ(b[6], 0x12);
  EXPECT_EQ(b[7], 0x34);
  EXPECT_EQ(InternetChecksum(b), 0);  // a correct checksum sums the message to zero
  const IcmpEchoBytes v6 = EncodeIcmpEcho(false, 1, 2, 3);
  EXPECT_EQ(v6[0], 128);
  EXPECT_EQ(v6[2], 0);  // left to the kernel
  EXPECT_EQ(v6[3], 0);
}

TEST(IcmpEcho, ReplyRoundTripsOnEverySocketKind) {
  for (const bool v4 : {true, false}) {
    const IcmpEchoBytes reply = AsReply(EncodeIcmpEcho(v4, 7, 0xAABBCCDDEEFF0011, 70000), v4);
    const auto r = DecodeIcmpEchoReply(reply, v4, false);
    ASSERT_TRUE(r.reply);
    EXPECT_EQ(r.reply->id, 7);
    EXPECT_EQ(r.reply->session, 0xAABBCCDDEEFF0011u);
    EXPECT_EQ(r.reply->sequence, 70000u);
  }
  // A raw IPv4 socket delivers the IP header (here with 4 bytes of options) before the ICMP.
  std::vector<uint8_t> raw(24, 0);
  raw[0] = 0x46;
  const IcmpEchoBytes reply = AsReply(EncodeIcmpEcho(true, 9, 1, 2), true);
  raw.insert(raw.end(), reply.begin(), reply.end());
  const auto r = DecodeIcmpEchoReply(raw, true, true);
  ASSERT_TRUE(r.reply);
  EXPECT_EQ(r.reply->id, 9);
  EXPECT_EQ(r.reply->sequence, 2u);
}

TEST(IcmpEcho, AnythingElseIsMalformedExceptAnEmptyRead) {
  const IcmpEchoBytes good = AsReply(EncodeIcmpEcho(true, 1, 2, 3), true);
  EXPECT_TRUE(DecodeIcmpEchoReply(good, true, false).reply);
  const auto is_malformed = [](std::span<const uint8_t> b, bool v4, bool ip) {
    const auto r = DecodeIcmpEchoReply(b, v4, ip);
    return !r.reply && r.malformed;
  };
  EXPECT_TRUE(is_malformed(std::span(good).first(kIcmpEchoSize - 1), true, false));
  EXPECT_TRUE(is_malformed(good, false, false));  // an ICMPv4 reply type on an ICMPv6 socket
  IcmpEchoBytes request = EncodeIcmpEcho(true, 1, 2, 3);
  EXPECT_TRUE(is_malformed(request, true, false));
  IcmpEchoBytes wrong_seq = good;
  wrong_seq[7] ^= 1;  // the low 16 bits disagree with the payload's sequence
  EXPECT_TRUE(is_malformed(wrong_seq, true, false));
  const std::vector<uint8_t> short_ip{0x45, 0, 0};
  EXPECT_TRUE(is_malformed(short_ip, true, true));
  const std::vector<uint8_t> bad_ihl{0x41};
  EXPECT_TRUE(is_malformed(bad_ihl, true, true));
  const auto empty = DecodeIcmpEchoReply({}, true, true);
  EXPECT_FALSE(empty.reply);
  EXPECT_FALSE(empty.malformed);
}

}  // namespace
}  // namespace meshflow::probe
