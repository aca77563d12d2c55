#pragma once

#include <pcap/pcap.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "collectors/flow/packet_sink.h"

namespace meshflow::flow {

struct HandleOptions {
  int snaplen = 128;
  int64_t buffer_bytes = 2 * 1024 * 1024;
  int timeout_ms = 100;  // TPACKET_V3 block retire timeout: how long a quiet block waits
  bool promiscuous = false;
};

// What an opened handle actually got, read back from the kernel rather than assumed.
struct HandleFacts {
  int link_type = 0;
  int tpacket_version = -1;  // PACKET_VERSION: 2 means libpcap fell back from V3
  int64_t ring_bytes = 0;    // the mmapped ring, from /proc/self/maps; 0 when not found
  std::string filter;        // the BPF expression, empty when none applies to the link type
  bool filter_in_kernel = false;
  int kernel_filter_length = 0;  // instructions attached to the socket (SO_GET_FILTER)
  int compiled_filter_length = 0;
};

class CaptureError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The capture filter for a DLT_* link type: IP only, VLAN-tagged too where the link has tags.
// Empty when the link type has no IP filter we can express (then nothing is filtered).
std::string IpFilterFor(int link_type);

// Whether the filter runs in the kernel: libpcap falls back to filtering in userland when the
// kernel refuses the program and only logs that on stderr, so the socket itself is asked
// (SO_GET_FILTER gives the attached program's length; none attached means userland).
bool FilterInKernel(int kernel_length, int compiled_length);

// The size of the packet ring mapped for socket inode `inode`, summed over the lines of a
// /proc/<pid>/maps text. libpcap shrinks the ring by 5% steps on ENOMEM without telling, and
// the kernel offers no getsockopt for PACKET_RX_RING, but the mapping shows what was obtained.
int64_t RingBytesFromMaps(const std::string& maps, uint64_t inode);

// One live libpcap handle: TPACKET_V3, non-blocking, IP filter in the kernel.
class LiveHandle {
 public:
  // Creates and activates the handle; throws CaptureError with libpcap's message.
  static std::unique_ptr<LiveHandle> Open(const std::string& name, const HandleOptions& options);
  ~LiveHandle();
  LiveHandle(const LiveHandle&) = delete;
  LiveHandle& operator=(const LiveHandle&) = delete;

  const std::string& name() const { return name_; }
  int selectable_fd() const { return fd_; }
  const HandleFacts& facts() const { return facts_; }
  // Hands up to `max_packets` ready packets to `sink`. Returns the count (0: nothing ready), or
  // -1 when the handle failed (interface gone or down); error() says why.
  int Dispatch(int max_packets, PacketSink& sink, uint32_t interface_id);
  // pcap_stats; false with error() set when it fails.
  bool Stats(pcap_stat& stats);
  std::string error() const;

 private:
  LiveHandle(std::string name, pcap_t* pcap) : name_(std::move(name)), pcap_(pcap) {}
  void ReadBackFacts(const HandleOptions& options);
  void InstallFilter();

  std::string name_;
  pcap_t* pcap_ = nullptr;
  int fd_ = -1;
  HandleFacts facts_;
};

}  // namespace meshflow::flow
