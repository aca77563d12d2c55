#include "collectors/flow/replay.h"

#include <pcap/pcap.h>
#include <prometheus/text_serializer.h>

#include <filesystem>
#include <memory>

#include "collectors/flow/flow_pipeline.h"

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

pcap_t* Open(const std::string& file, std::string* error) {
  char message[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p =
      pcap_open_offline_with_tstamp_precision(file.c_str(), PCAP_TSTAMP_PRECISION_NANO, message);
  if (p == nullptr && error != nullptr) {
    *error = "cannot read capture file " + file + ": " + message;
  }
  return p;
}

// Runs an open handle to its end through the sink.
bool Drain(pcap_t* p, const std::string& file, PacketSink& sink, const std::string& iface,
           std::string* error) {
  ReplayTarget target{&sink, sink.AddInterface(iface, pcap_datalink(p))};
  int rc;
  while ((rc = pcap_dispatch(p, -1, &OnRecord, reinterpret_cast<u_char*>(&target))) > 0) {
  }
  if (rc == PCAP_ERROR) {
    if (error != nullptr) *error = "error reading capture file " + file + ": " + pcap_geterr(p);
    return false;
  }
  return true;
}

}  // namespace

bool ReplayFile(const std::string& file, PacketSink& sink, std::string* error,
                const std::string& interface_name) {
  std::unique_ptr<pcap_t, PcapCloser> p(Open(file, error));
  if (!p) return false;
  return Drain(p.get(), file, sink, interface_name.empty() ? StemOf(file) : interface_name, error);
}

int ReplayCaptures(const Config& config, const std::vector<std::string>& files, std::ostream& out,
                   std::ostream& err) {
  if (files.empty()) {
    err << "replay: no capture files given\n";
    return 1;
  }
  // Open every file before counting anything, so a bad argument fails fast and prints nothing.
  std::vector<std::unique_ptr<pcap_t, PcapCloser>> handles;
  std::string error;
  for (const auto& file : files) {
    handles.emplace_back(Open(file, &error));
    if (!handles.back()) {
      err << "replay: " << error << "\n";
      return 1;
    }
  }
  FlowPipeline pipeline(config, [] { return std::vector<IpAddress>{}; });
  for (size_t i = 0; i < files.size(); ++i) {
    if (!Drain(handles[i].get(), files[i], pipeline, StemOf(files[i]), &error)) {
      err << "replay: " << error << "\n";
      return 1;
    }
  }
  std::vector<prometheus::MetricFamily> families;
  pipeline.CollectCaptureFamilies(families);
  pipeline.Collect(families);
  prometheus::TextSerializer().Serialize(out, families);
  return 0;
}

}  // namespace meshflow::flow
