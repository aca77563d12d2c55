#include "tests/testbed/emulator/netns.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace meshflow::testbed {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string Join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

// Closes a descriptor at scope exit.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

}  // namespace

int RunProgram(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

NetworkBuilder::NetworkBuilder(const Topology& topology, std::string prefix, OverlayMode mode)
    : topology_(topology), prefix_(std::move(prefix)), mode_(mode) {}

NetworkBuilder::~NetworkBuilder() {
  for (int fd : tun_fds_) close(fd);
  // Deleting a namespace destroys the veths, bridges and VXLAN devices inside it.
  for (auto it = created_namespaces_.rbegin(); it != created_namespaces_.rend(); ++it)
    RunProgram({"ip", "netns", "delete", *it});
}

std::string NetworkBuilder::NodeNamespace(size_t node) const {
  return prefix_ + topology_.nodes[node].name;
}

std::string NetworkBuilder::LanNamespace(size_t lan) const {
  return prefix_ + "lan-" + topology_.lans[lan].name;
}

void NetworkBuilder::Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  if (RunProgram(argv) != 0) throw std::runtime_error("failed: " + Join(argv));
}

void NetworkBuilder::AddNamespace(const std::string& name) {
  if (access(("/run/netns/" + name).c_str(), F_OK) == 0)
    throw std::runtime_error("network namespace " + name +
                             " already exists; remove the old test bed first (tests/testbed/down)");
  Ip({"netns", "add", name});
  created_namespaces_.push_back(name);
  Ip({"-n", name, "link", "set", "lo", "up"});
}

// A TUN device belongs to the namespace its creator was in; the fd keeps working from any
// namespace afterwards. Namespaces are per thread, so only this thread moves, and moves back.
int NetworkBuilder::OpenTunIn(const std::string& netns, const std::string& device) {
  const int target = open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) throw std::runtime_error(Errno("open netns " + netns));
  FdCloser close_target(target);
  const int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) throw std::runtime_error(Errno("open own netns"));
  FdCloser close_home(home);
  if (setns(target, CLONE_NEWNET) != 0) throw std::runtime_error(Errno("setns " + netns));
  const int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  const int open_errno = errno;
  int ioctl_result = -1;
  if (fd >= 0) {
    ifreq ifr{};
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, device.c_str(), IFNAMSIZ - 1);
    ioctl_result = ioctl(fd, TUNSETIFF, &ifr);
  }
  const int ioctl_errno = errno;
  if (setns(home, CLONE_NEWNET) != 0) {
    // Continuing in the wrong namespace would build the rest of the test bed in it.
    spdlog::critical("cannot return to the emulator's own network namespace: {}",
                     std::strerror(errno));
    std::abort();
  }
  if (fd < 0) {
    errno = open_errno;
    throw std::runtime_error(Errno("open /dev/net/tun"));
  }
  if (ioctl_result != 0) {
    close(fd);
    errno = ioctl_errno;
    throw std::runtime_error(Errno("TUNSETIFF " + device + " in " + netns));
  }
  return fd;
}

void NetworkBuilder::BuildNode(size_t i) {
  const TopologyNode& node = topology_.nodes[i];
  const std::string ns = NodeNamespace(i);
  AddNamespace(ns);
  if (mode_ == OverlayMode::kWireGuard) {
    // Only the underlay: wireguard-go, started in the namespace afterwards, makes the overlay
    // device and sends its UDP from this address.
    const std::string& dev = topology_.underlay.device;
    tun_fds_.push_back(OpenTunIn(ns, dev));
    Ip({"-n", ns, "link", "set", dev, "mtu", std::to_string(topology_.underlay.mtu), "up"});
    Ip({"-n", ns, "addr", "add", node.underlay_ipv4.ToString() + "/32", "dev", dev});
    Ip({"-n", ns, "route", "add", topology_.underlay.ipv4.ToString(), "dev", dev, "src",
        node.underlay_ipv4.ToString()});
    return;
  }
  const std::string& dev = topology_.device;
  tun_fds_.push_back(OpenTunIn(ns, dev));
  Ip({"-n", ns, "link", "set", dev, "mtu", std::to_string(topology_.mtu), "up"});
  // Host addresses and a route for the whole range, as tailscaled sets up tailscale0.
  Ip({"-n", ns, "addr", "add", node.ipv4.ToString() + "/32", "dev", dev});
  Ip({"-n", ns, "-6", "addr", "add", node.ipv6.ToString() + "/128", "dev", dev, "nodad"});
  Ip({"-n", ns, "route", "add", topology_.overlay_ipv4.ToString(), "dev", dev, "src",
      node.ipv4.ToString()});
  Ip({"-n", ns, "-6", "route", "add", topology_.overlay_ipv6.ToString(), "dev", dev, "src",
      node.ipv6.ToString()});
}

void NetworkBuilder::BuildLan(size_t l) {
  const TopologyLan& lan = topology_.lans[l];
  const std::string lan_ns = LanNamespace(l);
  AddNamespace(lan_ns);
  Ip({"-n", lan_ns, "link", "add", "br0", "type", "bridge"});
  Ip({"-n", lan_ns, "link", "set", "br0", "up"});
  std::vector<size_t> members;
  for (size_t i = 0; i < topology_.nodes.size(); ++i)
    if (topology_.nodes[i].lan && topology_.nodes[i].lan->segment == lan.name) members.push_back(i);
  for (size_t i : members) {
    const std::string ns = NodeNamespace(i);
    // Appended, not "p" + to_string(i): gcc 12 at -O3 reports a false -Wrestrict on that.
    std::string port = "p";
    port += std::to_string(i);
    Ip({"-n", lan_ns, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns});
    Ip({"-n", lan_ns, "link", "set", port, "master", "br0", "up"});
    Ip({"-n", ns, "addr", "add", topology_.nodes[i].lan->address.ToString(), "dev", "eth0"});
    Ip({"-n", ns, "link", "set", "eth0", "up"});
  }
  if (!lan.vxlan) return;
  const auto& vx = *lan.vxlan;
  for (size_t i : members) {
    const std::string ns = NodeNamespace(i);
    const auto& m = *topology_.nodes[i].lan;
    // flannel's vxlan backend: one VTEP per node on the LAN address, 50 bytes of encapsulation.
    Ip({"-n", ns, "link", "add", vx.device, "type", "vxlan", "id", std::to_string(vx.vni),
        "dstport", std::to_string(vx.port), "local", m.address.address.ToString(), "dev", "eth0"});
    for (size_t peer : members) {
      if (peer == i) continue;
      // Flooding entries stand in for the MACs flanneld would program from the API server.
      if (RunProgram({"bridge", "-n", ns, "fdb", "append", "00:00:00:00:00:00", "dev", vx.device,
                      "dst", topology_.nodes[peer].lan->address.address.ToString()}) != 0)
        throw std::runtime_error("failed: bridge fdb append on " + ns);
    }
    Ip({"-n", ns, "addr", "add", m.vxlan_address->ToString(), "dev", vx.device});
    Ip({"-n", ns, "link", "set", vx.device, "mtu", "1450", "up"});
  }
}

void NetworkBuilder::Build() {
  for (size_t i = 0; i < topology_.nodes.size(); ++i) BuildNode(i);
  for (size_t l = 0; l < topology_.lans.size(); ++l) BuildLan(l);
}

}  // namespace meshflow::testbed
