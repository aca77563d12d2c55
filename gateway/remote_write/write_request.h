#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshflow::gateway::remote_write {

// A series' labels, __name__ included, sorted by name as the protocol requires.
using Labels = std::vector<std::pair<std::string, std::string>>;

// One sample of one series. Labels are shared between the scrape loop and the queues, so a
// series costs its labels once however many samples of it are queued.
struct SeriesSample {
  std::shared_ptr<const Labels> labels;
  int64_t timestamp_ms = 0;
  double value = 0;
};

// Prometheus' staleness marker: a NaN with this exact bit pattern says "the series ended here".
inline constexpr uint64_t kStaleNaNBits = 0x7ff0000000000002ULL;
double StaleNaN();
bool IsStaleNaN(double value);

// The protobuf encoding of a remote-write 1.0 WriteRequest (prometheus/prompb/remote.proto),
// written by hand: one TimeSeries per run of consecutive samples sharing one label set (the same
// pointer; equal label sets behind different pointers are written as separate TimeSeries).
// `external` (sorted by name) is merged into every series' labels, a series' own label of the
// same name winning, as Prometheus applies external labels.
std::string EncodeWriteRequest(std::span<const SeriesSample> samples, const Labels& external = {});

// Snappy block format, as the protocol's Content-Encoding: snappy requires (not framed).
std::string SnappyCompress(std::string_view data);
// Appends the uncompressed `data` to `out`; false when `data` is not a valid snappy block.
bool SnappyUncompressAppend(std::string_view data, std::string& out);

// A stable 64-bit hash of a label set (FNV-1a over names and values), for sharding.
uint64_t HashLabels(const Labels& labels);

}  // namespace meshflow::gateway::remote_write
