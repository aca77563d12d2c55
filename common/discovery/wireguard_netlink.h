#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/discovery/source.h"
#include "common/discovery/wireguard.h"

namespace meshflow::discovery {

// Kernel WireGuard over generic netlink, as the kernel's include/uapi/linux/wireguard.h lays it
// out: resolve the "wireguard" family through the generic netlink controller, then dump
// WG_CMD_GET_DEVICE for one interface.

struct NetlinkDeviceParse {
  bool ok = false;
  std::string error;     // "message 2: peer 3: allowed IP 1: ..." when !ok
  int kernel_errno = 0;  // the kernel answered NLMSG_ERROR with this (positive) errno
  std::string ifname;
  std::vector<WireGuardPeer> peers;  // keys as 64 hex digits, as the UAPI parser gives them
};

// Parses everything read from the socket for one WG_CMD_GET_DEVICE dump: netlink messages back
// to back (each datagram holds one or more), ending with NLMSG_DONE. `family` is the resolved
// family id. A peer split across messages (the kernel's way with long allowed-IP lists) is
// joined. Anything malformed, truncated or missing fails the whole answer.
NetlinkDeviceParse ParseWgGetDevice(std::string_view messages, uint16_t family);

struct NetlinkFamilyParse {
  bool ok = false;
  std::string error;
  int kernel_errno = 0;  // ENOENT: no such family (the wireguard module is not loaded)
  uint16_t id = 0;
};

// Parses the controller's answer to CTRL_CMD_GETFAMILY: the family id.
NetlinkFamilyParse ParseGenlFamily(std::string_view messages);

// The requests, as sent (exposed for tests).
std::string GenlGetFamilyRequest(std::string_view name, uint32_t seq);
std::string WgGetDeviceRequest(uint16_t family, std::string_view ifname, uint32_t seq);

// Asks the kernel for one WireGuard interface's peers. Fails with a clear error when the kernel
// has no "wireguard" family, or the interface is not a kernel WireGuard device.
PollResult QueryKernelWireGuard(const std::string& ifname);

}  // namespace meshflow::discovery
