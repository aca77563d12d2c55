#include "collectors/flow/capture/live_handle.h"

#include <linux/if_packet.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdint>
#include <fstream>
#include <sstream>

namespace meshflow::flow {
namespace {

struct DispatchContext {
  PacketSink* sink;
  uint32_t interface_id;
  int64_t ns_per_subsecond;  // 1 with nanosecond timestamps, 1000 with microseconds
};

void OnPcapPacket(u_char* user, const pcap_pkthdr* header, const u_char* bytes) {
  const auto* ctx = reinterpret_cast<const DispatchContext*>(user);
  CapturedPacket packet;
  packet.timestamp_ns = static_cast<int64_t>(header->ts.tv_sec) * 1'000'000'000 +
                        static_cast<int64_t>(header->ts.tv_usec) * ctx->ns_per_subsecond;
  packet.captured_length = header->caplen;
  packet.wire_length = header->len;
  packet.data = bytes;
  ctx->sink->OnPacket(ctx->interface_id, packet);
}

}  // namespace

std::string IpFilterFor(int link_type) {
  switch (link_type) {
    case DLT_EN10MB:
      // Linux moves the outer VLAN tag into skb metadata before the filter runs, so a tagged IP
      // frame already shows its inner EtherType at offset 12 and matches "ip". Tags still in the
      // frame (QinQ's inner tag, or all of them in userland, where libpcap puts the tag back)
      // are matched by offset. Not the "vlan" keyword: with the kernel's metadata, libpcap 1.10
      // then reads offset 16 of the untagged frame and lets tagged ARP through.
      return "ip or ip6 or ((ether[12:2] = 0x8100 or ether[12:2] = 0x88a8 or "
             "ether[12:2] = 0x9100) and (ether[16:2] = 0x800 or ether[16:2] = 0x86dd or "
             "((ether[16:2] = 0x8100 or ether[16:2] = 0x88a8) and "
             "(ether[20:2] = 0x800 or ether[20:2] = 0x86dd))))";
    case DLT_RAW:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_NULL:
    case DLT_LOOP:
      return "ip or ip6";
    case DLT_IPV4:
      return "ip";
    case DLT_IPV6:
      return "ip6";
    default:
      return "";
  }
}

bool FilterInKernel(int kernel_length, int compiled_length) {
  return kernel_length > 0 && kernel_length == compiled_length;
}

int64_t RingBytesFromMaps(const std::string& maps, uint64_t inode) {
  const std::string name = "socket:[" + std::to_string(inode) + "]";
  int64_t total = 0;
  std::istringstream lines(maps);
  std::string line;
  while (std::getline(lines, line)) {
    // start-end perms offset dev inode path
    std::istringstream fields(line);
    std::string range, perms, offset, dev, path;
    uint64_t line_inode = 0;
    if (!(fields >> range >> perms >> offset >> dev >> line_inode >> path)) continue;
    if (line_inode != inode || path != name) continue;
    const auto dash = range.find('-');
    if (dash == std::string::npos) continue;
    try {
      const uint64_t start = std::stoull(range.substr(0, dash), nullptr, 16);
      const uint64_t end = std::stoull(range.substr(dash + 1), nullptr, 16);
      // Saturating: a real maps file cannot overflow, a corrupt one must not wrap the sum.
      if (end > start) {
        total = end - start > static_cast<uint64_t>(INT64_MAX - total)
                    ? INT64_MAX
                    : total + static_cast<int64_t>(end - start);
      }
    } catch (const std::exception&) {
      continue;  // not a maps line after all
    }
  }
  return total;
}

std::unique_ptr<LiveHandle> LiveHandle::Open(const std::string& name,
                                             const HandleOptions& options) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* pcap = pcap_create(name.c_str(), errbuf);
  if (pcap == nullptr) throw CaptureError("pcap_create " + name + ": " + errbuf);
  std::unique_ptr<LiveHandle> handle(new LiveHandle(name, pcap));

