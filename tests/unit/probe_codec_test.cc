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

}  // namespace
}  // namespace meshflow::probe
