#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gateway/remote_write/segment_log.h"

namespace meshflow::gateway::remote_write {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;
using std::chrono::minutes;

class SegmentLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("segment-log-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<SegmentLog> Open(uint64_t max_bytes = 1 << 20, uint64_t segment_bytes = 1 << 16) {
    SegmentLog::Options o;
    o.dir = dir_.string();
    o.max_bytes = max_bytes;
    o.segment_bytes = segment_bytes;
    o.max_age = hours(2);
    std::string why;
    auto log = SegmentLog::Open(o, clock_, &why);
    EXPECT_NE(log, nullptr) << why;
    return log;
  }
  std::vector<fs::path> Segments() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.path().extension() == ".seg") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  }
  // Writes two records of one sample each and closes the log; the segment that holds them.
  fs::path WriteTwoAndClose(const std::string& first, const std::string& second) {
    auto log = Open();
    EXPECT_TRUE(log->Append(first, 1, 1));
    EXPECT_TRUE(log->Append(second, 1, 2));
    log.reset();
    return Segments().back();
  }
  fs::path dir_;
  FakeClock clock_;
};

TEST_F(SegmentLogTest, AckedRecordsStayAckedAcrossRestarts) {
  auto log = Open();
  ASSERT_TRUE(log->Append("aaa", 3, 10));
  ASSERT_TRUE(log->Append("bb", 2, 20));
  ASSERT_TRUE(log->Append("c", 1, 30));
  EXPECT_EQ(log->pending_samples(), 6u);
  auto batch = log->Next(5);  // whole records only: 3 + 2
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->Joined(), "aaabb");
  EXPECT_EQ(batch->samples, 5u);
  EXPECT_EQ(batch->max_timestamp_ms, 20);
  // Not acknowledged: the same records again.
  EXPECT_EQ(log->Next(5)->Joined(), "aaabb");
  log->Ack(*batch);
  EXPECT_EQ(log->pending_samples(), 1u);

  log.reset();  // as after a crash: the cursor and the records are on disk
  log = Open();
  EXPECT_EQ(log->pending_samples(), 1u);
  batch = log->Next(100);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->Joined(), "c");
  log->Ack(*batch);
  EXPECT_FALSE(log->Next(100));
  log.reset();
  log = Open();
  EXPECT_EQ(log->pending_samples(), 0u);
  EXPECT_FALSE(log->Next(100));
}

TEST_F(SegmentLogTest, ATornTailIsCutAndCounted) {
  const auto seg = WriteTwoAndClose("first", "second");
  fs::resize_file(seg, fs::file_size(seg) - 3);  // the process died mid-write
  auto log = Open();
  EXPECT_EQ(log->corrupt_records(), 1u);
  EXPECT_EQ(log->pending_samples(), 1u);
  EXPECT_EQ(log->Next(10)->Joined(), "first");
  // New records go after it, in a segment of their own.
  ASSERT_TRUE(log->Append("third", 1, 3));
  auto b = log->Next(10);
  EXPECT_EQ(b->Joined(), "first");
  log->Ack(*b);
  EXPECT_EQ(log->Next(10)->Joined(), "third");
}

TEST_F(SegmentLogTest, AFlippedByteFailsTheChecksum) {
  const auto seg = WriteTwoAndClose("payload-one", "payload-two");
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(24 + 3);  // inside the first record's payload
    f.put('X');
  }
  auto log = Open();
  EXPECT_EQ(log->corrupt_records(), 1u);
  EXPECT_EQ(log->pending_samples(), 0u);  // nothing after a damaged record is trusted
}

TEST_F(SegmentLogTest, SizeBoundDropsTheOldestSegmentsCounted) {
  // Segments of about two 100-byte records; at most about 4 segments.
  auto log = Open(/*max_bytes=*/1000, /*segment_bytes=*/200);
  const std::string payload(100, 'p');
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(log->Append(payload, 10, i));
  EXPECT_LE(log->bytes(), 1000u + 2 * 124);
  EXPECT_GT(log->dropped_samples(), 0u);
  EXPECT_EQ(log->dropped_samples() + log->pending_samples(), 400u);
  // What is left is the newest, in order.
  auto b = log->Next(1000);
  ASSERT_TRUE(b);
  EXPECT_GT(b->max_timestamp_ms, 30);
}

TEST_F(SegmentLogTest, AgeBoundDropsOldSegments) {
  auto log = Open(1 << 20, /*segment_bytes=*/10);  // one record per segment
  ASSERT_TRUE(log->Append("old", 1, 1));
  clock_.Advance(hours(3));
  ASSERT_TRUE(log->Append("new", 1, 2));
  ASSERT_TRUE(log->Append("newer", 1, 3));
  EXPECT_EQ(log->dropped_samples(), 1u);
  EXPECT_EQ(log->Next(10)->Joined(), "new");
}

TEST_F(SegmentLogTest, ADropDuringSendDoesNotCountTheBatchInFlight) {
  auto log = Open(/*max_bytes=*/300, /*segment_bytes=*/100);
  const std::string payload(80, 'p');
  ASSERT_TRUE(log->Append(payload, 5, 1));
  auto inflight = log->Next(100);
  ASSERT_TRUE(inflight);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(log->Append(payload, 5, 2 + i));
  // The in-flight segment went over the bound; its batch is not counted as dropped.
  log->Ack(*inflight);
  EXPECT_EQ(log->dropped_samples() + log->pending_samples() + 5, 55u);
}

// Append only writes; the files written since the last hand-out are given once for flushing,
// a finished segment's among them, so the flush happens outside the owner's lock.
TEST_F(SegmentLogTest, WrittenFilesAreHandedOutForFlushingOnce) {
  auto log = Open(1 << 20, /*segment_bytes=*/20);  // one record per segment
  EXPECT_TRUE(log->TakeUnflushed().empty());
  ASSERT_TRUE(log->Append("one", 1, 1));
  auto fds = log->TakeUnflushed();
  EXPECT_EQ(fds.size(), 1u);
  EXPECT_TRUE(SegmentLog::FlushAndClose(fds));
  EXPECT_TRUE(log->TakeUnflushed().empty());
  ASSERT_TRUE(log->Append("two", 1, 2));    // a second segment
  ASSERT_TRUE(log->Append("three", 1, 3));  // and a third
  fds = log->TakeUnflushed();
  EXPECT_EQ(fds.size(), 2u);  // the second, retired, and the third
  EXPECT_TRUE(SegmentLog::FlushAndClose(fds));
  // Flushed or not, what was written is read back, also by a new process.
  log.reset();
  log = Open(1 << 20, 20);
  EXPECT_EQ(log->pending_samples(), 3u);
  EXPECT_EQ(log->Next(10)->Joined(), "one");
}

}  // namespace
}  // namespace meshflow::gateway::remote_write
