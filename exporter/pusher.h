#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/core/collector.h"
#include "common/http/tls_client.h"

namespace meshflow {

// --push.* flags of the exporter.
struct PusherOptions {
  std::string url;         // the gateway's push endpoint, e.g. http://gateway:9475/push
  std::string token_file;  // this node's bearer token
  std::chrono::milliseconds interval{5000};
  http::TlsClientConfig tls;  // for an https:// url: CA, client certificate and key files
};

// Sends the exporter's exposition to a gateway every interval, for nodes Prometheus cannot
// reach (behind NAT, on and off). The gateway serves the last push for three intervals, so a
// missed push or two does not make the node's series go stale.
class Pusher {
 public:
  // Reads the token file and TLS files and checks the URL; throws std::runtime_error saying
  // what is wrong.
  explicit Pusher(PusherOptions options);
  ~Pusher();

  // Pushes `scrape()` as node `node` every interval on a thread of its own, the first at once.
  void Start(std::string node, std::function<std::string()> scrape);
  void Stop();
  // One push now; true when the gateway accepted it. Logs why not.
  bool PushOnce();

  // meshflow_push_total{result} and meshflow_push_last_success_timestamp_seconds, as a
  // collector for the exporter's collector set.
  std::unique_ptr<Collector> MakeCollector();

 private:
  void Run();

  PusherOptions options_;
  std::shared_ptr<const http::TlsClient> tls_;  // null: plain http, or the system's trust store
  std::string token_;
  std::string node_;
  std::function<std::string()> scrape_;
  std::atomic<uint64_t> succeeded_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<double> last_success_{0};
  bool last_failed_ = false;  // log a failure once, not every interval

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace meshflow
