#include "collectors/flow/replay.h"

#include <fcntl.h>
#include <pcap/pcap.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>

#include "collectors/flow/flow_pipeline.h"
#include "common/text_format/writer.h"

namespace meshflow::flow {
namespace {

struct ReplayTarget {
  PacketSink* sink;
  uint32_t interface_id;
};

void OnRecord(u_char* user, const pcap_pkthdr* header, const u_char* bytes) {
  const auto* target = reinterpret_cast<const ReplayTarget*>(user);
  CapturedPacket packet;
  // Opened with nanosecond precision: tv_usec holds nanoseconds.
  packet.timestamp_ns = static_cast<int64_t>(header->ts.tv_sec) * 1'000'000'000 +
                        static_cast<int64_t>(header->ts.tv_usec);
  packet.captured_length = header->caplen;
  packet.wire_length = header->len;
  packet.data = bytes;
  target->sink->OnPacket(target->interface_id, packet);
}

struct PcapCloser {
  void operator()(pcap_t* p) const { pcap_close(p); }
};

std::string StemOf(const std::string& file) { return std::filesystem::path(file).stem().string(); }

// A classic pcap file read from a memory map. libpcap's savefile reader makes two fread calls
// per packet, which cost a third of the offline path; this reader costs a few loads. Anything
// that is not classic pcap (pcapng above all) goes through libpcap.
class MappedPcap {
 public:
  // Null when the file is not classic pcap or cannot be mapped: libpcap then decides.
  static std::unique_ptr<MappedPcap> Open(const std::string& file) {
    const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return nullptr;
    struct stat st;
    void* map = MAP_FAILED;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= kFileHeader) {
      map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    }
    close(fd);
    if (map == MAP_FAILED) return nullptr;
    std::unique_ptr<MappedPcap> m(
        new MappedPcap(static_cast<const uint8_t*>(map), static_cast<size_t>(st.st_size)));
    if (!m->ReadHeader()) return nullptr;
    madvise(map, m->size_, MADV_SEQUENTIAL);
    return m;
  }
  ~MappedPcap() { munmap(const_cast<uint8_t*>(data_), size_); }
  MappedPcap(const MappedPcap&) = delete;
  MappedPcap& operator=(const MappedPcap&) = delete;

  int link_type() const { return link_type_; }

  bool Run(const std::string& file, PacketSink& sink, uint32_t interface_id,
           std::string* error) const {
    size_t offset = kFileHeader;
    size_t released = 0;  // page-aligned start of the part not yet handed back
    CapturedPacket packet;
    while (offset < size_) {
      if (size_ - offset < kRecordHeader) {
        return Fail(error, file, "truncated record header at byte " + std::to_string(offset));
      }
      const uint8_t* r = data_ + offset;
      const uint32_t seconds = Load32(r);
      const uint32_t fraction = Load32(r + 4);
      const uint32_t captured = Load32(r + 8);
      const uint32_t wire = Load32(r + 12);
      // libpcap refuses records above its largest snaplen too: the file is corrupt there.
      if (captured > kMaxCaptured) {
        return Fail(error, file,
                    "record at byte " + std::to_string(offset) + " claims " +
                        std::to_string(captured) + " captured bytes");
      }
      if (size_ - offset - kRecordHeader < captured) {
        return Fail(error, file, "truncated record at byte " + std::to_string(offset));
      }
      packet.timestamp_ns = static_cast<int64_t>(seconds) * 1'000'000'000 +
                            static_cast<int64_t>(fraction) * fraction_ns_;
      packet.captured_length = captured;
      packet.wire_length = wire;
      packet.data = r + kRecordHeader;
      sink.OnPacket(interface_id, packet);
      offset += kRecordHeader + captured;
      // Hand read pages back as we go: they stay in the page cache, but a multi-gigabyte
      // capture should not show up as the replay's resident memory.
      if (offset - released >= kReleaseBytes) {
        const size_t end = offset & ~(kReleaseBytes - 1);
        madvise(const_cast<uint8_t*>(data_) + released, end - released, MADV_DONTNEED);
        released = end;
      }
    }
    return true;
  }

 private:
  static constexpr off_t kFileHeader = 24;
  static constexpr size_t kRecordHeader = 16;
  static constexpr uint32_t kMaxCaptured = 262144;
  static constexpr size_t kReleaseBytes = size_t{4} << 20;  // a multiple of every page size

