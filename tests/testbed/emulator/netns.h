#pragma once

#include <string>
#include <vector>

#include "tests/testbed/emulator/overlay.h"
#include "tests/testbed/emulator/topology.h"

namespace meshflow::testbed {

// Runs a program (no shell) and waits; returns its exit status, or -1 when it could not start.
int RunProgram(const std::vector<std::string>& argv);

// The kernel side of the test bed: one network namespace per node with the emulator's TUN device
// (the overlay itself, or in WireGuard mode the underlay under wireguard-go), and the LAN segments
// (a bridge in a namespace of its own, veth pairs, VXLAN). Everything it creates is removed by the
// destructor, so a failed start leaves nothing behind.
class NetworkBuilder {
 public:
  // `prefix` starts every namespace name: "mf-" gives mf-ct-serv-jp and mf-lan-home.
  NetworkBuilder(const Topology& topology, std::string prefix, OverlayMode mode);
  ~NetworkBuilder();
  NetworkBuilder(const NetworkBuilder&) = delete;
  NetworkBuilder& operator=(const NetworkBuilder&) = delete;

  // Creates everything; throws std::runtime_error naming the step that failed.
  void Build();

  // One non-blocking TUN fd per node, in topology order.
  const std::vector<int>& tun_fds() const { return tun_fds_; }
  std::string NodeNamespace(size_t node) const;
  std::string LanNamespace(size_t lan) const;

 private:
  void Ip(const std::vector<std::string>& args);
  void AddNamespace(const std::string& name);
  int OpenTunIn(const std::string& netns, const std::string& device);
  void BuildNode(size_t node);
  void BuildLan(size_t lan);

  const Topology& topology_;
  std::string prefix_;
  OverlayMode mode_;
  std::vector<std::string> created_namespaces_;
  std::vector<int> tun_fds_;
};

}  // namespace meshflow::testbed
