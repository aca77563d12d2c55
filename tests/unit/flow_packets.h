#pragma once

// Hand-built packets for the flow pipeline's unit tests: every field explicit, so a test says
// exactly which byte it breaks.

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace meshflow::flow::test_packets {

using Bytes = std::vector<uint8_t>;

inline Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

inline void Put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}

inline void Put32(Bytes& b, size_t at, uint32_t v) {
  Put16(b, at, static_cast<uint16_t>(v >> 16));
  Put16(b, at + 2, static_cast<uint16_t>(v));
}

inline Bytes Ethernet(uint16_t ethertype) {
  Bytes b = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0, 0};
  Put16(b, 12, ethertype);
  return b;
}

inline Bytes VlanTag(uint16_t vid, uint16_t next_type) {
  Bytes b(4);
  Put16(b, 0, vid);
  Put16(b, 2, next_type);
  return b;
}

struct V4 {
  uint8_t a, b, c, d;
};

// An IPv4 header for `payload_bytes` of payload; `options` must be a multiple of 4 bytes.
inline Bytes Ipv4Header(uint8_t protocol, V4 src, V4 dst, size_t payload_bytes,
                        const Bytes& options = {}, uint16_t fragment_field = 0, uint16_t id = 1) {
  Bytes b(20);
  b[0] = static_cast<uint8_t>(0x40 | ((20 + options.size()) / 4));
  Put16(b, 2, static_cast<uint16_t>(20 + options.size() + payload_bytes));
  Put16(b, 4, id);
  Put16(b, 6, fragment_field);
  b[8] = 64;
  b[9] = protocol;
  b[12] = src.a, b[13] = src.b, b[14] = src.c, b[15] = src.d;
  b[16] = dst.a, b[17] = dst.b, b[18] = dst.c, b[19] = dst.d;
  // Cat, not insert(): gcc 12 at -O3 reports a false -Warray-bounds on inserting the options.
  return Cat({b, options});
}

inline Bytes Ipv6Address(uint8_t last) {
  Bytes a = {0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  a[15] = last;
  return a;
}

inline Bytes Ipv6Header(uint8_t next, uint8_t src_last, uint8_t dst_last, size_t payload_bytes) {
  Bytes b(8);
  b[0] = 0x60;
  Put16(b, 4, static_cast<uint16_t>(payload_bytes));
  b[6] = next;
  b[7] = 64;
  return Cat({b, Ipv6Address(src_last), Ipv6Address(dst_last)});
}

// An option-style IPv6 extension header (hop-by-hop, routing, destination options) of 8 bytes.
inline Bytes Ipv6Option8(uint8_t next) { return Bytes{next, 0, 1, 4, 0, 0, 0, 0}; }

inline Bytes Tcp(uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq = 1, uint32_t ack = 0,
                 const Bytes& options = {}) {
  Bytes b(20);
  Put16(b, 0, sport);
  Put16(b, 2, dport);
  Put32(b, 4, seq);
  Put32(b, 8, ack);
  b[12] = static_cast<uint8_t>(((20 + options.size()) / 4) << 4);
  b[13] = flags;
  Put16(b, 14, 65535);
  return Cat({b, options});
}

inline Bytes TimestampOption(uint32_t ts_val, uint32_t ts_ecr) {
  Bytes b = {1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0};
  Put32(b, 4, ts_val);
  Put32(b, 8, ts_ecr);
  return b;
}

inline Bytes Udp(uint16_t sport, uint16_t dport, size_t payload_bytes) {
  Bytes b(8);
  Put16(b, 0, sport);
  Put16(b, 2, dport);
  Put16(b, 4, static_cast<uint16_t>(8 + payload_bytes));
  return b;
}

inline Bytes Zeros(size_t n) { return Bytes(n, 0); }

// A TCP/IPv4 packet acer (100.64.0.2) -> ct (100.64.0.1) with `payload` bytes.
inline Bytes TcpV4(uint16_t sport, uint16_t dport, uint8_t flags, size_t payload = 0,
                   const Bytes& tcp_options = {}) {
  const Bytes tcp = Tcp(sport, dport, flags, 1, 0, tcp_options);
  return Cat(
      {Ipv4Header(6, {100, 64, 0, 2}, {100, 64, 0, 1}, tcp.size() + payload), tcp, Zeros(payload)});
}

}  // namespace meshflow::flow::test_packets