  pcap_set_snaplen(pcap, options.snaplen);
  pcap_set_promisc(pcap, options.promiscuous ? 1 : 0);
  // A non-zero timeout retires partly filled TPACKET_V3 blocks, so quiet interfaces deliver;
  // immediate mode would turn V3 off (libpcap uses V2 for it), so it stays off.
  pcap_set_timeout(pcap, options.timeout_ms);
  pcap_set_immediate_mode(pcap, 0);
  pcap_set_buffer_size(pcap, static_cast<int>(options.buffer_bytes));
  // Nanoseconds when the kernel offers them; Dispatch asks which precision was granted.
  pcap_set_tstamp_precision(pcap, PCAP_TSTAMP_PRECISION_NANO);
  const int status = pcap_activate(pcap);
  if (status < 0) {
    const std::string detail = pcap_geterr(pcap);
    throw CaptureError("pcap_activate " + name + ": " + pcap_statustostr(status) +
                       (detail.empty() ? "" : " (" + detail + ")"));
  }
  if (status > 0)
    spdlog::warn("capture iface={} pcap_activate warning: {} {}", name, pcap_statustostr(status),
                 pcap_geterr(pcap));
  if (pcap_setnonblock(pcap, 1, errbuf) != 0)
    throw CaptureError("pcap_setnonblock " + name + ": " + errbuf);
  handle->fd_ = pcap_get_selectable_fd(pcap);
  if (handle->fd_ < 0) throw CaptureError("no selectable fd for " + name);
  handle->facts_.link_type = pcap_datalink(pcap);
  handle->InstallFilter();
  handle->ReadBackFacts(options);
  return handle;
}

void LiveHandle::InstallFilter() {
  facts_.filter = IpFilterFor(facts_.link_type);
  if (facts_.filter.empty()) {
    spdlog::warn("capture iface={} link_type={} has no IP filter: every packet is read", name_,
                 pcap_datalink_val_to_name(facts_.link_type));
    return;
  }
  bpf_program program{};
  if (pcap_compile(pcap_, &program, facts_.filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
    throw CaptureError("pcap_compile \"" + facts_.filter + "\" on " + name_ + ": " +
                       pcap_geterr(pcap_));
  facts_.compiled_filter_length = static_cast<int>(program.bf_len);
  const int rc = pcap_setfilter(pcap_, &program);
  pcap_freecode(&program);
  if (rc != 0) throw CaptureError("pcap_setfilter on " + name_ + ": " + pcap_geterr(pcap_));
  // With optlen 0 the kernel answers SO_GET_FILTER with the attached program's length only.
  socklen_t length = 0;
  if (getsockopt(fd_, SOL_SOCKET, SO_GET_FILTER, nullptr, &length) == 0)
    facts_.kernel_filter_length = static_cast<int>(length);
  facts_.filter_in_kernel =
      FilterInKernel(facts_.kernel_filter_length, facts_.compiled_filter_length);
}

void LiveHandle::ReadBackFacts(const HandleOptions& options) {
  int version = -1;
  socklen_t length = sizeof version;
  if (getsockopt(fd_, SOL_PACKET, PACKET_VERSION, &version, &length) == 0)
    facts_.tpacket_version = version + 1;  // TPACKET_V1 is 0
  struct stat st {};
  if (fstat(fd_, &st) == 0) {
    std::ifstream maps("/proc/self/maps");
    std::stringstream text;
    text << maps.rdbuf();
    facts_.ring_bytes = RingBytesFromMaps(text.str(), st.st_ino);
  }
  const auto log_level =
      facts_.filter_in_kernel || facts_.filter.empty() ? spdlog::level::info : spdlog::level::warn;
  spdlog::log(log_level,
              "capture opened iface={} link_type={} tpacket_version={} ring_bytes_requested={} "
              "ring_bytes_obtained={} snaplen={} filter_in_kernel={} filter_instructions={}/{}",
              name_, pcap_datalink_val_to_name(facts_.link_type), facts_.tpacket_version,
              options.buffer_bytes, facts_.ring_bytes, options.snaplen, facts_.filter_in_kernel,
              facts_.kernel_filter_length, facts_.compiled_filter_length);
  if (facts_.tpacket_version != 3)
    spdlog::warn("capture iface={} runs TPACKET_V{} instead of V3", name_, facts_.tpacket_version);
  if (!facts_.filter.empty() && !facts_.filter_in_kernel)
    spdlog::warn(
        "capture iface={} filter runs in userland: the kernel refused it, every packet is copied "
        "to the ring",
        name_);
}

LiveHandle::~LiveHandle() {
  if (pcap_ != nullptr) pcap_close(pcap_);
}

int LiveHandle::Dispatch(int max_packets, PacketSink& sink, uint32_t interface_id) {
  DispatchContext ctx{&sink, interface_id,
                      pcap_get_tstamp_precision(pcap_) == PCAP_TSTAMP_PRECISION_NANO ? 1 : 1000};
  const int n = pcap_dispatch(pcap_, max_packets, OnPcapPacket, reinterpret_cast<u_char*>(&ctx));
  return n < 0 ? -1 : n;
}

bool LiveHandle::Stats(pcap_stat& stats) { return pcap_stats(pcap_, &stats) == 0; }

std::string LiveHandle::error() const { return pcap_geterr(pcap_); }

}  // namespace meshflow::flow
