#include "common/web/web_config_watcher.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "common/core/config_reader.h"
#include "common/core/metric_builder.h"
#include "common/web/tls_context.h"

namespace meshflow::web {

std::optional<FileStamp> StampFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileStamp{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                   static_cast<int64_t>(st.st_size),
                   static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

WebConfigWatcher::WebConfigWatcher(std::string path) : path_(std::move(path)) {
  current_ = Load();
  stamps_ = StampAll(current_->config);
  if (!path_.empty()) {
    spdlog::info("web config loaded from {}: tls={} basic_auth_users={}", path_,
                 current_->config.tls ? "on" : "off", current_->config.basic_auth_users.size());
  }
}

WebConfigWatcher::~WebConfigWatcher() { StopPolling(); }

std::shared_ptr<const WebState> WebConfigWatcher::Current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

std::vector<std::optional<FileStamp>> WebConfigWatcher::StampAll(const WebConfig& config) const {
  std::vector<std::optional<FileStamp>> out;
  if (path_.empty()) return out;
  out.push_back(StampFile(path_));
  if (config.tls) {
    out.push_back(StampFile(config.tls->cert_file));
    out.push_back(StampFile(config.tls->key_file));
    if (!config.tls->client_ca_file.empty()) out.push_back(StampFile(config.tls->client_ca_file));
  }
  return out;
}

std::shared_ptr<const WebState> WebConfigWatcher::Load() const {
  auto state = std::make_shared<WebState>();
  if (!path_.empty()) {
    state->config = LoadWebConfigFile(path_);
    if (state->config.tls) {
      if (std::string why = ValidateTlsConfig(*state->config.tls); !why.empty()) {
        throw ConfigError(path_ + ": tls_server_config: " + why);
      }
    }
  }
  state->authenticator = std::make_shared<BasicAuthenticator>(state->config.basic_auth_users);
  return state;
}

WebConfigWatcher::Change WebConfigWatcher::Poll() {
  if (path_.empty()) return Change::kNone;
  std::shared_ptr<const WebState> old = Current();
  // The certificate files to watch are those of the config in force; a new config may name
  // others, which StampAll picks up after the reload.
  auto stamps = StampAll(old->config);
  std::vector<std::optional<FileStamp>> previous;
  {
    std::lock_guard lock(mutex_);
    if (stamps == stamps_) return Change::kNone;
    previous = stamps_;
    // A broken file is reported once, not at every poll.
    if (rejected_stamps_ && *rejected_stamps_ == stamps) return Change::kNone;
  }
  std::shared_ptr<const WebState> next;
  try {
    next = Load();
  } catch (const ConfigError& e) {
    spdlog::error("web config not reloaded, keeping the previous one: {}", e.what());
    ++reloads_failed_;
    last_reload_ok_ = false;
    std::lock_guard lock(mutex_);
    rejected_stamps_ = stamps;
    return Change::kRejected;
  }
  // Stamps before the load may miss a write that raced with it; stamping the new config's files
  // now means such a write is seen at the next poll.
  auto new_stamps = StampAll(next->config);
  // Element 0 is the web config file itself; the rest are the certificate files.
  const bool certs_changed = stamps.size() != previous.size() ||
                             !std::equal(stamps.begin() + 1, stamps.end(), previous.begin() + 1);
  const bool tls_changed =
      next->config.tls != old->config.tls || (next->config.tls.has_value() && certs_changed);
  {
    std::lock_guard lock(mutex_);
    current_ = next;
    stamps_ = std::move(new_stamps);
    rejected_stamps_.reset();
  }
  ++reloads_ok_;
  last_reload_ok_ = true;
  spdlog::info("web config reloaded from {}: tls={} basic_auth_users={} listener={}", path_,
               next->config.tls ? "on" : "off", next->config.basic_auth_users.size(),
               tls_changed ? "restart" : "kept");
  return tls_changed ? Change::kTls : Change::kAuth;
}

void WebConfigWatcher::StartPolling(std::chrono::milliseconds interval,
                                    std::function<void(Change)> on_change) {
  if (path_.empty() || poller_.joinable()) return;
  stop_ = false;
  poller_ = std::thread([this, interval, on_change = std::move(on_change)] {
    std::unique_lock lock(poll_mutex_);
    while (!poll_cv_.wait_for(lock, interval, [this] { return stop_; })) {
      lock.unlock();
      const Change change = Poll();
      if ((change == Change::kAuth || change == Change::kTls) && on_change) on_change(change);
      lock.lock();
    }
  });
}

void WebConfigWatcher::StopPolling() {
  {
    std::lock_guard lock(poll_mutex_);
    stop_ = true;
  }
  poll_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

bool WebConfigWatcher::Authorize(std::optional<std::string_view> authorization) {
  // Hold the state, not the lock: the bcrypt inside must not block a reload.
  const std::shared_ptr<const WebState> state = Current();
  if (state->authenticator->Check(authorization)) return true;
  ++auth_failures_;
  return false;
}

void WebConfigWatcher::Collect(std::vector<prometheus::MetricFamily>& out) const {
  using prometheus::MetricType;
  const auto state = Current();
  FamilyBuilder("meshflow_web_config_last_reload_success",
                "1 when the last load of the web config file succeeded.", MetricType::Gauge)
      .Gauge({}, last_reload_ok_ ? 1 : 0)
      .AppendTo(out);
  FamilyBuilder("meshflow_web_config_reloads_total",
                "Reloads of the web config file after a change, by result.", MetricType::Counter)
      .Counter({{"result", "success"}}, static_cast<double>(reloads_ok_.load()))
      .Counter({{"result", "failure"}}, static_cast<double>(reloads_failed_.load()))
      .AppendTo(out);
  FamilyBuilder("meshflow_web_auth_failures_total",
                "Requests refused with 401 for missing or wrong basic auth credentials.",
                MetricType::Counter)
      .Counter({}, static_cast<double>(auth_failures_.load()))
      .AppendTo(out);
  FamilyBuilder("meshflow_web_tls_enabled", "1 when the listener serves HTTPS.", MetricType::Gauge)
      .Gauge({}, state->config.tls ? 1 : 0)
      .AppendTo(out);
}

}  // namespace meshflow::web
