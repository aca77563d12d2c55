#!/usr/bin/env bash
# The test bed's truth checks, each run on the TUN-only overlay and then on real WireGuard
# (wireguard-go over the emulated underlay) in one session, every figure printed beside its
# ground truth by the check itself:
#   - probe RTT (icmp, udp, tcp; IPv4 and IPv6) against the configured 1, 48 and 80 ms
#     (tests/testbed/probe_rtt_test.sh);
#   - 12 % loss configured on one direction recovered, and split forward/return by the udp
#     probe; a cut link seen as 100 % loss (probe_loss_test.sh);
#   - passive TCP RTT against the kernel's own (`ss -ti`) on the 80 ms link, and retransmissions
#     against the kernel's counter on the 250 ms / 12 % loss link (tcp_passive_test.sh);
#   - probe RTT against ping on the same link at the same time (testbed_probe_vs_ping.sh).
# Needs root. About 10 minutes.
#   tests/bench/testbed_wireguard.sh BUILD_DIR
set -uo pipefail
build=${1:?usage: $0 BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
testbed=$here/../testbed
export MESHFLOW_BUILD_DIR=$build
for check in probe_rtt_test probe_loss_test tcp_passive_test; do
  for mode in tun wireguard; do
    echo "=== $check, overlay $mode"
    MESHFLOW_TESTBED_OVERLAY=$mode "$testbed/$check.sh" 2>&1 | grep -E '^(ok|FAIL|info|  )' |
      sed "s/^/$mode: /"
  done
done
echo "=== probe RTT against ping, same link, same time"
"$here/testbed_probe_vs_ping.sh" "$build"
