#include "exporter/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/core/metric_builder.h"

namespace meshflow {
namespace {

[[noreturn]] void Fail(const std::string& step) {
  throw std::runtime_error("cannot drop privileges: " + step + ": " + std::strerror(errno));
}

std::string_view FieldValue(std::string_view status, std::string_view key) {
  size_t pos = 0;
  while (pos < status.size()) {
    const size_t end = std::min(status.find('\n', pos), status.size());
    std::string_view line = status.substr(pos, end - pos);
    pos = end + 1;
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':') {
      line.remove_prefix(key.size() + 1);
      while (!line.empty() && (line.front() == '\t' || line.front() == ' ')) line.remove_prefix(1);
      return line;
    }
  }
  return {};
}

template <typename T>
bool ParseNumber(std::string_view text, T& out, int base) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc() && end == text.data() + text.size();
}

// "1000\t1000\t1000\t1000" -> the first (real) or second (effective) id.
bool NthId(std::string_view ids, int n, int64_t& out) {
  for (int i = 0; i < n; ++i) {
    const auto tab = ids.find_first_of("\t ");
    if (tab == std::string_view::npos) return false;
    ids.remove_prefix(tab + 1);
  }
  return ParseNumber(ids.substr(0, ids.find_first_of("\t ")), out, 10);
}

uint64_t Mask(const std::vector<int>& caps) {
  uint64_t mask = 0;
  for (const int c : caps) mask |= uint64_t{1} << c;
  return mask;
}

void SetOwnCaps(uint64_t effective, uint64_t permitted, uint64_t inheritable) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  for (int i = 0; i < 2; ++i) {
    data[i].effective = static_cast<uint32_t>(effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(inheritable >> (32 * i));
  }
  if (syscall(SYS_capset, &header, data) != 0) Fail("capset");
}

int CountThreads() {
  std::error_code ec;
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    (void)entry;
    ++n;
  }
  return n;
}

// What the signal handler applies: set before the signals go out, read-only while they run.
__user_cap_header_struct g_capset_header;
__user_cap_data_struct g_capset_data[2];
std::atomic<int> g_capset_pending{0};

void OnCapsetSignal(int) {
  const int saved = errno;
  // A raw system call: async-signal-safe, and per thread, which is the point.
  syscall(SYS_capset, &g_capset_header, g_capset_data);
  g_capset_pending.fetch_sub(1);
  errno = saved;
}

void BroadcastCapset(uint64_t mask) {
  g_capset_header = {_LINUX_CAPABILITY_VERSION_3, 0};
  for (int i = 0; i < 2; ++i) {
    const auto half = static_cast<uint32_t>(mask >> (32 * i));
    g_capset_data[i] = {half, half, 0};
  }
  const int signal = SIGRTMIN + 4;
  struct sigaction action {};
  action.sa_handler = OnCapsetSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (sigaction(signal, &action, nullptr) != 0) Fail("sigaction");
  const pid_t pid = getpid();
  const pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    pid_t tid = 0;
    const std::string name = entry.path().filename().string();
    if (!ParseNumber(std::string_view(name), tid, 10) || tid == self) continue;
    g_capset_pending.fetch_add(1);
    if (syscall(SYS_tgkill, pid, tid, signal) != 0) g_capset_pending.fetch_sub(1);  // exited
  }
  // Bounded wait: a thread that blocks the signal never answers, and the check afterwards
  // reports it instead of hanging here.
  for (int i = 0; i < 2000 && g_capset_pending.load() > 0; ++i) {
    struct timespec ms {
      0, 1'000'000
    };
    nanosleep(&ms, nullptr);
  }
  g_capset_pending.store(0);
}

}  // namespace

ProcessPrivileges ReadThreadPrivileges(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  auto p = ParseProcStatus(text.str());
  if (!p) throw std::runtime_error("cannot read privileges from " + path);
  return *p;
}

std::optional<ProcessPrivileges> ParseProcStatus(std::string_view status) {
  ProcessPrivileges p;
  if (!NthId(FieldValue(status, "Uid"), 0, p.uid) || !NthId(FieldValue(status, "Uid"), 1, p.euid) ||
      !NthId(FieldValue(status, "Gid"), 0, p.gid)) {
    return std::nullopt;
  }
  struct {
    const char* key;
    uint64_t* out;
  } caps[] = {{"CapEff", &p.cap_effective},
              {"CapPrm", &p.cap_permitted},
              {"CapInh", &p.cap_inheritable},
              {"CapBnd", &p.cap_bounding},
              {"CapAmb", &p.cap_ambient}};
  for (const auto& c : caps) {
    // CapAmb is missing before Linux 4.3; treat it as empty there.
    const std::string_view v = FieldValue(status, c.key);
    if (v.empty() && std::string_view(c.key) == "CapAmb") continue;
    if (!ParseNumber(v, *c.out, 16)) return std::nullopt;
  }
  int64_t nnp = 0;
  p.no_new_privs = ParseNumber(FieldValue(status, "NoNewPrivs"), nnp, 10) && nnp == 1;
  return p;
}

