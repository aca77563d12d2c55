#include "gateway/remote_write/remote_writer.h"

#include <spdlog/spdlog.h>

#include "common/core/metric_builder.h"

namespace meshflow::gateway::remote_write {

using prometheus::MetricType;

RemoteWriter::RemoteWriter(std::unique_ptr<Transport> transport)
    : transport_(transport ? std::move(transport) : std::make_unique<HttpTransport>()) {}

RemoteWriter::~RemoteWriter() { Stop(); }

void RemoteWriter::Configure(const std::vector<RemoteWriteEndpoint>& endpoints) {
  std::map<std::string, std::shared_ptr<EndpointQueue>> next;
  std::map<std::string, std::shared_ptr<EndpointQueue>> gone;
  {
    std::lock_guard lock(mutex_);
    for (const auto& e : endpoints) {
      auto it = queues_.find(e.name);
      if (it != queues_.end()) {
        it->second->Reconfigure(e);
        next[e.name] = it->second;
      } else {
        next[e.name] = std::make_shared<EndpointQueue>(e, *transport_);
        spdlog::info("remote_write {}: started with {} shards", e.name, e.queue.max_shards);
      }
    }
    for (auto& [name, q] : queues_) {
      if (!next.contains(name)) gone[name] = q;
    }
    queues_ = std::move(next);
  }
  for (auto& [name, q] : gone) {
    q->Stop();
    spdlog::info("remote_write {}: removed from the config, {} samples left unsent", name,
                 q->Stats().pending);
  }
}

void RemoteWriter::Append(const std::vector<SeriesSample>& samples) {
  std::vector<std::shared_ptr<EndpointQueue>> queues;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, q] : queues_) queues.push_back(q);
  }
  for (const auto& q : queues) q->Append(samples);
}

void RemoteWriter::Flush() {
  std::vector<std::shared_ptr<EndpointQueue>> queues;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, q] : queues_) queues.push_back(q);
  }
  for (const auto& q : queues) q->Flush();
}

bool RemoteWriter::empty() const {
  std::lock_guard lock(mutex_);
  return queues_.empty();
}

void RemoteWriter::Stop() {
  std::map<std::string, std::shared_ptr<EndpointQueue>> queues;
  {
    std::lock_guard lock(mutex_);
    queues.swap(queues_);
  }
  for (auto& [name, q] : queues) q->Stop();
}

void RemoteWriter::Collect(std::vector<prometheus::MetricFamily>& out) const {
  std::vector<std::pair<std::string, QueueStats>> stats;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, q] : queues_) stats.emplace_back(name, q->Stats());
  }
  FamilyBuilder pending("meshflow_remote_write_samples_pending",
                        "Samples queued for the endpoint and not yet acknowledged.",
                        MetricType::Gauge);
  FamilyBuilder sent("meshflow_remote_write_samples_sent_total",
                     "Samples the endpoint acknowledged.", MetricType::Counter);
  FamilyBuilder retried("meshflow_remote_write_samples_retried_total",
                        "Samples sent again after a 5xx, a 429 or a network error.",
                        MetricType::Counter);
  FamilyBuilder failed("meshflow_remote_write_samples_failed_total",
                       "Samples the endpoint refused for good (a 4xx other than 429).",
                       MetricType::Counter);
  FamilyBuilder dropped("meshflow_remote_write_samples_dropped_total",
                        "Samples not sent: the queue was full (the oldest go first), or "
                        "write_relabel_configs left them out.",
                        MetricType::Counter);
  FamilyBuilder bytes("meshflow_remote_write_sent_bytes_total",
                      "Compressed request bytes the endpoint acknowledged.", MetricType::Counter);
  FamilyBuilder disk("meshflow_remote_write_disk_bytes",
                     "Bytes of the endpoint's write-ahead queue on disk.", MetricType::Gauge);
  FamilyBuilder highest("meshflow_remote_write_highest_sent_timestamp_seconds",
                        "Newest sample timestamp the endpoint acknowledged.", MetricType::Gauge);
  FamilyBuilder shards("meshflow_remote_write_shards", "Shards sending to the endpoint.",
                       MetricType::Gauge);
  for (const auto& [name, s] : stats) {
    const LabelPairs l{{"remote_name", name}};
    pending.Gauge(l, static_cast<double>(s.pending));
    sent.Counter(l, static_cast<double>(s.sent));
    retried.Counter(l, static_cast<double>(s.retried));
    failed.Counter(l, static_cast<double>(s.failed));
    dropped.Counter({{"remote_name", name}, {"reason", "queue_full"}},
                    static_cast<double>(s.dropped));
    dropped.Counter({{"remote_name", name}, {"reason", "relabel"}},
                    static_cast<double>(s.relabel_dropped));
    bytes.Counter(l, static_cast<double>(s.bytes_sent));
    disk.Gauge(l, static_cast<double>(s.bytes_on_disk));
    highest.Gauge(l, static_cast<double>(s.highest_sent_timestamp_ms) / 1000.0);
    shards.Gauge(l, static_cast<double>(s.shards));
  }
  for (auto* f : {&pending, &sent, &retried, &failed, &dropped, &bytes, &disk, &highest, &shards})
    f->AppendTo(out);
}

}  // namespace meshflow::gateway::remote_write
