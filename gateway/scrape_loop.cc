#include "gateway/scrape_loop.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "common/daemon/version.h"

namespace meshflow::gateway {
namespace {

using remote_write::Labels;
using remote_write::LabelSet;
using remote_write::SeriesSample;
using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds";

int64_t WallMillis(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.Wall().time_since_epoch())
      .count();
}

}  // namespace

ScrapeLoop::ScrapeLoop(TargetRegistry& registry, PushStore& push_store, Scraper& scraper,
                       remote_write::SampleSink& sink, const Clock& clock)
    : registry_(registry), push_store_(push_store), scraper_(scraper), sink_(sink), clock_(clock) {}

ScrapeLoop::~ScrapeLoop() { Stop(); }

void ScrapeLoop::Configure(Settings settings) {
  settings.timeout = std::min(settings.timeout, settings.interval);
  std::lock_guard lock(mutex_);
  settings_ = std::move(settings);
}

void ScrapeLoop::Start() {
  {
    std::lock_guard lock(run_mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Run(); });
}

void ScrapeLoop::Stop() {
  {
    std::lock_guard lock(run_mutex_);
    stopping_ = true;
  }
  run_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t ScrapeLoop::rounds() const {
  std::lock_guard lock(mutex_);
  return round_;
}

void ScrapeLoop::Run() {
  auto next = SteadyClock::now();
  std::unique_lock lock(run_mutex_);
  while (!stopping_) {
    lock.unlock();
    RunOnce();
    std::chrono::nanoseconds interval;
    {
      std::lock_guard settings_lock(mutex_);
      interval = settings_.interval;
    }
    next += std::chrono::duration_cast<SteadyClock::duration>(interval);
    const auto now = SteadyClock::now();
    if (next < now) {
      spdlog::warn("scrape loop: a round took longer than the scrape interval; skipping ahead");
      next = now;
    }
    lock.lock();
    run_cv_.wait_until(lock, next, [this] { return stopping_; });
  }
}

const std::shared_ptr<const LabelSet>& ScrapeLoop::Intern(NodeState& state, Labels labels) {
  std::sort(labels.begin(), labels.end());
  key_.clear();
  for (const auto& [name, value] : labels) {
    key_ += name;
    key_ += '\xff';
    key_ += value;
    key_ += '\xfe';
  }
  auto [it, inserted] = state.series.try_emplace(key_);
  if (inserted) it->second.labels = std::make_shared<const LabelSet>(labels);
  it->second.seen_round = round_;
  return it->second.labels;
}

const std::shared_ptr<const LabelSet>& ScrapeLoop::InternSample(
    NodeState& state, const text_format::TextSample& sample, const Labels& target) {
  // The key is the sample's name and labels in name order, so a series seen before is found
  // without building its label set (most series, every round). The target labels are the same
  // for every series of the node, so they stay out of the key. A leading '\x01' keeps these
  // keys apart from the synthesized series' (Intern's keys start with a label name).
  order_.clear();
  for (size_t i = 0; i < sample.labels.size(); ++i) {
    if (!sample.labels[i].second.empty()) order_.push_back(i);  // an empty label is no label
  }
  auto by_name = [&](size_t a, size_t b) {
    return sample.labels[a].first < sample.labels[b].first;
  };
  if (!std::is_sorted(order_.begin(), order_.end(), by_name))
    std::sort(order_.begin(), order_.end(), by_name);
  key_.assign(1, '\x01');
  key_ += sample.name;
  key_ += '\xfe';
  for (size_t i : order_) {
    key_ += sample.labels[i].first;
    key_ += '\xff';
    key_ += sample.labels[i].second;
    key_ += '\xfe';
  }
  auto [it, inserted] = state.series.try_emplace(key_);
  it->second.seen_round = round_;
  if (!inserted) return it->second.labels;
  Labels labels;
  labels.reserve(order_.size() + target.size() + 1);
  labels.emplace_back("__name__", sample.name);
  for (size_t i : order_) {
    const auto& label = sample.labels[i];
    // A label the target also sets is kept as exported_<name>, as Prometheus does without
    // honor_labels.
    const bool clash = std::any_of(target.begin(), target.end(),
                                   [&](const auto& t) { return t.first == label.first; });
    labels.emplace_back(clash ? "exported_" + label.first : label.first, label.second);
  }
  labels.insert(labels.end(), target.begin(), target.end());
  std::sort(labels.begin(), labels.end());
  it->second.labels = std::make_shared<const LabelSet>(labels);
  return it->second.labels;
}

void ScrapeLoop::Ingest(const std::string& node, const text_format::Exposition* exposition,
                        int64_t timestamp_ms, std::optional<double> duration_seconds,
                        std::vector<SeriesSample>& out) {
  NodeState& state = nodes_[node];
  const Labels target{{"instance", node}, {"job", "meshflow"}, {"node", node}};
  size_t scraped = 0;
  if (exposition) {
    for (const auto& family : exposition->families) {
      for (const auto& sample : family.samples) {
        out.push_back({InternSample(state, sample, target),
                       sample.timestamp_ms.value_or(timestamp_ms), sample.value});
        ++scraped;
      }
    }
  }
  auto report = [&](const char* name, double value) {
    Labels labels = target;
    labels.emplace_back("__name__", name);
    out.push_back({Intern(state, std::move(labels)), timestamp_ms, value});
  };
  report("up", exposition ? 1 : 0);
  if (duration_seconds) report("scrape_duration_seconds", *duration_seconds);
  report("scrape_samples_scraped", static_cast<double>(scraped));
  // Series not seen in this result end here.
  for (auto it = state.series.begin(); it != state.series.end();) {
    if (it->second.seen_round == round_) {
      ++it;
      continue;
    }
    out.push_back({it->second.labels, timestamp_ms, remote_write::StaleNaN()});
    it = state.series.erase(it);
  }
}

void ScrapeLoop::TakePush(const std::string& node) {
  {
    std::lock_guard lock(mutex_);
    if (!settings_.write) return;
  }
  const auto lookup = push_store_.Get(node);
  if (lookup.state != PushStore::State::kFresh || !lookup.body || !lookup.body->exposition) return;
  {
    std::vector<SeriesSample> out;
    std::lock_guard lock(mutex_);
    NodeState& state = nodes_[node];
    // Taken by a round meanwhile: appended already, and perhaps not yet flushed.
    if (state.taken_push != lookup.body->received_monotonic) {
      state.taken_push = lookup.body->received_monotonic;
      ++round_;
      const auto ts = static_cast<int64_t>(std::llround(lookup.body->received_wall_seconds * 1000));
      Ingest(node, lookup.body->exposition.get(), ts, std::nullopt, out);
      sink_.Append(out);
    }
  }
  // The push is answered after this; the wait for the disk holds no lock of the loop, and
  // pushes that arrive together share one flush.
  sink_.Flush();
}

void ScrapeLoop::RunOnce() {
  Settings settings;
  {
    std::lock_guard lock(mutex_);
    settings = settings_;
  }
  const auto targets = registry_.Snapshot();
  const int64_t round_ms = WallMillis(clock_);
  const auto deadline =
      SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(settings.timeout);
  const std::string timeout_seconds =
      std::to_string(std::chrono::duration<double>(settings.timeout).count());

  std::vector<ScrapeJob> jobs;
  std::vector<std::string> nodes;  // of the jobs, which the scraper takes
  std::vector<std::string> push_nodes;
  for (const auto& t : targets) {
    if (t.source == TargetSource::kPush) {
      push_nodes.push_back(t.node);
      continue;
    }
    ScrapeJob job;
    job.node = t.node;
    job.url = t.url;
    job.deadline = deadline;
    job.headers = {{"Accept", "text/plain;version=0.0.4"},
                   {"Accept-Encoding", "identity"},
                   {std::string(kTimeoutHeader), timeout_seconds},
                   {"User-Agent", "meshflow-gateway/" + std::string(kVersion)}};
    if (!settings.authorization.empty())
      job.headers.emplace_back("Authorization", settings.authorization);
    job.tls = settings.tls;
    job.background = true;
    nodes.push_back(t.node);
    jobs.push_back(std::move(job));
  }
  text_format::TextFormatLimits limits;
  limits.max_body_bytes = settings.max_body_bytes;
  std::vector<SeriesSample> out;
  {
    std::lock_guard lock(mutex_);
    ++round_;
    // Sized as the last round was, so the vector is not grown (and copied) step by step.
    out.reserve(last_round_samples_);
  }
  // One node at a time, as its result comes: each body is dropped once parsed and its exposition
  // once ingested, so memory holds one node's parse, not every node's. Parsing holds no lock, so
  // a push is not kept waiting by it.
  scraper_.ScrapeEach(std::move(jobs), [&](size_t i, ScrapeOutcome& o) {
    // Not started (the loop's own scrape of the node from an earlier round still in flight, or a
    // full queue): no verdict on the node this round, rather than a false `up 0`.
    if (!o.refused.empty()) return;
    const std::string& node = nodes[i];
    std::unique_ptr<text_format::Exposition> exposition;
    if (!o.fetch.ok() || o.fetch.response.status != 200) {
      spdlog::debug(
          "scrape loop: node {} down: {}", node,
          o.fetch.ok() ? "HTTP " + std::to_string(o.fetch.response.status) : o.fetch.message);
    } else {
      exposition = std::make_unique<text_format::Exposition>();
      if (auto error =
              text_format::ParseTextFormat(o.fetch.response.body, limits, exposition.get())) {
        spdlog::debug("scrape loop: node {} exposition not valid: {}", node, error->ToString());
        exposition.reset();
      }
      std::string().swap(o.fetch.response.body);
    }
    if (exposition && settings.observe) settings.observe(node, *exposition);
    if (!settings.write) return;
    std::lock_guard lock(mutex_);
    Ingest(node, exposition.get(), round_ms, std::chrono::duration<double>(o.duration).count(),
           out);
  });
  std::lock_guard lock(mutex_);
  if (!settings.write) {
    // Nothing is written: no series to remember, and none to end when writing starts.
    nodes_.clear();
    return;
  }
  // Taken now, not at the round's start: a push taken in meanwhile has a later timestamp.
  const int64_t now_ms = WallMillis(clock_);
  for (const auto& node : push_nodes) {
    const auto lookup = push_store_.Get(node);
    NodeState& state = nodes_[node];
    if (lookup.state == PushStore::State::kFresh && lookup.body && lookup.body->exposition) {
      if (state.taken_push != lookup.body->received_monotonic) {
        state.taken_push = lookup.body->received_monotonic;
        Ingest(node, lookup.body->exposition.get(),
               static_cast<int64_t>(std::llround(lookup.body->received_wall_seconds * 1000)),
               std::nullopt, out);
      }
      continue;
    }
    // No push, or the last one is past its TTL: the node is down.
    Ingest(node, nullptr, now_ms, std::nullopt, out);
  }
  // Nodes that left the config: every series ends.
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    const bool known = std::any_of(targets.begin(), targets.end(),
                                   [&](const Target& t) { return t.node == it->first; });
    if (known) {
      ++it;
      continue;
    }
    for (const auto& [key, series] : it->second.series)
      out.push_back({series.labels, now_ms, remote_write::StaleNaN()});
    it = nodes_.erase(it);
  }
  last_round_samples_ = out.size();
  if (!out.empty()) sink_.Append(out);
}

}  // namespace meshflow::gateway
