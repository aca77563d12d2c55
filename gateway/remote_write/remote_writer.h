#pragma once

#include <prometheus/metric_family.h>

#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "gateway/gateway_config.h"
#include "gateway/remote_write/endpoint_queue.h"
#include "gateway/remote_write/write_request.h"

namespace meshflow::gateway::remote_write {

// Takes samples from the scrape loop and hands each endpoint's queue its copy.
class SampleSink {
 public:
  virtual ~SampleSink() = default;
  virtual void Append(const std::vector<SeriesSample>& samples) = 0;
  // Returns once what was appended before is as safe as the queues keep it (flushed to disk
  // for a queue on disk); a pushed exposition is acknowledged after this.
  virtual void Flush() {}
};

// Every remote_write endpoint of the config, each with its own queue.
class RemoteWriter final : public SampleSink {
 public:
  // `transport` null: HTTP.
  explicit RemoteWriter(std::unique_ptr<Transport> transport = nullptr);
  ~RemoteWriter() override;

  // Applies a (re)loaded config. An endpoint that stays (same name, by default its URL) keeps
  // its queue and takes the new settings; queues of endpoints no longer named are stopped.
  void Configure(const std::vector<RemoteWriteEndpoint>& endpoints);
  void Append(const std::vector<SeriesSample>& samples) override;
  void Flush() override;
  bool empty() const;
  void Stop();

  // meshflow_remote_write_* per endpoint.
  void Collect(std::vector<prometheus::MetricFamily>& out) const;

 private:
  std::unique_ptr<Transport> transport_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<EndpointQueue>> queues_;
};

}  // namespace meshflow::gateway::remote_write
