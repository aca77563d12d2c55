#pragma once

#include <prometheus/metric_family.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/web/basic_auth.h"
#include "common/web/web_config.h"

namespace meshflow::web {

// What identifies a file's content without reading it: a replaced file (new inode, as
// Kubernetes ConfigMap/Secret updates and editors do) or a rewritten one (size, mtime) differ.
struct FileStamp {
  uint64_t device = 0;
  uint64_t inode = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};
std::optional<FileStamp> StampFile(const std::string& path);

// One loaded web config with its authenticator; immutable once built, shared with requests.
struct WebState {
  WebConfig config;
  std::shared_ptr<BasicAuthenticator> authenticator;
};

// Owns the web config file: loads it, re-reads it (and the certificate files it names) when
// they change, keeps the last good config when a new one is broken, and answers requests'
// authentication. Without a path, serves plain HTTP without authentication.
class WebConfigWatcher {
 public:
  enum class Change {
    kNone,      // nothing changed on disk
    kAuth,      // new users; applied at once, the listener stays
    kTls,       // TLS settings or certificate files changed: the listener must be restarted
    kRejected,  // a change that does not load; the previous config stays in force
  };

  // Loads `path` (empty: no web config). Throws ConfigError when the first load fails, so a
  // broken file at startup stops the exporter instead of serving without protection.
  explicit WebConfigWatcher(std::string path);
  ~WebConfigWatcher();

  const std::string& path() const { return path_; }
  std::shared_ptr<const WebState> Current() const;

  // Looks at the files once and reloads when they changed.
  Change Poll();

  // Polls every `interval` on a thread of its own and calls `on_change` for kAuth and kTls.
  void StartPolling(std::chrono::milliseconds interval, std::function<void(Change)> on_change);
  void StopPolling();

  // True when the request may go on. `authorization` is its Authorization header.
  bool Authorize(std::optional<std::string_view> authorization);

  // meshflow_web_config_last_reload_success, meshflow_web_config_reloads_total{result},
  // meshflow_web_auth_failures_total, meshflow_web_tls_enabled.
  void Collect(std::vector<prometheus::MetricFamily>& out) const;

 private:
  std::vector<std::optional<FileStamp>> StampAll(const WebConfig& config) const;
  std::shared_ptr<const WebState> Load() const;

  const std::string path_;
  mutable std::mutex mutex_;
  std::shared_ptr<const WebState> current_;
  std::vector<std::optional<FileStamp>> stamps_;  // of the file, then the certificate files
  std::optional<std::vector<std::optional<FileStamp>>> rejected_stamps_;

  std::atomic<uint64_t> reloads_ok_{0};
  std::atomic<uint64_t> reloads_failed_{0};
  std::atomic<bool> last_reload_ok_{true};
  std::atomic<uint64_t> auth_failures_{0};

  std::thread poller_;
  std::mutex poll_mutex_;
  std::condition_variable poll_cv_;
  bool stop_ = false;
};

}  // namespace meshflow::web
