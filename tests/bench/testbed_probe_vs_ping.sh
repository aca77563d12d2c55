#!/usr/bin/env bash
# Probe RTT against ping on the same link at the same time, on the TUN-only overlay and on real
# WireGuard (wireguard-go over the emulated underlay), in one run: meshflow-probe (icmp, udp)
# and ping from src to p48 and p80 of the probe topology (48 and 80 ms configured), 200 probes
# each at 20 ms, side by side. Prints median and mean of each. Needs root.
#   tests/bench/testbed_probe_vs_ping.sh BUILD_DIR
set -euo pipefail
export MESHFLOW_BUILD_DIR=${1:?usage: $0 BUILD_DIR}
source "$(cd "$(dirname "$0")/../testbed" && pwd)/probe_lib.sh"

stats() { sort -g | awk '{v[NR] = $1; s += $1} END { printf "median %.3f mean %.3f ms (n=%d)", v[int((NR + 1) / 2)], s / NR, NR }'; }

run_mode() {
  local mode=$1
  MESHFLOW_TESTBED_OVERLAY=$mode probe_up "mfbpp-${mode:0:3}"
  for n in p48 p80; do start_peer "$n"; done
  for n in p48 p80; do wait_peer "$n"; done
  for n in p48 p80; do
    # Warm up: the WireGuard handshake, ARP-free but first-packet paths.
    ip netns exec "$(ns_of src)" ping -n -c 3 -i 0.2 "${NODE_V4[$n]}" >/dev/null || true
    ip netns exec "$(ns_of src)" ping -n -c 200 -i 0.02 "${NODE_V4[$n]}" >"$WORK/ping-$n.txt" &
    local ping_pid=$!
    ip netns exec "$(ns_of src)" timeout 60 "$PROBE" --peer "$n=${NODE_V4[$n]}" --method icmp,udp \
      --udp-port 9474 --interval 20ms --timeout 1s --count 200 --samples >"$WORK/probe-$n.txt"
    wait "$ping_pid" || true
    local rtt=${n#p}
    echo "$mode $n (${rtt} ms configured):"
    echo "  ping       $(grep -o 'time=[0-9.]*' "$WORK/ping-$n.txt" | cut -d= -f2 | stats)"
    for m in icmp udp; do
      echo "  probe $m  $(awk -v m="$m" '$1 == "rtt" { ok = 0; v = "";
          for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "method" && kv[2] == m) ok = 1;
            if (kv[1] == "rtt_seconds") v = kv[2] * 1000 }
          if (ok && v != "") print v }' "$WORK/probe-$n.txt" | stats)"
    done
  done
  probe_cleanup
  PROBE_PIDS=()
}
run_mode tun
run_mode wireguard
