#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/clock.h"

namespace meshflow::gateway::remote_write {

// One shard's write-ahead log on disk: numbered segment files of checksummed records, read from
// a persisted acknowledgement cursor. The log does not look into a record (the queue stores one
// compressed request body per record). Bounded by bytes and age: whole segments go first,
// oldest first, their unacknowledged samples counted as dropped.
//
// Durability is split in two so that the disk's flush latency never stalls the writer: Append
// only write()s (the record is then in the kernel's page cache and survives a SIGKILL of the
// process), and TakeUnflushed hands the files written since the last flush to a caller that
// fdatasyncs them outside its lock (group commit; what survives a power loss).
// Not thread-safe: the owner serializes every call.
class SegmentLog {
 public:
  struct Options {
    std::string dir;                         // created when missing
    uint64_t segment_bytes = 4 << 20;        // a new segment starts past this size
    uint64_t max_bytes = uint64_t{1} << 30;  // on disk, over all segments
    // A segment whose newest record is older than this goes, even when not yet sent.
    std::chrono::nanoseconds max_age = std::chrono::hours(2);
  };
  // Opens the log, checks every record after the cursor and cuts a torn tail (a crash while
  // writing). Nullptr and `error` when the folder cannot be used.
  static std::unique_ptr<SegmentLog> Open(Options options, const Clock& clock, std::string* error);
  ~SegmentLog();
  SegmentLog(const SegmentLog&) = delete;
  SegmentLog& operator=(const SegmentLog&) = delete;

  // Appends one record with one write() (not flushed); then enforces the bounds. False on a
  // write error (logged); the samples are then lost and counted by the caller.
  bool Append(std::string_view payload, uint32_t samples, int64_t max_timestamp_ms);
  // Descriptors of every file written since the last call (duplicates: the log may close its
  // own meanwhile); the caller fdatasyncs and closes them, see FlushAndClose. Empty when nothing
  // was written.
  std::vector<int> TakeUnflushed();
  // fdatasync then close each; false when a flush failed (logged).
  static bool FlushAndClose(const std::vector<int>& fds);

  struct Batch {
    std::vector<std::string> records;  // payloads, oldest first
    uint32_t samples = 0;
    int64_t max_timestamp_ms = 0;
    uint64_t segment = 0;
    uint64_t begin = 0, end = 0;  // offsets in the segment
    std::string Joined() const;   // the payloads end to end
  };
  // Records after the read position, up to `max_samples` (at least one record), within one
  // segment; nullopt when none are waiting. The same records come again until Ack.
  std::optional<Batch> Next(uint32_t max_samples);
  // Moves the cursor past `batch` (acknowledged or refused for good) and writes it down (not
  // flushed: after a power loss the last acknowledged batches may go again, at least once).
  void Ack(const Batch& batch);

  uint64_t pending_samples() const { return pending_samples_; }
  uint64_t bytes() const;
  uint64_t dropped_samples() const { return dropped_samples_; }
  uint64_t corrupt_records() const { return corrupt_records_; }

 private:
  struct Record {
    uint64_t offset;
    uint32_t length;  // header and payload
    uint32_t samples;
  };
  struct Segment {
    uint64_t index;
    uint64_t size = 0;
    std::chrono::system_clock::time_point last_write;
    std::vector<Record> records;
  };
  SegmentLog(Options options, const Clock& clock) : options_(std::move(options)), clock_(clock) {}
  bool Load(std::string* error);
  bool StartSegment(std::string* error);
  void PersistCursor();
  void EnforceBounds();
  void DropFront();
  std::string PathOf(uint64_t index) const;

  const Options options_;
  const Clock& clock_;
  std::deque<Segment> segments_;  // oldest first; the last is written to
  int write_fd_ = -1;
  bool write_fd_dirty_ = false;   // written since the last TakeUnflushed
  std::vector<int> retired_fds_;  // finished segments written and not yet handed out for flushing
  int read_fd_ = -1;              // the segment Next reads, kept open between batches
  uint64_t read_segment_ = 0;
  uint64_t cursor_segment_ = 0, cursor_offset_ = 0;
  // The batch handed out by Next and not yet acknowledged: it stays counted while in flight.
  std::optional<std::pair<uint64_t, uint64_t>> inflight_end_;
  uint64_t pending_samples_ = 0;
  uint64_t dropped_samples_ = 0;
  uint64_t corrupt_records_ = 0;
};

}  // namespace meshflow::gateway::remote_write
