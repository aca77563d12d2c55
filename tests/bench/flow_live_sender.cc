// Sends the frames of a pcap file out of an interface at a fixed packet rate, for the live capture
// benchmark (tests/bench/flow_live.sh). tcpreplay writes one frame per send() and tops out near
// 80k packets/s in a small VM; this batches 64 frames per sendmmsg() on an AF_PACKET socket that
// bypasses the qdisc, so the capture side, not the sender, is what runs out first.
//   flow_live_sender IFACE FILE.pcap PACKETS_PER_SECOND(0: as fast as possible) SECONDS
// Prints: "sent <packets> seconds <elapsed> pps <rate>".
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <pcap/pcap.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr size_t kBatch = 64;

double Now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s IFACE FILE.pcap PACKETS_PER_SECOND SECONDS\n", argv[0]);
    return 2;
  }
  const std::string iface = argv[1];
  const double pps = std::atof(argv[3]);
  const double seconds = std::atof(argv[4]);

  char errbuf[PCAP_ERRBUF_SIZE];
  pcap_t* file = pcap_open_offline(argv[2], errbuf);
  if (file == nullptr) {
    std::fprintf(stderr, "%s\n", errbuf);
    return 1;
  }
  std::vector<std::vector<uint8_t>> frames;
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  while (pcap_next_ex(file, &header, &data) == 1) frames.emplace_back(data, data + header->caplen);
  pcap_close(file);
  if (frames.empty()) {
    std::fprintf(stderr, "no frames in %s\n", argv[2]);
    return 1;
  }

  const int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) {
    std::perror("socket(AF_PACKET)");
    return 1;
  }
  const int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_ifindex = static_cast<int>(if_nametoindex(iface.c_str()));
  addr.sll_halen = ETH_ALEN;
  if (addr.sll_ifindex == 0) {
    std::fprintf(stderr, "no interface %s\n", iface.c_str());
    return 1;
  }

  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  const uint64_t total = pps > 0 ? static_cast<uint64_t>(pps * seconds) : UINT64_MAX;
  uint64_t sent = 0;
  size_t next = 0;
  const double start = Now();
  while (sent < total) {
    const double elapsed = Now() - start;
    if (pps <= 0 && elapsed >= seconds) break;
    if (pps > 0) {
      // Pace by batches: a batch goes out once the schedule says its first packet is due.
      const double due = static_cast<double>(sent) / pps;
      if (due > elapsed) {
        const double wait = due - elapsed;
        if (wait > 0.0002) usleep(static_cast<useconds_t>(wait * 1e6));
        continue;
      }
    }
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBatch, total - sent));
    for (size_t i = 0; i < n; ++i) {
      auto& frame = frames[(next + i) % frames.size()];
      iov[i] = {frame.data(), frame.size()};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_name = &addr;
      msgs[i].msg_hdr.msg_namelen = sizeof addr;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int done = sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), 0);
    if (done < 0) {
      if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) continue;
      std::perror("sendmmsg");
      return 1;
    }
    sent += static_cast<uint64_t>(done);
    next = (next + static_cast<size_t>(done)) % frames.size();
  }
  const double elapsed = Now() - start;
  std::printf("sent %llu seconds %.3f pps %.0f\n", static_cast<unsigned long long>(sent), elapsed,
              static_cast<double>(sent) / elapsed);
  close(fd);
  return 0;
}