ProcessPrivileges ReadOwnPrivileges() {
  ProcessPrivileges all = ReadThreadPrivileges("/proc/self/status");
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    ProcessPrivileges t;
    try {
      t = ReadThreadPrivileges(entry.path().string() + "/status");
    } catch (const std::runtime_error&) {
      continue;  // the thread ended meanwhile
    }
    all.cap_effective |= t.cap_effective;
    all.cap_permitted |= t.cap_permitted;
    all.cap_inheritable |= t.cap_inheritable;
    all.cap_bounding |= t.cap_bounding;
    all.cap_ambient |= t.cap_ambient;
    all.no_new_privs = all.no_new_privs && t.no_new_privs;
  }
  return all;
}

std::string CapabilityName(int cap) {
  char* name = cap_to_name(static_cast<cap_value_t>(cap));
  std::string out = name ? name : "cap_" + std::to_string(cap);
  if (name) cap_free(name);
  // libcap names capabilities it does not know by number ("12"), which says nothing.
  if (!out.empty() && out[0] >= '0' && out[0] <= '9') out = "cap_" + out;
  return out;
}

void DropPrivilegesBeforeStart(const std::string& runas) {
  if (CountThreads() != 1) {
    errno = EBUSY;
    Fail("threads were started before privileges were dropped");
  }
  const bool root = geteuid() == 0;
  if (!runas.empty() && root) {
    // getpwnam_r with a buffer sized by sysconf, since NSS entries have no fixed size.
    const long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buf(static_cast<size_t>(size > 0 ? size : 16384));
    passwd pw{};
    passwd* found = nullptr;
    const int rc = getpwnam_r(runas.c_str(), &pw, buf.data(), buf.size(), &found);
    if (found == nullptr) {
      errno = rc != 0 ? rc : ENOENT;
      Fail("unknown --runas user \"" + runas + "\"");
    }
    if (found->pw_uid == 0) {
      errno = EINVAL;
      Fail("--runas user \"" + runas + "\" is root");
    }
    // Keep the permitted set across setuid; without it the kernel clears every capability.
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) Fail("PR_SET_KEEPCAPS");
    // No supplementary groups: root's (disk, adm, ...) would otherwise stay.
    if (setgroups(0, nullptr) != 0) Fail("setgroups");
    if (setresgid(found->pw_gid, found->pw_gid, found->pw_gid) != 0) Fail("setresgid");
    if (setresuid(found->pw_uid, found->pw_uid, found->pw_uid) != 0) Fail("setresuid");
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) Fail("clearing PR_SET_KEEPCAPS");
  }

  const std::vector<int> start_caps = {CAP_NET_RAW, CAP_NET_ADMIN, CAP_NET_BIND_SERVICE};
  const uint64_t permitted = ReadThreadPrivileges("/proc/thread-self/status").cap_permitted;
  // Emptying the bounding set needs CAP_SETPCAP, which an unprivileged start (systemd's
  // ambient set) does not have and does not need: the unit has narrowed it already.
  if ((permitted >> CAP_SETPCAP) & 1) {
    std::vector<int> with_setpcap = start_caps;
    with_setpcap.push_back(CAP_SETPCAP);
    const uint64_t m = Mask(with_setpcap) & permitted;
    SetOwnCaps(m, m, 0);
    const uint64_t keep_mask = Mask(start_caps);
    for (int c = 0; c <= CAP_LAST_CAP; ++c) {
      if ((keep_mask >> c) & 1) continue;
      if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) Fail("PR_CAPBSET_DROP");
    }
  }
  // Ambient capabilities would pass to a child after exec; none is started.
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  const uint64_t m = Mask(start_caps) & permitted;
  SetOwnCaps(m, m, 0);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) Fail("PR_SET_NO_NEW_PRIVS");
}

void DropPrivilegesAfterStart(const std::vector<int>& keep) {
  const uint64_t want = Mask(keep);
  // Signal every other thread to capset itself, then check each one's status. A thread
  // started meanwhile inherits from a thread that may not have dropped yet, hence the rounds.
  for (int round = 0; round < 5; ++round) {
    const uint64_t held = ReadThreadPrivileges("/proc/thread-self/status").cap_permitted;
    const uint64_t m = want & held;
    SetOwnCaps(m, m, 0);
    BroadcastCapset(m);
    if ((ReadOwnPrivileges().cap_permitted & ~want) == 0) return;
  }
  errno = EAGAIN;
  Fail("some threads still hold capabilities that were dropped");
}

void CollectPrivilegeMetrics(const ProcessPrivileges& privileges,
                             std::vector<prometheus::MetricFamily>& out) {
  using prometheus::MetricType;
  FamilyBuilder caps("meshflow_capabilities",
                     "Linux capabilities the exporter holds, by set (1 for each held).",
                     MetricType::Gauge);
  for (int c = 0; c < 64; ++c) {
    const std::string name = CapabilityName(c);
    if ((privileges.cap_effective >> c) & 1) caps.Gauge({{"cap", name}, {"set", "effective"}}, 1);
    if ((privileges.cap_permitted >> c) & 1) caps.Gauge({{"cap", name}, {"set", "permitted"}}, 1);
  }
  caps.AppendTo(out);
  FamilyBuilder("meshflow_no_new_privs",
                "1 when PR_SET_NO_NEW_PRIVS is set, so no exec can gain privileges.",
                MetricType::Gauge)
      .Gauge({}, privileges.no_new_privs ? 1 : 0)
      .AppendTo(out);
  FamilyBuilder("meshflow_running_as_root", "1 when the exporter's effective user is root.",
                MetricType::Gauge)
      .Gauge({}, privileges.euid == 0 ? 1 : 0)
      .AppendTo(out);
}

}  // namespace meshflow