  MappedPcap(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  static bool Fail(std::string* error, const std::string& file, const std::string& what) {
    if (error != nullptr) *error = "error reading capture file " + file + ": " + what;
    return false;
  }

  bool ReadHeader() {
    uint32_t magic;
    std::memcpy(&magic, data_, 4);
    switch (magic) {
      case 0xa1b2c3d4:
        break;
      case 0xa1b23c4d:
        fraction_ns_ = 1;
        break;
      case 0xd4c3b2a1:
        swapped_ = true;
        break;
      case 0x4d3cb2a1:
        swapped_ = true;
        fraction_ns_ = 1;
        break;
      default:
        return false;
    }
    // The upper bits of the link type field carry FCS information, not the type.
    link_type_ = static_cast<int>(Load32(data_ + 20) & 0x03ffffff);
    return true;
  }

  uint32_t Load32(const uint8_t* p) const {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return swapped_ ? __builtin_bswap32(v) : v;
  }

  const uint8_t* data_;
  size_t size_;
  bool swapped_ = false;
  int64_t fraction_ns_ = 1000;  // microsecond files; nanosecond ones set 1
  int link_type_ = 0;
};

// One opened capture file, whichever reader serves it.
struct CaptureSource {
  std::unique_ptr<MappedPcap> mapped;
  std::unique_ptr<pcap_t, PcapCloser> pcap;
};

bool OpenSource(const std::string& file, CaptureReader reader, CaptureSource& source,
                std::string* error) {
  if (reader == CaptureReader::kAuto) {
    source.mapped = MappedPcap::Open(file);
    if (source.mapped) return true;
  }
  char message[PCAP_ERRBUF_SIZE] = {};
  source.pcap.reset(
      pcap_open_offline_with_tstamp_precision(file.c_str(), PCAP_TSTAMP_PRECISION_NANO, message));
  if (!source.pcap && error != nullptr) {
    *error = "cannot read capture file " + file + ": " + message;
  }
  return source.pcap != nullptr;
}

// Runs an open file to its end through the sink, then flushes it: every packet read is counted
// when this returns, even when the file ends in error.
bool Drain(CaptureSource& source, const std::string& file, PacketSink& sink,
           const std::string& iface, std::string* error) {
  if (source.mapped) {
    const uint32_t id = sink.AddInterface(iface, source.mapped->link_type());
    const bool ok = source.mapped->Run(file, sink, id, error);
    sink.Flush();
    return ok;
  }
  pcap_t* p = source.pcap.get();
  ReplayTarget target{&sink, sink.AddInterface(iface, pcap_datalink(p))};
  int rc;
  while ((rc = pcap_dispatch(p, -1, &OnRecord, reinterpret_cast<u_char*>(&target))) > 0) {
  }
  sink.Flush();
  if (rc == PCAP_ERROR) {
    if (error != nullptr) *error = "error reading capture file " + file + ": " + pcap_geterr(p);
    return false;
  }
  return true;
}

}  // namespace

bool ReplayFile(const std::string& file, PacketSink& sink, std::string* error,
                const std::string& interface_name, CaptureReader reader) {
  CaptureSource source;
  if (!OpenSource(file, reader, source, error)) return false;
  return Drain(source, file, sink, interface_name.empty() ? StemOf(file) : interface_name, error);
}

int ReplayCaptures(const Config& config, const std::vector<std::string>& files, std::ostream& out,
                   std::ostream& err) {
  if (files.empty()) {
    err << "replay: no capture files given\n";
    return 1;
  }
  // Open every file before counting anything, so a bad argument fails fast and prints nothing.
  std::vector<CaptureSource> sources(files.size());
  std::string error;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!OpenSource(files[i], CaptureReader::kAuto, sources[i], &error)) {
      err << "replay: " << error << "\n";
      return 1;
    }
  }
  FlowPipeline pipeline(config, [] { return std::vector<IpAddress>{}; });
  for (size_t i = 0; i < files.size(); ++i) {
    if (!Drain(sources[i], files[i], pipeline, StemOf(files[i]), &error)) {
      err << "replay: " << error << "\n";
      return 1;
    }
  }
  std::vector<prometheus::MetricFamily> families;
  pipeline.CollectCaptureFamilies(families);
  pipeline.Collect(families);
  out << SerializeExposition(families);
  return 0;
}

}  // namespace meshflow::flow
