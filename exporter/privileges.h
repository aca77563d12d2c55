#pragma once

#include <prometheus/metric_family.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meshflow {

// What a process may do, as /proc/<pid>/status shows it.
struct ProcessPrivileges {
  int64_t uid = -1;  // real
  int64_t euid = -1;
  int64_t gid = -1;
  uint64_t cap_effective = 0;
  uint64_t cap_permitted = 0;
  uint64_t cap_inheritable = 0;
  uint64_t cap_bounding = 0;
  uint64_t cap_ambient = 0;
  bool no_new_privs = false;
};

// Parses the text of /proc/<pid>/status; nullopt when the Uid or Cap lines are missing.
std::optional<ProcessPrivileges> ParseProcStatus(std::string_view status);
// This process's privileges now, capabilities as the union over all its threads; throws
// std::runtime_error when /proc is unreadable.
ProcessPrivileges ReadOwnPrivileges();

// One thread's privileges from a status file (/proc/thread-self/status).
ProcessPrivileges ReadThreadPrivileges(const std::string& path);

// "cap_net_raw" for CAP_NET_RAW (12); "cap_<n>" for numbers libcap does not know.
std::string CapabilityName(int cap);

// Capabilities are per thread on Linux, so privileges are dropped in two steps:
//
// BeforeStart runs while the process has one thread. It narrows every set to what starting
// can need (CAP_NET_RAW, CAP_NET_ADMIN, CAP_NET_BIND_SERVICE, as far as held), switches to
// `runas` when it is not empty and the process is root (keeping those across the switch),
// and sets PR_SET_NO_NEW_PRIVS; threads started later inherit all of it.
//
// AfterStart runs once collectors have opened their sockets and narrows every thread of the
// process to `keep`. Both throw std::runtime_error naming the step that failed; the caller
// must then exit rather than run with more privilege than intended.
void DropPrivilegesBeforeStart(const std::string& runas);
void DropPrivilegesAfterStart(const std::vector<int>& keep);

// meshflow_capabilities{cap,set} (1 for each capability held in the effective and permitted
// sets), meshflow_no_new_privs and meshflow_running_as_root.
void CollectPrivilegeMetrics(const ProcessPrivileges& privileges,
                             std::vector<prometheus::MetricFamily>& out);

}  // namespace meshflow
