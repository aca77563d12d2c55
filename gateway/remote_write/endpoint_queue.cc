#include "gateway/remote_write/endpoint_queue.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <span>

#include "common/daemon/version.h"
#include "gateway/remote_write/relabel.h"

namespace meshflow::gateway::remote_write {
namespace {

using SteadyClock = std::chrono::steady_clock;

class RealWaiter final : public Waiter {
 public:
  bool Wait(std::chrono::nanoseconds duration) override {
    std::unique_lock lock(mutex_);
    return !cv_.wait_for(lock, duration, [this] { return stopping_; });
  }
  void Stop() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace

http::FetchResult HttpTransport::Post(const http::ClientRequest& request,
                                      std::chrono::nanoseconds timeout,
                                      const http::TlsClient* tls) {
  // Receivers answer with a short text at most; a long body is only read up to this bound.
  constexpr size_t kMaxResponseBytes = 64 << 10;
  return http::Fetch(
      request, SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(timeout),
      kMaxResponseBytes, tls);
}

EndpointQueue::EndpointQueue(RemoteWriteEndpoint config, Transport& transport, bool run_threads,
                             std::unique_ptr<Waiter> waiter, const Clock& clock)
    : name_(config.name),
      transport_(transport),
      waiter_(waiter ? std::move(waiter) : std::make_unique<RealWaiter>()),
      capacity_(static_cast<size_t>(config.queue.capacity)),
      rng_(std::random_device{}()) {
  const auto shards = static_cast<size_t>(config.queue.max_shards);
  config_ = std::make_shared<const RemoteWriteEndpoint>(std::move(config));
  for (size_t i = 0; i < shards; ++i) {
    shards_.push_back(std::make_unique<Shard>());
    if (config_->queue.path.empty()) continue;
    SegmentLog::Options o;
    o.dir = config_->queue.path + "/shard-" + std::to_string(i);
    o.max_bytes = static_cast<uint64_t>(config_->queue.max_bytes) / shards;
    o.segment_bytes = std::clamp<uint64_t>(o.max_bytes / 8, 64 << 10, 16 << 20);
    o.max_age = config_->queue.max_age;
    std::string why;
    shards_[i]->log = SegmentLog::Open(o, clock, &why);
    if (!shards_[i]->log) {
      spdlog::error("remote_write {}: no queue on disk for shard {}, keeping it in memory: {}",
                    name_, i, why);
    } else if (shards_[i]->log->pending_samples() > 0) {
      spdlog::info("remote_write {}: shard {} resumes with {} samples from {}", name_, i,
                   shards_[i]->log->pending_samples(), o.dir);
    }
  }
  if (!config_->queue.path.empty()) {
    // The shard count is fixed per start; a series' samples from before a change of max_shards
    // sit in a folder no shard reads (reading them beside the new shards could reorder them).
    std::error_code ec;
    for (size_t i = shards; i < 64; ++i) {
      const std::string dir = config_->queue.path + "/shard-" + std::to_string(i);
      if (std::filesystem::exists(dir, ec)) {
        spdlog::warn("remote_write {}: {} is left from a larger max_shards and is not sent", name_,
                     dir);
      }
    }
  }
  on_disk_ =
      std::any_of(shards_.begin(), shards_.end(), [](const auto& s) { return s->log != nullptr; });
  if (run_threads) {
    for (size_t i = 0; i < shards; ++i)
      shards_[i]->thread = std::thread([this, i] { RunShard(i); });
    if (on_disk_) {
      flusher_running_ = true;
      flusher_ = std::thread([this] { RunFlusher(); });
    }
  }
}

EndpointQueue::~EndpointQueue() { Stop(); }

void EndpointQueue::Stop() {
  stopping_ = true;
  waiter_->Stop();
  for (auto& s : shards_) {
    { std::lock_guard lock(s->mutex); }
    s->wake.notify_all();
  }
  for (auto& s : shards_) {
    if (s->thread.joinable()) s->thread.join();
  }
  { std::lock_guard lock(flush_mutex_); }
  flush_wake_.notify_all();
  flushed_.notify_all();
  if (flusher_.joinable()) flusher_.join();
}

uint64_t EndpointQueue::FlushOnce() {
  std::lock_guard once(flush_once_mutex_);
  // Every Append numbered up to here has finished its writes: the flush below covers them.
  const uint64_t covered = appended_seq_.load();
  std::vector<int> fds;
  for (auto& s : shards_) {
    std::lock_guard lock(s->mutex);
    if (!s->log) continue;
    auto taken = s->log->TakeUnflushed();
    fds.insert(fds.end(), taken.begin(), taken.end());
  }
  // The slow part, outside every shard's lock: appends and sends go on meanwhile.
  SegmentLog::FlushAndClose(fds);
  return covered;
}

void EndpointQueue::RunFlusher() {
  std::unique_lock lock(flush_mutex_);
  while (true) {
    flush_wake_.wait(lock, [&] { return stopping_ || appended_seq_.load() > flushed_seq_; });
    if (stopping_) break;
    lock.unlock();
    const uint64_t covered = FlushOnce();
    lock.lock();
    flushed_seq_ = std::max(flushed_seq_, covered);
    flushed_.notify_all();
  }
}

void EndpointQueue::Flush() {
  if (!on_disk_) return;
  const uint64_t want = appended_seq_.load();
  if (!flusher_running_) {
    const uint64_t covered = FlushOnce();
    std::lock_guard lock(flush_mutex_);
    flushed_seq_ = std::max(flushed_seq_, covered);
    return;
  }
  std::unique_lock lock(flush_mutex_);
  flush_wake_.notify_one();
  flushed_.wait(lock, [&] { return stopping_ || flushed_seq_ >= want; });
}

void EndpointQueue::Reconfigure(RemoteWriteEndpoint config) {
  {
    std::lock_guard lock(config_mutex_);
    config_ = std::make_shared<const RemoteWriteEndpoint>(std::move(config));
  }
  std::lock_guard lock(translate_mutex_);
  translated_.clear();
}

EndpointQueue::Translated EndpointQueue::Translate(const std::shared_ptr<const LabelSet>& source,
                                                   const RemoteWriteEndpoint& config) const {
  Translated t;
  t.source = source;
  Labels labels = source->ToLabels();
  // External labels never override a series' own label of the same name, as in Prometheus.
  for (const auto& external : config.external_labels) {
    if (std::none_of(labels.begin(), labels.end(),
                     [&](const auto& l) { return l.first == external.first; }))
      labels.push_back(external);
  }
  if (!Relabel(config.write_relabel_configs, labels)) return t;
  std::sort(labels.begin(), labels.end());
  t.labels = std::make_shared<const LabelSet>(labels);
  return t;
}

void EndpointQueue::Append(const std::vector<SeriesSample>& samples) {
  std::shared_ptr<const RemoteWriteEndpoint> config;
  {
    std::lock_guard lock(config_mutex_);
    config = config_;
  }
  // Pointers, not copies: no reference count moves for every sample.
  std::vector<std::vector<const SeriesSample*>> per_shard(shards_.size());
  std::vector<SeriesSample> relabelled;  // the samples as sent, when relabelling changes them
  if (config->write_relabel_configs.empty()) {
    // Nothing changes but the external labels, merged in while encoding: the scrape loop's
    // label sets (sorted, hashed) go as they are.
    for (auto& v : per_shard) v.reserve(samples.size() / shards_.size() + 1);
    for (const auto& s : samples) per_shard[s.labels->hash() % shards_.size()].push_back(&s);
  } else {
    relabelled.reserve(samples.size());  // never reallocated: per_shard points into it
    std::lock_guard lock(translate_mutex_);
    for (const auto& s : samples) {
      auto it = translated_.find(s.labels.get());
      if (it == translated_.end()) {
        it = translated_.insert_or_assign(s.labels.get(), Translate(s.labels, *config)).first;
      }
      const Translated& t = it->second;
      if (!t.labels) {
        relabel_dropped_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      relabelled.push_back({t.labels, s.timestamp_ms, s.value});
      per_shard[t.labels->hash() % shards_.size()].push_back(&relabelled.back());
    }
    if (translated_.size() >= sweep_at_) {
      // Gone when only the entry holds its source.
      std::erase_if(translated_, [](const auto& kv) { return kv.second.source.use_count() <= 1; });
      sweep_at_ = std::max<size_t>(1024, translated_.size() * 2);
    }
  }
  const auto max_per_send = static_cast<size_t>(config->queue.max_samples_per_send);
  // Without relabelling the label sets are the scrape loop's own, and the external labels are
  // merged in while encoding, so no copy of every series is kept per endpoint.
  static const Labels kNone;
  const Labels& external = config->write_relabel_configs.empty() ? config->external_labels : kNone;
  // Kept by the thread (the scrape loop's, mostly): a request's encoding is a few hundred KiB,
  // and a fresh buffer for each one cost a page fault per page written.
  thread_local std::string encoded;
  for (size_t i = 0; i < shards_.size(); ++i) {
    if (per_shard[i].empty()) continue;
    Shard& shard = *shards_[i];
    // One record per request: encoded and compressed once, here, before the lock.
    std::vector<Record> records;
    const std::span<const SeriesSample* const> all(per_shard[i]);
    for (size_t at = 0; at < all.size(); at += max_per_send) {
      const auto chunk = all.subspan(at, std::min(max_per_send, all.size() - at));
      int64_t highest = 0;
      for (const auto* s : chunk) highest = std::max(highest, s->timestamp_ms);
      EncodeWriteRequest(chunk, external, encoded);
      records.push_back({SnappyCompress(encoded), static_cast<uint32_t>(chunk.size()), highest});
    }
    per_shard[i].clear();
    uint64_t dropped = 0;
    bool wake = false;
    {
      std::lock_guard lock(shard.mutex);
      if (Pending(shard) == 0) {
        shard.oldest_queued = SteadyClock::now();
        wake = true;
      }
      if (shard.log) {
        for (const auto& r : records) {
          if (!shard.log->Append(r.body, r.samples, r.highest_ms)) dropped += r.samples;
        }
      } else {
        for (auto& r : records) {
          shard.queued_samples += r.samples;
          shard.records.push_back(std::move(r));
        }
        // Whole requests go, oldest first; the newest always stays.
        while (shard.queued_samples > capacity_ && shard.records.size() > 1) {
          dropped += shard.records.front().samples;
          shard.queued_samples -= shard.records.front().samples;
          shard.records.pop_front();
        }
      }
      wake = wake || Pending(shard) >= max_per_send;
    }
    if (dropped > 0) {
      dropped_.fetch_add(dropped, std::memory_order_relaxed);
      spdlog::warn("remote_write {}: {}, dropped the {} oldest samples of shard {}", name_,
                   shard.log ? "cannot write the queue" : "queue full", dropped, i);
    }
    if (wake) shard.wake.notify_one();
  }
  if (on_disk_) {
    // Numbered after its writes, so a flush that reads this number covers them.
    appended_seq_.fetch_add(1);
    if (flusher_running_) {
      { std::lock_guard lock(flush_mutex_); }
      flush_wake_.notify_one();
    }
  }
}

bool EndpointQueue::SendBatch(size_t index) {
  std::shared_ptr<const RemoteWriteEndpoint> config;
  {
    std::lock_guard lock(config_mutex_);
    config = config_;
  }
  Shard& shard = *shards_[index];
  http::ClientRequest request;
  request.method = "POST";
  size_t count = 0;
  int64_t highest = 0;
  std::optional<SegmentLog::Batch> logged_batch;
  std::vector<std::string> bodies;
  {
    std::lock_guard lock(shard.mutex);
    if (shard.log) {
      logged_batch = shard.log->Next(static_cast<uint32_t>(config->queue.max_samples_per_send));
      if (!logged_batch) return false;
      count = logged_batch->samples;
      highest = logged_batch->max_timestamp_ms;
      bodies = std::move(logged_batch->records);
      logged_batch->records.clear();
    } else {
      if (shard.records.empty()) return false;
      const auto max = static_cast<size_t>(config->queue.max_samples_per_send);
      while (!shard.records.empty()) {
        Record& r = shard.records.front();
        if (count > 0 && count + r.samples > max) break;
        count += r.samples;
        highest = std::max(highest, r.highest_ms);
        bodies.push_back(std::move(r.body));
        shard.queued_samples -= r.samples;
        shard.records.pop_front();
      }
      shard.inflight = count;
    }
    if (Pending(shard) > 0) shard.oldest_queued = SteadyClock::now();
  }
  if (bodies.size() == 1) {
    request.body = std::move(bodies.front());
  } else {
    // Small records (pushes, a short tail) go out together: each is a whole compressed
    // WriteRequest, and encoded WriteRequests concatenate into one.
    std::string joined;
    bool ok = true;
    for (const auto& b : bodies) ok = ok && SnappyUncompressAppend(b, joined);
    if (!ok) {
      // Checksummed on disk, so only a change of format gets here.
      spdlog::error(
          "remote_write {}: shard {} holds a record that is not snappy; dropped {} samples", name_,
          index, count);
      failed_.fetch_add(count);
      std::lock_guard lock(shard.mutex);
      if (logged_batch) shard.log->Ack(*logged_batch);
      shard.inflight = 0;
      return true;
    }
    request.body = SnappyCompress(joined);
  }
  bodies.clear();
  // Done with the batch: acknowledged or refused for good. A batch abandoned at a stop stays
  // on disk and goes again after the next start.
  auto finish = [&] {
    std::lock_guard lock(shard.mutex);
    if (logged_batch) shard.log->Ack(*logged_batch);
  };
  std::string why;
  auto url = http::HttpUrl::Parse(config->url, &why);
  // The config loader checked the URL; this only guards against a change of that check.
  if (!url) {
    spdlog::error("remote_write {}: bad URL {}: {}", name_, config->url, why);
    failed_.fetch_add(count);
    finish();
    std::lock_guard lock(shard.mutex);
    shard.inflight = 0;
    return true;
  }
  request.url = std::move(*url);
  request.headers = {{"Content-Encoding", "snappy"},
                     {"Content-Type", "application/x-protobuf"},
                     {"X-Prometheus-Remote-Write-Version", "0.1.0"},
                     {"User-Agent", "meshflow-gateway/" + std::string(kVersion)}};
  if (!config->authorization.empty())
    request.headers.emplace_back("Authorization", config->authorization);
  for (const auto& h : config->headers) request.headers.push_back(h);

  auto backoff = config->queue.min_backoff;
  bool logged = false;
  while (!stopping_) {
    const http::FetchResult result =
        transport_.Post(request, config->remote_timeout, config->tls.get());
    const ResponseVerdict verdict = ClassifyResponse(result, config->queue.retry_on_http_429);
    if (verdict.verdict == Verdict::kSent) {
      sent_.fetch_add(count);
      bytes_sent_.fetch_add(request.body.size());
      int64_t prev = highest_sent_ms_.load();
      while (prev < highest && !highest_sent_ms_.compare_exchange_weak(prev, highest)) {
      }
      if (logged) spdlog::info("remote_write {}: shard {} delivers again", name_, index);
      finish();
      break;
    }
    if (verdict.verdict == Verdict::kDrop) {
      failed_.fetch_add(count);
      spdlog::error("remote_write {}: receiver refused {} samples for good ({}); dropped", name_,
                    count, verdict.reason);
      finish();
      break;
    }
    retried_.fetch_add(count);
    std::chrono::nanoseconds delay;
    if (verdict.retry_after) {
      delay = *verdict.retry_after;
    } else {
      // Full backoff halved plus a random half, so shards that failed together spread out.
      std::lock_guard lock(rng_mutex_);
      const int64_t half = backoff.count() / 2;
      delay = std::chrono::nanoseconds(
          half + std::uniform_int_distribution<int64_t>(0, std::max<int64_t>(half, 0))(rng_));
    }
    if (!logged) {
      spdlog::warn("remote_write {}: shard {} retrying {} samples: {}", name_, index, count,
                   verdict.reason);
      logged = true;
    } else {
      spdlog::debug("remote_write {}: shard {} retrying: {}", name_, index, verdict.reason);
    }
    if (!waiter_->Wait(delay)) break;
    backoff = std::min(backoff * 2, config->queue.max_backoff);
  }
  // Also when abandoned at a stop: a batch from memory is lost with the rest of that queue.
  std::lock_guard lock(shard.mutex);
  shard.inflight = 0;
  return true;
}

size_t EndpointQueue::Pending(const Shard& shard) const {
  return shard.log ? shard.log->pending_samples() : shard.queued_samples;
}

void EndpointQueue::RunShard(size_t index) {
  Shard& shard = *shards_[index];
  while (!stopping_) {
    std::shared_ptr<const RemoteWriteEndpoint> config;
    {
      std::lock_guard lock(config_mutex_);
      config = config_;
    }
    const auto max_per_send = static_cast<size_t>(config->queue.max_samples_per_send);
    const auto deadline =
        std::chrono::duration_cast<SteadyClock::duration>(config->queue.batch_send_deadline);
    std::unique_lock lock(shard.mutex);
    shard.wake.wait(lock, [&] { return stopping_ || Pending(shard) > 0; });
    if (stopping_) break;
    shard.wake.wait_until(lock, shard.oldest_queued + deadline,
                          [&] { return stopping_ || Pending(shard) >= max_per_send; });
    if (stopping_) break;
    lock.unlock();
    SendBatch(index);
  }
}

QueueStats EndpointQueue::Stats() const {
  QueueStats s;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    if (shard->log) {
      s.pending += shard->log->pending_samples();
      s.bytes_on_disk += shard->log->bytes();
      s.dropped += shard->log->dropped_samples();
    } else {
      s.pending += shard->queued_samples + shard->inflight.load();
    }
  }
  s.sent = sent_.load();
  s.retried = retried_.load();
  s.failed = failed_.load();
  s.dropped += dropped_.load();
  s.relabel_dropped = relabel_dropped_.load();
  s.bytes_sent = bytes_sent_.load();
  s.highest_sent_timestamp_ms = highest_sent_ms_.load();
  s.shards = shards_.size();
  return s;
}

}  // namespace meshflow::gateway::remote_write
