#pragma once

#include <cstdint>
#include <string>

namespace meshflow::flow {

// One packet as a capture source hands it over: what libpcap gave, nothing decoded yet.
struct CapturedPacket {
  int64_t timestamp_ns = 0;  // capture time, CLOCK_REALTIME as libpcap reports it
  uint32_t captured_length = 0;
  uint32_t wire_length = 0;
  const uint8_t* data = nullptr;
};

// Where capture sources (live libpcap handles, offline pcap/pcapng replay) deliver packets.
// Live capture and replay share one sink implementation, so fixtures test the real path.
class PacketSink {
 public:
  virtual ~PacketSink() = default;
  // Announces an interface and its DLT_* link type; returns the id its packets carry. The same
  // name returns the same id again, so an interface that comes back keeps its counters.
  virtual uint32_t AddInterface(const std::string& name, int link_type) = 0;
  virtual void OnPacket(uint32_t interface_id, const CapturedPacket& packet) = 0;
  // The input pauses or ends: finish whatever the sink holds back for speed (packets it has
  // taken but not fully counted yet), so what it reports covers every packet handed over.
  virtual void Flush() {}
};

}  // namespace meshflow::flow
