#include "gateway/scraper.h"

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
    : settings_(settings), pool_(settings.workers, settings.max_queue) {}

std::shared_ptr<Scraper::Pending> Scraper::Begin(ScrapeJob job) {
  auto pending = std::make_shared<Pending>();
  pending->job = std::move(job);
  auto finish_refused = [&](std::string why) {
    pending->outcome.refused = std::move(why);
    pending->done = true;
    std::lock_guard lock(mutex_);
    ++refused_;
    return pending;
  };
  {
    std::lock_guard lock(mutex_);
    int& n = inflight_[pending->job.node];
    if (n >= settings_.max_inflight_per_node) {
      ++refused_;
      pending->outcome.refused = "too many scrapes of this node in flight";
      pending->done = true;
      return pending;
    }
    ++n;
  }
  const std::string node = pending->job.node;
  const bool queued = pool_.Submit([this, pending] {
    const auto start = SteadyClock::now();
    ScrapeOutcome outcome;
    if (start >= pending->job.deadline) {
      outcome.refused = "deadline passed while waiting for a free worker";
    } else {
      ClientRequest request;
      std::string why;
      auto url = HttpUrl::Parse(pending->job.url, &why);
      if (!url) {
        outcome.fetch.error = FetchError::kBadUrl;
        outcome.fetch.message = why;
      } else {
        request.url = std::move(*url);
        request.headers = pending->job.headers;
        outcome.fetch =
            Fetch(request, pending->job.deadline, settings_.max_body_bytes, pending->job.tls.get());
      }
      outcome.duration = SteadyClock::now() - start;
    }
    {
      std::lock_guard lock(mutex_);
      if (--inflight_[pending->job.node] <= 0) inflight_.erase(pending->job.node);
      if (!outcome.refused.empty()) ++refused_;
    }
    std::lock_guard lock(pending->mutex);
    pending->outcome = std::move(outcome);
    pending->done = true;
    pending->done_cv.notify_all();
  });
  if (!queued) {
    {
      std::lock_guard lock(mutex_);
      if (--inflight_[node] <= 0) inflight_.erase(node);
    }
    return finish_refused("too many scrapes queued");
  }
  return pending;
}

ScrapeOutcome Scraper::Wait(const std::shared_ptr<Pending>& pending) {
  std::unique_lock lock(pending->mutex);
  // The fetch honours the deadline itself; the grace covers scheduling only.
  const auto give_up = pending->job.deadline + std::chrono::milliseconds(200);
  if (!pending->done_cv.wait_until(lock, give_up, [&] { return pending->done; })) {
    ScrapeOutcome late;
    late.fetch.error = FetchError::kTimeout;
    late.fetch.message = "no answer before the deadline";
    return late;
  }
  return pending->outcome;
}

ScrapeOutcome Scraper::Scrape(ScrapeJob job) { return Wait(Begin(std::move(job))); }

std::vector<ScrapeOutcome> Scraper::ScrapeAll(std::vector<ScrapeJob> jobs) {
  std::vector<std::shared_ptr<Pending>> pending;
  pending.reserve(jobs.size());
  for (auto& job : jobs) pending.push_back(Begin(std::move(job)));
  std::vector<ScrapeOutcome> out;
  out.reserve(pending.size());
  for (const auto& p : pending) out.push_back(Wait(p));
  return out;
}

uint64_t Scraper::refused_total() const {
  std::lock_guard lock(mutex_);
  return refused_;
}

}  // namespace meshflow::gateway
