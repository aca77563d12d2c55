#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/core/clock.h"
#include "common/text_format/text_format.h"
#include "gateway/push_store.h"
#include "gateway/remote_write/remote_writer.h"
#include "gateway/scraper.h"
#include "gateway/targets.h"

namespace meshflow::gateway {

// The gateway's own scrapes: every scraped node on `interval` through the shared Scraper, as
// background jobs (their own workers and per-node count, so /proxy keeps all of its), each
// exposition handed to `observe` (the mesh view). With `write` set, for remote_write, also every
// push as it is accepted, and samples to the sink: each node
// gets `up`, `scrape_duration_seconds` and `scrape_samples_scraped` as Prometheus synthesizes
// them, and its series get the staleness marker when they vanish, the node goes down, its push
// TTL passes or it leaves the config.
class ScrapeLoop {
 public:
  struct Settings {
    std::chrono::nanoseconds interval = std::chrono::seconds(5);
    std::chrono::nanoseconds timeout = std::chrono::seconds(5);  // never above interval
    size_t max_body_bytes = 16 << 20;
    std::shared_ptr<const http::TlsClient> tls;
    std::string authorization;
    // Every exposition scraped and parsed this round, e.g. for the mesh view's history.
    std::function<void(const std::string& node, const text_format::Exposition& exposition)> observe;
    // Turn what is scraped and pushed into samples for the sink (remote_write is configured).
    bool write = true;
  };
  ScrapeLoop(TargetRegistry& registry, PushStore& push_store, Scraper& scraper,
             remote_write::SampleSink& sink, const Clock& clock);
  ~ScrapeLoop();

  void Configure(Settings settings);
  void Start();
  void Stop();

  // One round: scrapes every scraped node once, checks every push node's TTL.
  void RunOnce();
  // Takes in a push that was just accepted (does nothing when the node's last push is taken).
  void TakePush(const std::string& node);

  uint64_t rounds() const;

 private:
  struct Series {
    std::shared_ptr<const remote_write::LabelSet> labels;
    uint64_t seen_round = 0;
  };
  struct NodeState {
    std::unordered_map<std::string, Series> series;
    std::chrono::nanoseconds taken_push{-1};  // received_monotonic of the push taken in
  };
  // Turns one result into samples (caller holds mutex_): the exposition's samples (none when
  // down), the synthesized ones, and a staleness marker for each series not seen this time.
  void Ingest(const std::string& node, const text_format::Exposition* exposition,
              int64_t timestamp_ms, std::optional<double> duration_seconds,
              std::vector<remote_write::SeriesSample>& out);
  const std::shared_ptr<const remote_write::LabelSet>& Intern(NodeState& state,
                                                              remote_write::Labels labels);
  // A scraped sample's series: found by a key built from the sample, built only when new.
  const std::shared_ptr<const remote_write::LabelSet>& InternSample(
      NodeState& state, const text_format::TextSample& sample, const remote_write::Labels& target);
  void Run();

  TargetRegistry& registry_;
  PushStore& push_store_;
  Scraper& scraper_;
  remote_write::SampleSink& sink_;
  const Clock& clock_;

  mutable std::mutex mutex_;  // node state, and the order in which samples reach the sink
  Settings settings_;
  std::map<std::string, NodeState> nodes_;
  uint64_t round_ = 0;
  size_t last_round_samples_ = 0;
  std::string key_;            // scratch
  std::vector<size_t> order_;  // scratch

  std::mutex run_mutex_;
  std::condition_variable run_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace meshflow::gateway
