#!/usr/bin/env bash
# Where a probe RTT above the configured one comes from, measured on one link at one time:
#   - meshflow-probe (icmp, udp, tcp; kernel timestamps) and ping (user-space send time) from src
#     to p48 and p80 of the probe topology, side by side, 150 probes each at 20 ms;
#   - on WireGuard also ping to the peer's underlay address (198.18.0.N, what the emulator
#     shapes, no wireguard-go in the path) beside ping over the overlay: the difference is
#     wireguard-go's own round trip;
#   - the emulator's release lateness over the same window (released packets, mean, and how many
#     were later than 0.1 / 0.5 / 1 ms).
# LOAD busy loops at normal priority run during the measurement (0: quiet). Needs root.
#   tests/bench/testbed_rtt_rootcause.sh BUILD_DIR [tun|wireguard] [LOAD]
set -euo pipefail
export MESHFLOW_BUILD_DIR=${1:?usage: $0 BUILD_DIR [tun|wireguard] [LOAD]}
MODE=${2:-tun}
LOAD=${3:-0}
source "$(cd "$(dirname "$0")/../testbed" && pwd)/probe_lib.sh"

stats() {
  sort -g | awk '{ v[NR] = $1; s += $1 } END { if (NR) printf "min %.3f median %.3f mean %.3f p90 %.3f ms (n=%d)",
    v[1], v[int((NR + 1) / 2)], s / NR, v[int(NR * 0.9) + 1], NR; else printf "no samples" }'
}
# ping prints each time cut to 0.1 ms above 10 ms; its summary's mean has microseconds.
ping_times() { grep -o 'time=[0-9.]*' "$1" | cut -d= -f2; }
ping_mean() { sed -n 's|^rtt min/avg/max/mdev = [0-9.]*/\([0-9.]*\)/.*|\1|p' "$1"; }
late() { "$CTL" --socket "$SOCKET" show | sed -n 's/^overlay released=/released=/p'; }

MESHFLOW_TESTBED_OVERLAY=$MODE probe_up "mfrca-${MODE:0:3}"
for n in p48 p80; do start_peer "$n"; done
for n in p48 p80; do wait_peer "$n"; done
for n in p48 p80; do # warm up: WireGuard's handshake, first-packet paths
  ip netns exec "$(ns_of src)" ping -n -c 3 -i 0.2 "${NODE_V4[$n]}" >/dev/null || true
done

LOAD_PIDS=()
for ((i = 0; i < LOAD; i++)); do
  timeout 30 sh -c 'while :; do :; done' &
  LOAD_PIDS+=($!)
done
sleep 0.5
echo "mode=$MODE load_loops=$LOAD loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
before=$(late)
pids=()
for n in p48 p80; do
  ip netns exec "$(ns_of src)" ping -n -c 150 -i 0.02 "${NODE_V4[$n]}" >"$WORK/ping-$n.txt" &
  pids+=($!)
  if [[ $MODE == wireguard ]]; then
    ip netns exec "$(ns_of src)" ping -n -c 150 -i 0.02 "${NODE_UNDERLAY[$n]}" >"$WORK/uping-$n.txt" &
    pids+=($!)
  fi
done
ip netns exec "$(ns_of src)" timeout 60 "$PROBE" --peer "p48=${NODE_V4[p48]}" \
  --peer "p80=${NODE_V4[p80]}" --method icmp,udp,tcp --tcp-port 6443 --udp-port 9474 \
  --interval 20ms --timeout 1s --count 150 --samples >"$WORK/probe.txt"
wait "${pids[@]}" || true
after=$(late)
echo "loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)"
# (A bare `wait` would wait for the peers' exporters too.)
for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
((LOAD == 0)) || wait "${LOAD_PIDS[@]}" 2>/dev/null || true

for n in p48 p80; do
  echo "$MODE $n (${n#p} ms configured):"
  [[ $MODE == wireguard ]] && echo "  ping underlay  $(ping_times "$WORK/uping-$n.txt" | stats), exact mean $(ping_mean "$WORK/uping-$n.txt")"
  echo "  ping overlay   $(ping_times "$WORK/ping-$n.txt" | stats), exact mean $(ping_mean "$WORK/ping-$n.txt")"
  for m in icmp udp tcp; do
    echo "  probe $m      $(awk -v m="$m" -v p="$n" '$1 == "rtt" { ok = 0; v = "";
        for (i = 2; i <= NF; i++) { split($i, kv, "=");
          if (kv[1] == "method" && kv[2] == m) ok++; if (kv[1] == "peer" && kv[2] == p) ok++;
          if (kv[1] == "rtt_seconds") v = kv[2] * 1000 }
        if (ok == 2 && v != "") print v }' "$WORK/probe.txt" | stats)"
  done
done
# The emulator's counters are cumulative: the window's share is after minus before.
echo "emulator before: $before"
echo "emulator after:  $after"
