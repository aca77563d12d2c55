// Any bytes through the probe codec and the reflector: no crash, a decoded packet re-encodes to
// the same bytes, and the reflector never answers with more bytes than it got, nor to anything
// that is not a well-formed request. The same bytes as an ICMP echo reply on every socket kind:
// no crash, and a decoded reply re-encodes to the same payload.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "collectors/probe/codec.h"
#include "collectors/probe/reflector_core.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meshflow::probe;
  const std::span<const uint8_t> bytes(data, size);
  const DecodeResult decoded = Decode(bytes);
  if (decoded.packet) {
    const ProbeBytes again = Encode(*decoded.packet);
    if (size != again.size() || std::memcmp(again.data(), data, size) != 0) std::abort();
  }
  static ReflectorCore reflector(1e6, 64, 64);
  static int64_t now_ns = 0;
  now_ns += 1000;
  const auto reply = reflector.Handle(meshflow::IpAddress::FromV4(0x7f000001), bytes,
                                      std::chrono::nanoseconds(now_ns));
  if (reply) {
    if (reply->size() > size) std::abort();
    if (!decoded.packet || decoded.packet->type != ProbeType::kRequest) std::abort();
    const DecodeResult r = Decode(*reply);
    if (!r.packet || r.packet->type != ProbeType::kReply ||
        r.packet->sequence != decoded.packet->sequence)
      std::abort();
  }
  for (const bool v4 : {true, false}) {
    for (const bool with_ip : {false, true}) {
      const IcmpDecodeResult icmp = DecodeIcmpEchoReply(bytes, v4, with_ip);
      if (!icmp.reply) continue;
      const IcmpEchoBytes again =
          EncodeIcmpEcho(v4, icmp.reply->id, icmp.reply->session, icmp.reply->sequence);
      const size_t at = with_ip ? size_t{data[0] & 0x0fu} * 4 : 0;
      if (std::memcmp(again.data() + 4, data + at + 4, kIcmpEchoSize - 4) != 0) std::abort();
    }
  }
  return 0;
}
