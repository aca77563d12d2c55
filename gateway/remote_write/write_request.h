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

// A series' label set as the scrape loop keeps it and the queues share it: the labels (sorted by
// name, __name__ included) held as the protobuf Label fields of a TimeSeries, written once. A
// series then costs one small buffer, not two std::strings per label, and the encoder copies
// its labels instead of encoding them again for every request. Its shard hash is kept with it.
class LabelSet {
 public:
  explicit LabelSet(const Labels& sorted);

  // The Label fields (TimeSeries field 1), back to back.
  std::string_view encoded() const { return encoded_; }
  // HashLabels of the labels.
  uint64_t hash() const { return hash_; }
  // Calls f(name, value, field) for each label in name order; `field` is that label's bytes
  // within encoded().
  template <typename F>
  void ForEach(F&& f) const;
  Labels ToLabels() const;
  bool operator==(const LabelSet& other) const { return encoded_ == other.encoded_; }

 private:
  std::string encoded_;
  uint64_t hash_ = 0;
};

// One sample of one series. Label sets are shared between the scrape loop and the queues, so a
// series costs its labels once however many samples of it are queued.
struct SeriesSample {
  std::shared_ptr<const LabelSet> labels;
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
// The same for samples held elsewhere, into `out` (cleared first), so that one buffer serves
// many requests.
void EncodeWriteRequest(std::span<const SeriesSample* const> samples, const Labels& external,
                        std::string& out);

// Snappy block format, as the protocol's Content-Encoding: snappy requires (not framed).
std::string SnappyCompress(std::string_view data);
// Appends the uncompressed `data` to `out`; false when `data` is not a valid snappy block.
bool SnappyUncompressAppend(std::string_view data, std::string& out);

// A stable 64-bit hash of a label set (FNV-1a over names and values), for sharding.
uint64_t HashLabels(const Labels& labels);

namespace internal {
// Reads a varint at `p` (within bounds the LabelSet wrote itself) and moves `p` past it.
inline uint64_t ReadVarint(const char*& p) {
  uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    const auto b = static_cast<unsigned char>(*p++);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (b < 0x80) return v;
  }
}
}  // namespace internal

template <typename F>
void LabelSet::ForEach(F&& f) const {
  const char* p = encoded_.data();
  const char* const end = p + encoded_.size();
  while (p < end) {
    const char* const field = p;
    ++p;  // tag: field 1, length-delimited
    const uint64_t length = internal::ReadVarint(p);
    const char* const field_end = p + length;
    ++p;  // Label.name's tag
    const uint64_t name_length = internal::ReadVarint(p);
    const std::string_view name(p, name_length);
    p += name_length;
    ++p;  // Label.value's tag
    const uint64_t value_length = internal::ReadVarint(p);
    const std::string_view value(p, value_length);
    p = field_end;
    f(name, value, std::string_view(field, static_cast<size_t>(field_end - field)));
  }
}

}  // namespace meshflow::gateway::remote_write
