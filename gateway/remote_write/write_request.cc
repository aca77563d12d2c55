#include "gateway/remote_write/write_request.h"

#include <snappy.h>

#include <bit>
#include <cstring>
#include <memory>

namespace meshflow::gateway::remote_write {
namespace {

// Wire types of the protobuf encoding.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kFixed64 = 1;
constexpr uint32_t kLengthDelimited = 2;

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void PutTag(std::string& out, uint32_t field, uint32_t wire_type) {
  PutVarint(out, (field << 3) | wire_type);
}

size_t StringFieldSize(size_t length) { return 1 + VarintSize(length) + length; }

void PutString(std::string& out, uint32_t field, std::string_view s) {
  PutTag(out, field, kLengthDelimited);
  PutVarint(out, s.size());
  out.append(s);
}

// Label { string name = 1; string value = 2; }
size_t LabelSize(const std::pair<std::string, std::string>& l) {
  return StringFieldSize(l.first.size()) + StringFieldSize(l.second.size());
}

// Sample { double value = 1; int64 timestamp = 2; }
size_t SampleSize(const SeriesSample& s) {
  return 1 + 8 + 1 + VarintSize(static_cast<uint64_t>(s.timestamp_ms));
}

// A Label field of a TimeSeries: tag, length, Label { name = 1; value = 2; }.
void PutLabelField(std::string& out, std::string_view name, std::string_view value) {
  PutTag(out, 1, kLengthDelimited);
  PutVarint(out, StringFieldSize(name.size()) + StringFieldSize(value.size()));
  PutString(out, 1, name);
  PutString(out, 2, value);
}

// External labels as the encoder merges them: name, and its Label field.
using EncodedLabels = std::vector<std::pair<std::string_view, std::string>>;

}  // namespace

LabelSet::LabelSet(const Labels& sorted) : hash_(HashLabels(sorted)) {
  size_t size = 0;
  for (const auto& l : sorted) {
    const size_t n = LabelSize(l);
    size += 1 + VarintSize(n) + n;
  }
  encoded_.reserve(size);
  for (const auto& [name, value] : sorted) PutLabelField(encoded_, name, value);
}

Labels LabelSet::ToLabels() const {
  Labels out;
  ForEach([&](std::string_view name, std::string_view value, std::string_view) {
    out.emplace_back(name, value);
  });
  return out;
}

double StaleNaN() { return std::bit_cast<double>(kStaleNaNBits); }

bool IsStaleNaN(double value) { return std::bit_cast<uint64_t>(value) == kStaleNaNBits; }

namespace {

// `at(k)` is the k-th of `count` samples.
template <typename At>
void Encode(size_t count, At&& at, const Labels& external, std::string& out) {
  out.clear();
  // Most requests hold series of one shape: sized from the first (its labels, the external
  // ones, one sample, the headers), the buffer rarely grows.
  if (count > 0) out.reserve(count * (at(0).labels->encoded().size() + 48));
  EncodedLabels encoded_external;
  std::vector<std::pair<size_t, size_t>> splits;  // (offset in the series' fields, external)
  for (const auto& [name, value] : external) {
    encoded_external.emplace_back(name, std::string());
    PutLabelField(encoded_external.back().second, name, value);
  }
  size_t i = 0;
  while (i < count) {
    size_t end = i + 1;
    // Label sets are shared per series (the scrape loop interns them), so the same pointer is
    // the same series; comparing the labels themselves cost more than it saved.
    while (end < count && at(end).labels == at(i).labels) ++end;
    // TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }
    const std::string_view fields = at(i).labels->encoded();
    size_t series_size = fields.size();
    // Where each external label goes among the series' own fields (a byte offset), those the
    // series has itself left out: the labels are then copied in runs, not one by one.
    splits.clear();
    if (!encoded_external.empty()) {
      size_t e = 0;
      auto place = [&](size_t offset) {
        splits.emplace_back(offset, e);
        series_size += encoded_external[e++].second.size();
      };
      at(i).labels->ForEach([&](std::string_view name, std::string_view, std::string_view field) {
        while (e < encoded_external.size() && encoded_external[e].first < name)
          place(static_cast<size_t>(field.data() - fields.data()));
        if (e < encoded_external.size() && encoded_external[e].first == name) ++e;
      });
      while (e < encoded_external.size()) place(fields.size());
    }
    for (size_t k = i; k < end; ++k) {
      const size_t n = SampleSize(at(k));
      series_size += 1 + VarintSize(n) + n;
    }
    PutTag(out, 1, kLengthDelimited);  // WriteRequest.timeseries
    PutVarint(out, series_size);
    size_t from = 0;
    for (const auto& [offset, e] : splits) {
      out.append(fields.substr(from, offset - from));
      out.append(encoded_external[e].second);
      from = offset;
    }
    out.append(fields.substr(from));
    for (size_t k = i; k < end; ++k) {
      PutTag(out, 2, kLengthDelimited);
      PutVarint(out, SampleSize(at(k)));
      PutTag(out, 1, kFixed64);
      const uint64_t bits = std::bit_cast<uint64_t>(at(k).value);
      char little_endian[8];
      for (int b = 0; b < 8; ++b) little_endian[b] = static_cast<char>((bits >> (8 * b)) & 0xff);
      out.append(little_endian, 8);
      PutTag(out, 2, kVarint);
      // int64 fields encode negative values as their 64-bit two's complement.
      PutVarint(out, static_cast<uint64_t>(at(k).timestamp_ms));
    }
    i = end;
  }
}

}  // namespace

std::string EncodeWriteRequest(std::span<const SeriesSample> samples, const Labels& external) {
  std::string out;
  Encode(
      samples.size(), [&](size_t k) -> const SeriesSample& { return samples[k]; }, external, out);
  return out;
}

void EncodeWriteRequest(std::span<const SeriesSample* const> samples, const Labels& external,
                        std::string& out) {
  Encode(
      samples.size(), [&](size_t k) -> const SeriesSample& { return *samples[k]; }, external, out);
}

std::string SnappyCompress(std::string_view data) {
  // Into a scratch buffer, not a std::string sized to the bound: resizing a string zero-fills
  // it, which cost more than copying out the (much smaller) compressed bytes.
  thread_local std::unique_ptr<char[]> scratch;
  thread_local size_t scratch_size = 0;
  const size_t bound = snappy::MaxCompressedLength(data.size());
  if (scratch_size < bound) {
    scratch = std::make_unique_for_overwrite<char[]>(bound);
    scratch_size = bound;
  }
  size_t length = 0;
  snappy::RawCompress(data.data(), data.size(), scratch.get(), &length);
  return std::string(scratch.get(), length);
}

bool SnappyUncompressAppend(std::string_view data, std::string& out) {
  size_t length = 0;
  // The queue's own records, checksummed; the bound only guards against a length gone wrong.
  constexpr size_t kMaxBody = size_t{1} << 30;
  if (!snappy::GetUncompressedLength(data.data(), data.size(), &length) || length > kMaxBody)
    return false;
  const size_t at = out.size();
  out.resize(at + length);
  if (!snappy::RawUncompress(data.data(), data.size(), out.data() + at)) {
    out.resize(at);
    return false;
  }
  return true;
}

uint64_t HashLabels(const Labels& labels) {
  uint64_t h = 14695981039346656037ULL;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= 0xff;  // a byte no label holds, so ("ab","c") and ("a","bc") differ
    h *= 1099511628211ULL;
  };
  for (const auto& [name, value] : labels) {
    mix(name);
    mix(value);
  }
  return h;
}

}  // namespace meshflow::gateway::remote_write
