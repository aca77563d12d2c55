#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include "collectors/flow/capture/live_handle.h"
#include "collectors/flow/flow_collector.h"

namespace meshflow::flow {
namespace {

using ::testing::HasSubstr;

TEST(IpFilterFor, EveryLinkTypeCompiles) {
  for (int dlt : {DLT_EN10MB, DLT_RAW, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_NULL, DLT_LOOP, DLT_IPV4,
                  DLT_IPV6}) {
    const std::string filter = IpFilterFor(dlt);
    ASSERT_FALSE(filter.empty()) << dlt;
    pcap_t* dead = pcap_open_dead(dlt, 128);
    bpf_program program{};
    EXPECT_EQ(pcap_compile(dead, &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN), 0)
        << dlt << ": " << pcap_geterr(dead);
    pcap_freecode(&program);
    pcap_close(dead);
  }
}

// Runs the Ethernet filter in userland (pcap_offline_filter), where tags are in the frame.
bool EthernetFilterAccepts(const std::vector<uint8_t>& frame) {
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 128);
  bpf_program program{};
  EXPECT_EQ(pcap_compile(dead, &program, IpFilterFor(DLT_EN10MB).c_str(), 1, PCAP_NETMASK_UNKNOWN),
            0);
  pcap_pkthdr header{};
  header.caplen = header.len = static_cast<uint32_t>(frame.size());
  const bool accepted = pcap_offline_filter(&program, &header, frame.data()) != 0;
  pcap_freecode(&program);
  pcap_close(dead);
  return accepted;
}

// An Ethernet frame with the given EtherType/tag words after the MAC addresses, then padding.
std::vector<uint8_t> Frame(std::initializer_list<uint16_t> words) {
  std::vector<uint8_t> frame(12, 0x02);
  for (const uint16_t w : words) {
    frame.push_back(static_cast<uint8_t>(w >> 8));
    frame.push_back(static_cast<uint8_t>(w));
  }
  frame.resize(64, 0);
  return frame;
}

TEST(IpFilterFor, EthernetTakesIpWithAnyTagsAndNothingElse) {
  EXPECT_TRUE(EthernetFilterAccepts(Frame({0x0800})));
  EXPECT_TRUE(EthernetFilterAccepts(Frame({0x86dd})));
  EXPECT_TRUE(EthernetFilterAccepts(Frame({0x8100, 100, 0x0800})));
  EXPECT_TRUE(EthernetFilterAccepts(Frame({0x8100, 100, 0x86dd})));
  EXPECT_TRUE(EthernetFilterAccepts(Frame({0x88a8, 200, 0x8100, 300, 0x0800})));
  EXPECT_FALSE(EthernetFilterAccepts(Frame({0x0806, 0x0001, 0x0800})));  // ARP (ptype IPv4)
  EXPECT_FALSE(EthernetFilterAccepts(Frame({0x8100, 100, 0x0806, 0x0001, 0x0800})));
  EXPECT_FALSE(EthernetFilterAccepts(Frame({0x88cc})));  // LLDP
}

TEST(IpFilterFor, OtherLinkTypes) {
  EXPECT_EQ(IpFilterFor(DLT_RAW), "ip or ip6");
  EXPECT_EQ(IpFilterFor(DLT_IEEE802_11_RADIO), "");
}

TEST(FilterInKernel, NeedsTheWholeProgramAttached) {
  EXPECT_TRUE(FilterInKernel(12, 12));
  EXPECT_FALSE(FilterInKernel(0, 12));  // libpcap detached it and filters in userland
  EXPECT_FALSE(FilterInKernel(1, 12));  // only libpcap's "drop everything" placeholder
  EXPECT_FALSE(FilterInKernel(0, 0));
}

TEST(RingBytesFromMaps, SumsTheSocketsMappings) {
  const std::string maps =
      "55d0c0a00000-55d0c0a21000 r--p 00000000 fd:01 1234 /usr/bin/meshflow-exporter\n"
      "7f0000000000-7f0000200000 rw-s 00000000 00:08 98765 socket:[98765]\n"
      "7f0000400000-7f0000440000 rw-s 00000000 00:08 98766 socket:[98766]\n"
      "7f0000500000-7f0000600000 rw-s 00000000 00:08 98765 socket:[98765]\n"
      "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]\n"
      "garbage line\n";
  EXPECT_EQ(RingBytesFromMaps(maps, 98765), 0x200000 + 0x100000);
  EXPECT_EQ(RingBytesFromMaps(maps, 98766), 0x40000);
  EXPECT_EQ(RingBytesFromMaps(maps, 1), 0);
  EXPECT_EQ(RingBytesFromMaps("", 98765), 0);
}

TEST(RingBytesFromMaps, CorruptRangesSaturateInsteadOfWrapping) {
  const std::string line = "0-7fffffffffffffff rw-s 00000000 00:08 55 socket:[55]\n";
  EXPECT_EQ(RingBytesFromMaps(line + line, 55), INT64_MAX);
}

TEST(HandleOptionsFrom, TakesTheCaptureSection) {
  CaptureConfig c;
  c.snaplen = 200;
  c.buffer_bytes = 4 << 20;
  c.buffer_timeout = std::chrono::milliseconds(250);
  c.promiscuous = true;
  const HandleOptions o = HandleOptionsFrom(c);
  EXPECT_EQ(o.snaplen, 200);
  EXPECT_EQ(o.buffer_bytes, 4 << 20);
  EXPECT_EQ(o.timeout_ms, 250);
  EXPECT_TRUE(o.promiscuous);
}

const prometheus::MetricFamily* Find(const std::vector<prometheus::MetricFamily>& families,
                                     const std::string& name) {
  for (const auto& f : families)
    if (f.name == name) return &f;
  return nullptr;
}

TEST(AppendCaptureFamilies, HealthBecomesTheContractedFamilies) {
  InterfaceHealth h;
  h.name = "wg0";
  h.up = false;
  h.filter_in_kernel = true;
  h.ring_bytes = 2 << 20;
  h.kernel_drops = uint64_t{5} << 32;  // past 32 bits: must not be truncated on the way out
  h.interface_drops = 4;
  std::vector<prometheus::MetricFamily> out;
  AppendCaptureFamilies({h}, {}, out);

  const auto* dropped = Find(out, "meshflow_capture_dropped_packets_total");
  ASSERT_NE(dropped, nullptr);
  EXPECT_EQ(dropped->type, prometheus::MetricType::Counter);
  ASSERT_EQ(dropped->metric.size(), 2u);
  EXPECT_EQ(dropped->metric[0].label[0].value, "wg0");
  EXPECT_EQ(dropped->metric[0].label[1].value, "kernel");
  EXPECT_EQ(dropped->metric[0].counter.value, static_cast<double>(uint64_t{5} << 32));
  EXPECT_EQ(dropped->metric[1].label[1].value, "interface");
  EXPECT_EQ(dropped->metric[1].counter.value, 4);

  const auto* up = Find(out, "meshflow_capture_up");
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->metric[0].gauge.value, 0);
  EXPECT_EQ(Find(out, "meshflow_capture_ring_bytes")->metric[0].gauge.value, 2 << 20);
  EXPECT_EQ(Find(out, "meshflow_capture_filter_in_kernel")->metric[0].gauge.value, 1);
  // The packets handed over and the interface kinds are the pipeline's to write, not the loop's.
  EXPECT_EQ(Find(out, "meshflow_capture_packets_total"), nullptr);
  EXPECT_EQ(Find(out, "meshflow_capture_interface_info"), nullptr);
}

}  // namespace
}  // namespace meshflow::flow
