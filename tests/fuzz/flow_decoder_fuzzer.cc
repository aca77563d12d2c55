// Any bytes on any link type through the flow decoder and on through the whole pipeline: no
// crash, no read past the captured bytes (ASan), and the decoded facts stay consistent.
//
// Input: byte 0 picks the link type, bytes 1-2 add to the wire length (snaplen truncation and
// GSO super-packets), the rest is the captured packet.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "collectors/flow/decoder.h"
#include "collectors/flow/flow_pipeline.h"

namespace {

constexpr int kLinkTypes[] = {1, 101, 12, 14, 228, 229, 113, 276, 0, 108, 147};
constexpr size_t kLinks = sizeof kLinkTypes / sizeof kLinkTypes[0];

meshflow::flow::FlowPipeline& Pipeline(uint32_t (&ids)[kLinks]) {
  static meshflow::flow::FlowPipeline* pipeline = [&] {
    meshflow::Config config = meshflow::DefaultConfig("fuzz");
    config.flows.max_series = 16;  // small, so the overflow path runs too
    config.nodes.push_back({"peer", {*meshflow::IpPrefix::Parse("10.0.0.0/8")}});
    auto* p = new meshflow::flow::FlowPipeline(config, [] {
      return std::vector<meshflow::IpAddress>{*meshflow::IpAddress::Parse("192.168.0.1")};
    });
    for (size_t i = 0; i < kLinks; ++i) {
      ids[i] = p->AddInterface("if" + std::to_string(i), kLinkTypes[i]);
    }
    return p;
  }();
  return *pipeline;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meshflow::flow;
  if (size < 3) return 0;
  const size_t link = data[0] % kLinks;
  const uint32_t extra = static_cast<uint32_t>(data[1]) << 8 | data[2];
  // A copy of exactly the packet bytes, so any read past them is an ASan report.
  const std::vector<uint8_t> packet(data + 3, data + size);
  const auto captured = static_cast<uint32_t>(packet.size());
  const uint32_t wire = captured + extra * 16;

  static const Decoder decoder;
  PacketInfo info;
  const DecodeStatus status = decoder.Decode(kLinkTypes[link], packet.data(), captured, wire, info);
  if (status >= DecodeStatus::kCount) std::abort();
  if (status == DecodeStatus::kOk) {
    if (info.ip_version != 4 && info.ip_version != 6) std::abort();
    // The counted bytes never exceed what was on the wire (the clamp bounds wire lengths).
    if (info.ip_bytes > std::max(captured, std::min(wire, Decoder::kMaxWireBytes))) std::abort();
    if (info.has_tcp_header && !info.has_ports) std::abort();
    if (info.has_tcp_timestamp && !info.has_tcp_header) std::abort();
    if (info.fragment_offset != 0 && (info.has_ports || !info.is_fragment)) std::abort();
    if (info.encap == Encap::kNone && info.encap_overhead_bytes != 0) std::abort();
  }

  static uint32_t ids[kLinks];
  static int64_t now_ns = 0;
  now_ns += 1'000'000;
  FlowPipeline& pipeline = Pipeline(ids);
  CapturedPacket p;
  p.timestamp_ns = now_ns;
  p.captured_length = captured;
  p.wire_length = wire;
  p.data = packet.data();
  pipeline.OnPacket(ids[link], p);
  pipeline.Flush();  // TCP packets are classified and counted when tracked
  return 0;
}
