#include "gateway/remote_write/segment_log.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace meshflow::gateway::remote_write {
namespace {

namespace fs = std::filesystem;

// Record: magic, payload length, samples, CRC-32 (of the rest of the header and the payload),
// newest timestamp, payload. Little-endian.
// "MFR2": the payload is a whole compressed request body (the first format, "MFRW", held
// uncompressed chunks and is not read).
constexpr uint32_t kMagic = 0x3252464d;
constexpr size_t kHeader = 24;
constexpr char kCursorFile[] = "cursor";

void Put32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void Put64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t Get32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}
uint64_t Get64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

uint32_t Checksum(const char* samples_field, const char* timestamp_field,
                  std::string_view payload) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(samples_field), 4);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(timestamp_field), 8);
  crc =
      crc32(crc, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(payload.size()));
  return static_cast<uint32_t>(crc);
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Header and payload with one writev (completed by plain writes if the kernel wrote less).
bool WriteRecord(int fd, const char* header, std::string_view payload) {
  iovec iov[2] = {{const_cast<char*>(header), kHeader},
                  {const_cast<char*>(payload.data()), payload.size()}};
  ssize_t n;
  do {
    n = ::writev(fd, iov, 2);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return false;
  auto done = static_cast<size_t>(n);
  if (done < kHeader) {
    return WriteAll(fd, header + done, kHeader - done) &&
           WriteAll(fd, payload.data(), payload.size());
  }
  done -= kHeader;
  return WriteAll(fd, payload.data() + done, payload.size() - done);
}

bool ReadAt(int fd, char* data, size_t size, uint64_t offset) {
  while (size > 0) {
    const ssize_t n = ::pread(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

// Reads and checks the record at `offset`; nullopt when it is torn or corrupt.
std::optional<std::pair<SegmentLog::Batch, uint32_t>> ReadRecord(int fd, uint64_t offset,
                                                                 uint64_t file_size) {
  if (offset + kHeader > file_size) return std::nullopt;
  char header[kHeader];
  if (!ReadAt(fd, header, kHeader, offset)) return std::nullopt;
  if (Get32(header) != kMagic) return std::nullopt;
  const uint32_t length = Get32(header + 4);
  if (offset + kHeader + length > file_size) return std::nullopt;
  SegmentLog::Batch b;
  std::string& payload = b.records.emplace_back(length, '\0');
  if (length > 0 && !ReadAt(fd, payload.data(), length, offset + kHeader)) return std::nullopt;
  if (Checksum(header + 8, header + 16, payload) != Get32(header + 12)) return std::nullopt;
  b.samples = Get32(header + 8);
  b.max_timestamp_ms = static_cast<int64_t>(Get64(header + 16));
  return std::make_pair(std::move(b), static_cast<uint32_t>(kHeader + length));
}

}  // namespace

std::string SegmentLog::PathOf(uint64_t index) const {
  char name[32];
  std::snprintf(name, sizeof(name), "%020llu.seg", static_cast<unsigned long long>(index));
  return options_.dir + "/" + name;
}

std::unique_ptr<SegmentLog> SegmentLog::Open(Options options, const Clock& clock,
                                             std::string* error) {
  std::unique_ptr<SegmentLog> log(new SegmentLog(std::move(options), clock));
  if (!log->Load(error)) return nullptr;
  return log;
}

SegmentLog::~SegmentLog() {
  // A clean stop flushes what it wrote, so only a crash can leave records unflushed.
  FlushAndClose(TakeUnflushed());
  if (write_fd_ >= 0) ::close(write_fd_);
  if (read_fd_ >= 0) ::close(read_fd_);
}

std::string SegmentLog::Batch::Joined() const {
  std::string out;
  for (const auto& r : records) out += r;
  return out;
}

std::vector<int> SegmentLog::TakeUnflushed() {
  std::vector<int> fds = std::move(retired_fds_);
  retired_fds_.clear();
  if (write_fd_ >= 0 && write_fd_dirty_) {
    const int fd = ::fcntl(write_fd_, F_DUPFD_CLOEXEC, 0);
    if (fd >= 0) {
      fds.push_back(fd);
      write_fd_dirty_ = false;
    } else {
      spdlog::warn("remote_write queue {}: cannot duplicate a descriptor to flush: {}",
                   options_.dir, std::strerror(errno));
    }
  }
  return fds;
}

bool SegmentLog::FlushAndClose(const std::vector<int>& fds) {
  bool ok = true;
  for (int fd : fds) {
    if (::fdatasync(fd) != 0) {
      spdlog::error("remote_write queue: cannot flush a segment: {}", std::strerror(errno));
      ok = false;
    }
    ::close(fd);
  }
  return ok;
}

bool SegmentLog::Load(std::string* error) {
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (ec) {
    *error = "cannot create " + options_.dir + ": " + ec.message();
    return false;
  }
  std::vector<uint64_t> indexes;
  for (const auto& entry : fs::directory_iterator(options_.dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() != 24 || !name.ends_with(".seg")) continue;
    indexes.push_back(std::stoull(name.substr(0, 20)));
  }
  if (ec) {
    *error = "cannot list " + options_.dir + ": " + ec.message();
    return false;
  }
  std::sort(indexes.begin(), indexes.end());
  // The cursor: segment and offset of the first record not yet acknowledged.
  cursor_segment_ = indexes.empty() ? 0 : indexes.front();
  cursor_offset_ = 0;
  if (int fd = ::open((options_.dir + "/" + kCursorFile).c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
    char buf[20];
    if (ReadAt(fd, buf, sizeof(buf), 0) &&
        Get32(buf + 16) ==
            static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(buf), 16))) {
      cursor_segment_ = Get64(buf);
      cursor_offset_ = Get64(buf + 8);
    } else {
      spdlog::warn("remote_write queue {}: cursor unreadable, resending from the oldest segment",
                   options_.dir);
    }
    ::close(fd);
  }
  for (uint64_t index : indexes) {
    const std::string path = PathOf(index);
    if (index < cursor_segment_) {  // acknowledged before a crash, not yet removed
      fs::remove(path, ec);
      continue;
    }
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    ::fstat(fd, &st);
    Segment seg;
    seg.index = index;
    seg.last_write = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(st.st_mtim.tv_sec) +
            std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
    const auto file_size = static_cast<uint64_t>(st.st_size);
    uint64_t offset = 0;
    while (offset < file_size) {
      auto record = ReadRecord(fd, offset, file_size);
      if (!record) {
        // A torn tail (the process died mid-write) or damage: cut here, count it.
        ++corrupt_records_;
        spdlog::warn("remote_write queue {}: segment {} cut at byte {} of {} (torn or corrupt)",
                     options_.dir, index, offset, file_size);
        if (::ftruncate(fd, static_cast<off_t>(offset)) != 0) {
          spdlog::warn("remote_write queue {}: cannot cut segment {}", options_.dir, index);
        }
        break;
      }
      if (index > cursor_segment_ || offset >= cursor_offset_) {
        seg.records.push_back({offset, record->second, record->first.samples});
        pending_samples_ += record->first.samples;
      }
      offset += record->second;
    }
    seg.size = std::min(offset, file_size);
    ::close(fd);
    segments_.push_back(std::move(seg));
  }
  if (!segments_.empty() && cursor_segment_ < segments_.front().index) {
    cursor_segment_ = segments_.front().index;
    cursor_offset_ = 0;
  }
  // Never append behind a tail that was cut: writing starts in a fresh segment.
  return StartSegment(error);
}

bool SegmentLog::StartSegment(std::string* error) {
  if (write_fd_ >= 0) {
    // Still to be flushed by the next TakeUnflushed's caller, not here under the owner's lock.
    if (write_fd_dirty_) {
      retired_fds_.push_back(write_fd_);
    } else {
      ::close(write_fd_);
    }
    write_fd_ = -1;
    write_fd_dirty_ = false;
  }
  const uint64_t index =
      segments_.empty() ? std::max<uint64_t>(cursor_segment_, 1) : segments_.back().index + 1;
  write_fd_ = ::open(PathOf(index).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (write_fd_ < 0) {
    if (error) *error = "cannot create " + PathOf(index) + ": " + std::strerror(errno);
    return false;
  }
  Segment seg;
  seg.index = index;
  seg.last_write = clock_.Wall();
  segments_.push_back(std::move(seg));
  if (segments_.size() == 1) {
    cursor_segment_ = index;
    cursor_offset_ = 0;
  }
  return true;
}

bool SegmentLog::Append(std::string_view payload, uint32_t samples, int64_t max_timestamp_ms) {
  if (segments_.back().size >= options_.segment_bytes) {
    std::string why;
    if (!StartSegment(&why)) {
      spdlog::error("remote_write queue {}: {}", options_.dir, why);
      return false;
    }
  }
  char header[kHeader] = {};
  Put32(header, kMagic);
  Put32(header + 4, static_cast<uint32_t>(payload.size()));
  Put32(header + 8, samples);
  Put64(header + 16, static_cast<uint64_t>(max_timestamp_ms));
  Put32(header + 12, Checksum(header + 8, header + 16, payload));
  Segment& seg = segments_.back();
  const size_t length = kHeader + payload.size();
  // One write per record, so a crash leaves whole records or a tail the next start cuts.
  if (!WriteRecord(write_fd_, header, payload)) {
    spdlog::error("remote_write queue {}: cannot write segment {}: {}", options_.dir, seg.index,
                  std::strerror(errno));
    // The file may now hold part of the record: start over in a new segment.
    if (::ftruncate(write_fd_, static_cast<off_t>(seg.size)) != 0) StartSegment(nullptr);
    return false;
  }
  write_fd_dirty_ = true;
  seg.records.push_back({seg.size, static_cast<uint32_t>(length), samples});
  seg.size += length;
  seg.last_write = clock_.Wall();
  pending_samples_ += samples;
  EnforceBounds();
  return true;
}

std::optional<SegmentLog::Batch> SegmentLog::Next(uint32_t max_samples) {
  for (auto& seg : segments_) {
    if (seg.index < cursor_segment_) continue;
    auto it = std::find_if(seg.records.begin(), seg.records.end(), [&](const Record& r) {
      return seg.index > cursor_segment_ || r.offset >= cursor_offset_;
    });
    if (it == seg.records.end()) continue;
    if (read_fd_ < 0 || read_segment_ != seg.index) {
      if (read_fd_ >= 0) ::close(read_fd_);
      read_fd_ = ::open(PathOf(seg.index).c_str(), O_RDONLY | O_CLOEXEC);
      read_segment_ = seg.index;
      if (read_fd_ < 0) return std::nullopt;
    }
    const int fd = read_fd_;
    Batch batch;
    batch.segment = seg.index;
    batch.begin = it->offset;
    batch.end = it->offset;
    for (; it != seg.records.end(); ++it) {
      if (batch.samples > 0 && batch.samples + it->samples > max_samples) break;
      auto record = ReadRecord(fd, it->offset, seg.size);
      if (!record) {
        // Damaged since it was written: skip it, counted.
        ++corrupt_records_;
        dropped_samples_ += it->samples;
        pending_samples_ -= std::min<uint64_t>(pending_samples_, it->samples);
        batch.end = it->offset + it->length;
        continue;
      }
      batch.records.push_back(std::move(record->first.records.front()));
      batch.samples += record->first.samples;
      batch.max_timestamp_ms = std::max(batch.max_timestamp_ms, record->first.max_timestamp_ms);
      batch.end = it->offset + it->length;
    }
    if (batch.records.empty()) {
      // Every record of the run was damaged: they are skipped for good.
      cursor_segment_ = batch.segment;
      cursor_offset_ = batch.end;
      PersistCursor();
      continue;
    }
    inflight_end_ = std::make_pair(batch.segment, batch.end);
    return batch;
  }
  return std::nullopt;
}

void SegmentLog::Ack(const Batch& batch) {
  inflight_end_.reset();
  // Dropped meanwhile by a bound: the cursor has moved on already.
  if (batch.segment < cursor_segment_ ||
      (batch.segment == cursor_segment_ && batch.end <= cursor_offset_))
    return;
  pending_samples_ -= std::min<uint64_t>(pending_samples_, batch.samples);
  cursor_segment_ = batch.segment;
  cursor_offset_ = batch.end;
  // A finished segment that is no longer written goes.
  while (segments_.size() > 1 && (segments_.front().index < cursor_segment_ ||
                                  (segments_.front().index == cursor_segment_ &&
                                   cursor_offset_ >= segments_.front().size))) {
    std::error_code ec;
    fs::remove(PathOf(segments_.front().index), ec);
    segments_.pop_front();
    if (cursor_segment_ < segments_.front().index) {
      cursor_segment_ = segments_.front().index;
      cursor_offset_ = 0;
    }
  }
  PersistCursor();
}

void SegmentLog::PersistCursor() {
  char buf[20];
  Put64(buf, cursor_segment_);
  Put64(buf + 8, cursor_offset_);
  Put32(buf + 16, static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(buf), 16)));
  const std::string tmp = options_.dir + "/" + kCursorFile + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  // Not flushed: a cursor lost to a power loss only sends acknowledged batches again.
  const bool ok = WriteAll(fd, buf, sizeof(buf));
  ::close(fd);
  // rename is atomic: a crash leaves the old cursor or the new one, never half of either.
  if (ok) ::rename(tmp.c_str(), (options_.dir + "/" + kCursorFile).c_str());
}

uint64_t SegmentLog::bytes() const {
  uint64_t total = 0;
  for (const auto& s : segments_) total += s.size;
  return total;
}

void SegmentLog::DropFront() {
  Segment& seg = segments_.front();
  uint64_t lost = 0;
  for (const auto& r : seg.records) {
    if (seg.index < cursor_segment_ || (seg.index == cursor_segment_ && r.offset < cursor_offset_))
      continue;
    // The batch in flight is not counted lost here: it may still be acknowledged.
    if (inflight_end_ && inflight_end_->first == seg.index && r.offset < inflight_end_->second)
      continue;
    lost += r.samples;
  }
  dropped_samples_ += lost;
  pending_samples_ -= std::min(pending_samples_, lost);
  if (inflight_end_ && inflight_end_->first == seg.index) {
    // Its samples leave the pending count now; Ack will find the cursor past it.
    uint64_t inflight = 0;
    for (const auto& r : seg.records) {
      if (r.offset < inflight_end_->second &&
          (seg.index > cursor_segment_ || r.offset >= cursor_offset_))
        inflight += r.samples;
    }
    pending_samples_ -= std::min(pending_samples_, inflight);
  }
  if (lost > 0) {
    spdlog::warn(
        "remote_write queue {}: over its size or age bound, dropped segment {} with {} "
        "unsent samples",
        options_.dir, seg.index, lost);
  }
  std::error_code ec;
  fs::remove(PathOf(seg.index), ec);
  segments_.pop_front();
  if (cursor_segment_ <= segments_.front().index) {
    if (cursor_segment_ < segments_.front().index) cursor_offset_ = 0;
    cursor_segment_ = segments_.front().index;
  }
  PersistCursor();
}

void SegmentLog::EnforceBounds() {
  const auto now = clock_.Wall();
  // The segment being written always stays.
  while (segments_.size() > 1 &&
         (bytes() > options_.max_bytes || now - segments_.front().last_write > options_.max_age))
    DropFront();
}

}  // namespace meshflow::gateway::remote_write
