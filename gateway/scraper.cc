#include "gateway/scraper.h"

#include <algorithm>
#include <condition_variable>

namespace meshflow::gateway {

using SteadyClock = std::chrono::steady_clock;

// Shared between the waiter and the worker, so a waiter that gives up leaves nothing dangling.
struct Scraper::Pending {
  ScrapeJob job;
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  ScrapeOutcome outcome;
};

Scraper::Scraper(Settings settings)
    : settings_(settings),
      pool_(settings.workers, settings.max_queue),
      background_pool_(settings.workers, settings.max_queue) {}

std::shared_ptr<Scraper::Pending> Scraper::Begin(ScrapeJob job, bool* joined) {
  if (joined) *joined = false;
  auto pending = std::make_shared<Pending>();
  auto finish_refused = [&](std::string why) {
    pending->outcome.refused = std::move(why);
    pending->done = true;
    std::lock_guard lock(mutex_);
    ++refused_;
    return pending;
  };
  {
    // Looking for a flight to join and registering a new one happen under one lock: a request
    // that came between the two would find no flight yet, but the node's slot taken, and be
    // refused although it could have shared the scrape.
    std::lock_guard lock(mutex_);
    // A background scrape neither joins nor is joined. A request that joined one would get a
    // body asked for before the request came, with the loop's Accept and its (shorter) timeout,
    // and its own `up` and duration would describe the loop's scrape; the loop, joining a
    // request's flight, would hold that request's slot. Apart, each keeps its own meaning; the
    // price is one more scrape of each node per scrape_interval.
    if (job.background) job.share_key.clear();
    if (!job.share_key.empty()) {
      auto it = flights_.find(job.share_key);
      if (it != flights_.end()) {
        if (auto flying = it->second.lock()) {
          ++shared_;
          if (joined) *joined = true;
          return flying;
        }
        flights_.erase(it);
      }
    }
    pending->job = std::move(job);
    const int cap = pending->job.background ? 1 : settings_.max_inflight_per_node;
    int& n = Inflight(pending->job)[pending->job.node];
    if (n >= cap) {
      ++refused_;
      pending->outcome.refused = "too many scrapes of this node in flight";
      pending->done = true;
      return pending;
    }
    ++n;
    if (!pending->job.share_key.empty()) flights_[pending->job.share_key] = pending;
  }
  const std::string node = pending->job.node;
  WorkerPool& pool = pending->job.background ? background_pool_ : pool_;
  const bool queued = pool.Submit([this, pending] {
    const auto start = SteadyClock::now();
    ScrapeOutcome outcome;
    if (start >= pending->job.deadline) {
      outcome.refused = "deadline passed while waiting for a free worker";
    } else {
      http::ClientRequest request;
      std::string why;
      auto url = http::HttpUrl::Parse(pending->job.url, &why);
      if (!url) {
        outcome.fetch.error = http::FetchError::kBadUrl;
        outcome.fetch.message = why;
      } else {
        request.url = std::move(*url);
        request.headers = pending->job.headers;
        outcome.fetch = http::Fetch(request, pending->job.deadline, settings_.max_body_bytes,
                                    pending->job.tls.get());
      }
      outcome.duration = SteadyClock::now() - start;
    }
    {
      std::lock_guard lock(mutex_);
      auto& inflight = Inflight(pending->job);
      if (--inflight[pending->job.node] <= 0) inflight.erase(pending->job.node);
      if (!outcome.refused.empty()) ++refused_;
      EndFlight(pending);
    }
    std::lock_guard lock(pending->mutex);
    pending->outcome = std::move(outcome);
    pending->done = true;
    pending->done_cv.notify_all();
  });
  if (!queued) {
    {
      std::lock_guard lock(mutex_);
      auto& inflight = Inflight(pending->job);
      if (--inflight[node] <= 0) inflight.erase(node);
      EndFlight(pending);
    }
    return finish_refused("too many scrapes queued");
  }
  return pending;
}

ScrapeOutcome Scraper::Wait(const std::shared_ptr<Pending>& pending,
                            SteadyClock::time_point deadline) {
  std::unique_lock lock(pending->mutex);
  // The fetch honours the deadline itself; the grace covers scheduling only.
  const auto give_up = std::min(deadline, pending->job.deadline) + std::chrono::milliseconds(200);
  if (!pending->done_cv.wait_until(lock, give_up, [&] { return pending->done; })) {
    ScrapeOutcome late;
    late.fetch.error = http::FetchError::kTimeout;
    late.fetch.message = "no answer before the deadline";
    return late;
  }
  // Without a share_key no other waiter can hold this scrape, so its body is moved, not copied.
  if (pending->job.share_key.empty()) return std::move(pending->outcome);
  return pending->outcome;
}

ScrapeOutcome Scraper::Scrape(ScrapeJob job) {
  for (;;) {
    bool joined = false;
    const auto deadline = job.deadline;
    auto pending = Begin(job, &joined);
    ScrapeOutcome outcome = Wait(pending, deadline);
    // A joined scrape that ran out of its own (shorter) time says nothing about the node: while
    // this job still has time, scrape again rather than report someone else's deadline.
    const bool out_of_time =
        !outcome.refused.empty() || outcome.fetch.error == http::FetchError::kTimeout;
    if (joined && out_of_time && pending->job.deadline < deadline &&
        SteadyClock::now() + std::chrono::milliseconds(100) < deadline)
      continue;
    return outcome;
  }
}

std::vector<ScrapeOutcome> Scraper::ScrapeAll(std::vector<ScrapeJob> jobs) {
  std::vector<ScrapeOutcome> out;
  out.reserve(jobs.size());
  ScrapeEach(std::move(jobs), [&](size_t, ScrapeOutcome& o) { out.push_back(std::move(o)); });
  return out;
}

void Scraper::ScrapeEach(std::vector<ScrapeJob> jobs,
                         const std::function<void(size_t, ScrapeOutcome&)>& each) {
  std::vector<std::shared_ptr<Pending>> pending;
  pending.reserve(jobs.size());
  std::vector<SteadyClock::time_point> deadlines;
  for (auto& job : jobs) {
    deadlines.push_back(job.deadline);
    pending.push_back(Begin(std::move(job)));
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    ScrapeOutcome outcome = Wait(pending[i], deadlines[i]);
    pending[i].reset();  // a late worker still holds its own reference
    each(i, outcome);
  }
}

std::map<std::string, int>& Scraper::Inflight(const ScrapeJob& job) {
  // Caller holds mutex_.
  return job.background ? background_inflight_ : inflight_;
}

void Scraper::EndFlight(const std::shared_ptr<Pending>& pending) {
  // Caller holds mutex_.
  if (pending->job.share_key.empty()) return;
  auto it = flights_.find(pending->job.share_key);
  if (it != flights_.end() && it->second.lock() == pending) flights_.erase(it);
}

uint64_t Scraper::shared_total() const {
  std::lock_guard lock(mutex_);
  return shared_;
}

uint64_t Scraper::refused_total() const {
  std::lock_guard lock(mutex_);
  return refused_;
}

}  // namespace meshflow::gateway
