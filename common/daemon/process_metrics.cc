#include "common/daemon/process_metrics.h"

#include <dirent.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/core/metric_builder.h"
#include "common/daemon/version.h"

namespace meshflow {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// /proc/stat's btime: the boot time in seconds since the epoch.
double BootTime(const std::string& proc_root) {
  // /proc/self/stat's parent holds the system-wide stat; fixtures keep one beside it.
  std::istringstream in(ReadFile(proc_root + "/../stat"));
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double v = 0;
      in >> v;
      return v;
    }
    in.ignore(1 << 16, '\n');
  }
  throw std::runtime_error("no btime in " + proc_root + "/../stat");
}

}  // namespace

void CollectProcessMetrics(const std::string& proc_root,
                           std::vector<prometheus::MetricFamily>& out) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));

  // The command name in field 2 may contain spaces and parentheses: parse after the last ')'.
  const std::string stat = ReadFile(proc_root + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) throw std::runtime_error("malformed " + proc_root + "/stat");
  std::istringstream fields(stat.substr(close + 2));
  std::vector<std::string> f;  // f[0] is field 3 (state)
  for (std::string v; fields >> v;) f.push_back(v);
  if (f.size() < 22) throw std::runtime_error("short " + proc_root + "/stat");
  const double utime = std::stod(f[11]);      // field 14
  const double stime = std::stod(f[12]);      // field 15
  const double starttime = std::stod(f[19]);  // field 22
  const double vsize = std::stod(f[20]);      // field 23, bytes
  const double rss_pages = std::stod(f[21]);  // field 24, pages

  double open_fds = 0;
  if (DIR* dir = opendir((proc_root + "/fd").c_str())) {
    while (const dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') ++open_fds;
    }
    closedir(dir);
    // The directory stream itself holds one descriptor while we count.
    if (proc_root == "/proc/self" && open_fds > 0) --open_fds;
  }

  double max_fds = 0;
  {
    std::istringstream limits(ReadFile(proc_root + "/limits"));
    for (std::string line; std::getline(limits, line);) {
      if (line.rfind("Max open files", 0) == 0) {
        std::istringstream l(line.substr(14));
        std::string soft;
        l >> soft;
        max_fds = soft == "unlimited" ? 0 : std::stod(soft);
      }
    }
  }

  using prometheus::MetricType;
  FamilyBuilder("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                MetricType::Counter)
      .Counter({}, (utime + stime) / ticks)
      .AppendTo(out);
  FamilyBuilder("process_resident_memory_bytes", "Resident memory size in bytes.",
                MetricType::Gauge)
      .Gauge({}, rss_pages * page)
      .AppendTo(out);
  FamilyBuilder("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge)
      .Gauge({}, vsize)
      .AppendTo(out);
  FamilyBuilder("process_open_fds", "Number of open file descriptors.", MetricType::Gauge)
      .Gauge({}, open_fds)
      .AppendTo(out);
  FamilyBuilder("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge)
      .Gauge({}, max_fds)
      .AppendTo(out);
  FamilyBuilder("process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.", MetricType::Gauge)
      .Gauge({}, BootTime(proc_root) + starttime / ticks)
      .AppendTo(out);
}

void CollectDaemonSelfMetrics(bool last_reload_ok, double last_reload_success_time,
                              std::vector<prometheus::MetricFamily>& out) {
  using prometheus::MetricType;
  FamilyBuilder("meshflow_build_info",
                "A metric with a constant '1' value labeled by the version and revision from "
                "which meshflow was built.",
                MetricType::Gauge)
      .Gauge({{"revision", std::string(kRevision)}, {"version", std::string(kVersion)}}, 1)
      .AppendTo(out);
  FamilyBuilder("meshflow_config_last_reload_successful",
                "Whether the last configuration reload attempt was successful.", MetricType::Gauge)
      .Gauge({}, last_reload_ok ? 1 : 0)
      .AppendTo(out);
  FamilyBuilder("meshflow_config_last_reload_success_timestamp_seconds",
                "Timestamp of the last successful configuration reload.", MetricType::Gauge)
      .Gauge({}, last_reload_success_time)
      .AppendTo(out);
  try {
    CollectProcessMetrics("/proc/self", out);
  } catch (const std::exception& e) {
    spdlog::debug("process metrics unavailable: {}", e.what());
  }
}

ReloadOutcome ReloadStatus::Reload(std::string_view what, const Clock& clock,
                                   const std::function<std::string()>& apply) {
  try {
    const std::string source = apply();
    Succeeded(std::chrono::duration<double>(clock.Wall().time_since_epoch()).count());
    spdlog::info("{} reloaded from {}", what, source);
    return {true, ""};
  } catch (const std::exception& e) {
    Failed();
    spdlog::error("{} reload failed, keeping the running config: {}", what, e.what());
    return {false, e.what()};
  }
}

void ReloadStatus::Succeeded(double wall_seconds) {
  std::lock_guard lock(mutex_);
  last_ok_ = true;
  last_success_time_ = wall_seconds;
}

void ReloadStatus::Failed() {
  std::lock_guard lock(mutex_);
  last_ok_ = false;
}

void ReloadStatus::CollectSelf(std::vector<prometheus::MetricFamily>& out) const {
  bool ok = true;
  double time = 0;
  {
    std::lock_guard lock(mutex_);
    ok = last_ok_;
    time = last_success_time_;
  }
  CollectDaemonSelfMetrics(ok, time, out);
}

}  // namespace meshflow
