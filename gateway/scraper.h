#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/http/http_client.h"
#include "common/http/tls_client.h"
#include "gateway/worker_pool.h"

namespace meshflow::gateway {

// One upstream scrape to run: which node, where, with which request headers.
struct ScrapeJob {
  std::string node;
  std::string url;
  http::ClientHeaders headers;  // Accept, Accept-Encoding, the timeout header, Authorization
  std::chrono::steady_clock::time_point deadline;
  std::shared_ptr<const http::TlsClient> tls;  // for https:// URLs; null: the system's trust store
  // Jobs with the same non-empty key share one upstream scrape while it is in flight (the same
  // node asked for the same way), so a flood of requests costs one scrape per node at a time.
  std::string share_key;
  // The gateway's own periodic scrape (the scrape loop), not a request someone waits on. It runs
  // on its own workers and in-flight count and never shares a flight; see Scraper::Begin.
  bool background = false;
};

struct ScrapeOutcome {
  http::FetchResult fetch;
  std::chrono::nanoseconds duration{0};
  // Set when the scrape never ran: the node already has too many scrapes in flight, the queue
  // was full, or the deadline passed while queued.
  std::string refused;
};

// Runs upstream scrapes on a bounded worker pool. A dead or slow node holds at most
// `max_inflight_per_node` workers, and only until its deadline, so other nodes keep theirs.
// Concurrent jobs with one share_key join the scrape in flight (single-flight). Background jobs
// (the scrape loop) have workers and a per-node count of their own, one scrape per node at a
// time, so they never take a slot or a worker from a request.
class Scraper {
 public:
  struct Settings {
    size_t workers = 32;
    size_t max_queue = 1024;
    int max_inflight_per_node = 2;
    size_t max_body_bytes = 16 << 20;
  };
  explicit Scraper(Settings settings);

  // Scrapes one node and waits for it (never past the job's deadline plus a small grace).
  ScrapeOutcome Scrape(ScrapeJob job);
  // Scrapes many nodes concurrently; results in the order of `jobs`.
  std::vector<ScrapeOutcome> ScrapeAll(std::vector<ScrapeJob> jobs);
  // The same, handing each result to `each(index, outcome)` in the order of `jobs` as soon as it
  // and those before it are done, so a caller can be done with one body before the next.
  void ScrapeEach(std::vector<ScrapeJob> jobs,
                  const std::function<void(size_t, ScrapeOutcome&)>& each);

  uint64_t refused_total() const;
  // Jobs that joined a scrape already in flight instead of starting one.
  uint64_t shared_total() const;

 private:
  struct Pending;
  std::shared_ptr<Pending> Begin(ScrapeJob job, bool* joined = nullptr);
  ScrapeOutcome Wait(const std::shared_ptr<Pending>& pending,
                     std::chrono::steady_clock::time_point deadline);
  void EndFlight(const std::shared_ptr<Pending>& pending);
  std::map<std::string, int>& Inflight(const ScrapeJob& job);

  const Settings settings_;
  mutable std::mutex mutex_;
  std::map<std::string, int> inflight_;
  std::map<std::string, int> background_inflight_;
  std::map<std::string, std::weak_ptr<Pending>> flights_;  // by share_key
  uint64_t refused_ = 0;
  uint64_t shared_ = 0;
  // Last, so they are destroyed first: a scrape still running at shutdown finishes while the
  // counts and the lock it updates are still there.
  WorkerPool pool_;
  WorkerPool background_pool_;
};

}  // namespace meshflow::gateway
