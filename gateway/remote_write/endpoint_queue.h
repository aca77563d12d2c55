#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/http/http_client.h"
#include "gateway/gateway_config.h"
#include "gateway/remote_write/response.h"
#include "gateway/remote_write/segment_log.h"
#include "gateway/remote_write/write_request.h"

namespace meshflow::gateway::remote_write {

// Where a request goes: the network in the daemon, a stub receiver in tests.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual http::FetchResult Post(const http::ClientRequest& request,
                                 std::chrono::nanoseconds timeout, const http::TlsClient* tls) = 0;
};

// common/http's Fetch on a fresh connection per request.
class HttpTransport final : public Transport {
 public:
  http::FetchResult Post(const http::ClientRequest& request, std::chrono::nanoseconds timeout,
                         const http::TlsClient* tls) override;
};

// Waits between retries; tests advance a FakeClock instead of sleeping.
class Waiter {
 public:
  virtual ~Waiter() = default;
  // Waits `duration`; false when the queue is stopping and the wait was cut short.
  virtual bool Wait(std::chrono::nanoseconds duration) = 0;
  // Cuts every present and future wait short.
  virtual void Stop() = 0;
};

// What one endpoint's queue has done so far.
struct QueueStats {
  uint64_t pending = 0;          // samples queued, not yet acknowledged
  uint64_t sent = 0;             // samples the receiver acknowledged
  uint64_t retried = 0;          // samples sent again after a retryable failure
  uint64_t failed = 0;           // samples the receiver refused for good (4xx other than 429)
  uint64_t dropped = 0;          // samples dropped because the queue was full
  uint64_t relabel_dropped = 0;  // samples write_relabel_configs left out
  uint64_t bytes_sent = 0;       // compressed request bodies acknowledged
  uint64_t bytes_on_disk = 0;    // the write-ahead queue's segments
  int64_t highest_sent_timestamp_ms = 0;
  uint64_t shards = 0;
};

// The queue of one remote_write endpoint: samples sharded by series hash, so each series' samples
// leave in the order they came, each shard sending one batch at a time and retrying it until it
// is acknowledged (5xx, 429, network errors, with capped exponential backoff and jitter) or
// refused for good (other 4xx, counted and logged with the receiver's reason).
class EndpointQueue {
 public:
  // `run_threads` false: nothing is sent until a test calls SendBatch().
  // With queue.path set, each shard keeps its samples in a SegmentLog under path/shard-N, and
  // what was not acknowledged before a stop or crash is sent after the next start.
  EndpointQueue(RemoteWriteEndpoint config, Transport& transport, bool run_threads = true,
                std::unique_ptr<Waiter> waiter = nullptr,
                const Clock& clock = SystemClock::Instance());
  ~EndpointQueue();
  EndpointQueue(const EndpointQueue&) = delete;
  EndpointQueue& operator=(const EndpointQueue&) = delete;

  // A reloaded config for the same endpoint: URL, headers, credentials, TLS, relabelling and
  // backoff change at once; the queued samples stay. Shard count and capacity stay as started.
  void Reconfigure(RemoteWriteEndpoint config);
  // Adds external labels, relabels, and queues each surviving sample on its series' shard as
  // records of encoded, compressed requests, built before the shard's lock is taken. On disk
  // they are written without waiting for the disk: the flusher thread fdatasyncs (see Flush).
  void Append(const std::vector<SeriesSample>& samples);
  // Returns once every sample appended before the call is flushed to the disk (at once for a
  // queue in memory). Appends that arrive together share one flush per shard.
  void Flush();
  // Sends one batch of shard `shard` (up to max_samples_per_send) until it is acknowledged,
  // refused or the queue stops. False when the shard was empty.
  bool SendBatch(size_t shard);
  // Stops the senders; a batch being retried is abandoned.
  void Stop();

  QueueStats Stats() const;
  const std::string& name() const { return name_; }
  size_t shard_count() const { return shards_.size(); }

 private:
  // One request body: up to max_samples_per_send samples, encoded and compressed when
  // appended, sent as it is (or joined with the next ones when they are small).
  struct Record {
    std::string body;
    uint32_t samples = 0;
    int64_t highest_ms = 0;
  };
  struct Shard {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<Record> records;       // without a queue path
    size_t queued_samples = 0;        // in `records`
    std::unique_ptr<SegmentLog> log;  // with one: the records live on disk
    std::chrono::steady_clock::time_point oldest_queued;
    std::atomic<size_t> inflight{0};  // samples of the batch being sent
    std::thread thread;
  };
  struct Translated {
    // Held, so its address cannot be reused by another label set while the entry exists.
    std::shared_ptr<const LabelSet> source;
    std::shared_ptr<const LabelSet> labels;  // null: dropped by relabelling
  };
  void RunShard(size_t index);
  void RunFlusher();
  // Flushes every shard's files written so far; returns the append sequence number covered.
  uint64_t FlushOnce();
  size_t Pending(const Shard& shard) const;  // caller holds shard.mutex
  Translated Translate(const std::shared_ptr<const LabelSet>& source,
                       const RemoteWriteEndpoint& config) const;

  const std::string name_;
  Transport& transport_;
  std::unique_ptr<Waiter> waiter_;
  const size_t capacity_;

  mutable std::mutex config_mutex_;
  std::shared_ptr<const RemoteWriteEndpoint> config_;

  // With write_relabel_configs, labels as sent per label set of the scrape loop: relabelling runs
  // once per series, not per sample. Entries whose source nobody else holds are swept when the
  // map doubles. Without them the scrape loop's label sets are sent as they are, and no map is
  // kept.
  std::mutex translate_mutex_;
  std::unordered_map<const LabelSet*, Translated> translated_;
  size_t sweep_at_ = 1024;

  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<bool> stopping_{false};

  // Group commit for the disk queue: Append numbers itself after its writes, the flusher
  // flushes and publishes the number it covered, Flush waits for its own.
  bool on_disk_ = false;
  bool flusher_running_ = false;
  std::atomic<uint64_t> appended_seq_{0};
  std::mutex flush_mutex_;
  std::condition_variable flush_wake_;  // to the flusher: something was appended
  std::condition_variable flushed_;     // to Flush callers: flushed_seq_ moved
  uint64_t flush_requested_ = 0;        // the newest sequence number someone waits for
  uint64_t flushed_seq_ = 0;
  std::mutex flush_once_mutex_;  // one FlushOnce at a time
  std::thread flusher_;
  std::mutex rng_mutex_;
  std::mt19937_64 rng_;

  std::atomic<uint64_t> sent_{0}, retried_{0}, failed_{0}, dropped_{0}, relabel_dropped_{0},
      bytes_sent_{0};
  std::atomic<int64_t> highest_sent_ms_{0};
};

}  // namespace meshflow::gateway::remote_write
