#!/usr/bin/env bash
# Overlay emulator benchmark. The peer is a plain kernel veth pair between two namespaces (no
# userspace hop, same MTU), measured in the same run:
#   - round trip with no configured delay (ping, 2,000 probes): what the userspace hop adds;
#   - delay precision at 10 ms configured: median and 99th percentile error;
#   - TCP throughput (iperf3, 5 s) and the emulator's CPU time per GB carried;
#   - a 50 Mbit/s rate limit: measured over configured;
#   - the emulator's resident memory and how late it released packets (its own error).
# Figures only; nothing passes or fails.
#   tests/bench/testbed_emulator.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
top=$(cd "$(dirname "$0")/../.." && pwd)
emulator=$build/tests/testbed/meshflow-overlay-emulator
ctl_bin=$build/tests/testbed/meshflow-overlay-ctl
if [[ $(id -u) != 0 ]]; then
  echo "testbed_emulator: skipped, needs root"
  exit 0
fi
for tool in ip ping iperf3; do
  command -v "$tool" >/dev/null || { echo "testbed_emulator: skipped, $tool missing"; exit 0; }
done
[[ -x $emulator ]] || { echo "testbed_emulator: $emulator not built"; exit 1; }

INSTANCE=mfbench
VA=mfbench-veth-a
VB=mfbench-veth-b
TMP=$(mktemp -d)
cat >"$TMP/topology.yaml" <<'YAML'
name: bench
defaults: {delay: 0}
nodes:
  - {name: a, ipv4: 100.64.0.1, ipv6: "fd7a:115c:a1e0::1"}
  - {name: b, ipv4: 100.64.0.2, ipv6: "fd7a:115c:a1e0::2"}
YAML
IPERF_PIDS=()
cleanup() {
  for p in "${IPERF_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$top/tests/testbed/down" --instance "$INSTANCE" >/dev/null 2>&1 || true
  ip netns delete "$VA" 2>/dev/null || true
  ip netns delete "$VB" 2>/dev/null || true
  rm -rf -- "$TMP"
}
trap cleanup EXIT

"$top/tests/testbed/up" --instance "$INSTANCE" --topology "$TMP/topology.yaml" --overlay tun --skip services \
  --emulator "$emulator" --ctl "$ctl_bin" >/dev/null
sock=${TMPDIR:-/tmp}/meshflow-testbed.$INSTANCE/overlay.sock
ctl() { "$ctl_bin" --socket "$sock" "$@" >/dev/null; }
emu_pid=$(cat "${TMPDIR:-/tmp}/meshflow-testbed.$INSTANCE/pids/emulator.pid")

ip netns add "$VA"
ip netns add "$VB"
ip -n "$VA" link add eth0 type veth peer name eth0 netns "$VB"
for ns in "$VA" "$VB"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 mtu 1280 up
done
ip -n "$VA" addr add 10.99.0.1/24 dev eth0
ip -n "$VB" addr add 10.99.0.2/24 dev eth0

# rtt_stats NS ADDR COUNT INTERVAL -> "median p99 mean"
rtt_stats() {
  timeout 120 ip netns exec "$1" ping -n -c "$3" -i "$4" -W 2 "$2" | grep -o 'time=[0-9.]*' |
    cut -d= -f2 | sort -g |
    awk '{v[NR]=$1; s+=$1} END {printf "%.3f %.3f %.3f", v[int((NR+1)/2)], v[int(NR*0.99)], s/NR}'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# iperf3_mbps SERVER_NS CLIENT_NS SERVER_ADDR -> Mbit/s received
iperf3_mbps() {
  ip netns exec "$1" iperf3 -s -1 -B "$3" >/dev/null 2>&1 &
  IPERF_PIDS+=($!)
  sleep 0.5
  timeout 30 ip netns exec "$2" iperf3 -c "$3" -t 5 -J 2>/dev/null |
    python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))'
  wait "${IPERF_PIDS[-1]}" 2>/dev/null || true
}

echo "rss_idle_kib $(rss_kib "$emu_pid")"

read -r e_med e_p99 e_mean <<<"$(rtt_stats mfbench-a 100.64.0.2 2000 0.002)"
read -r v_med v_p99 v_mean <<<"$(rtt_stats "$VA" 10.99.0.2 2000 0.002)"
printf 'rtt_no_delay_ms      emulator median %s p99 %s | veth median %s p99 %s | added %.3f ms\n' \
  "$e_med" "$e_p99" "$v_med" "$v_p99" "$(awk -v a="$e_med" -v b="$v_med" 'BEGIN {print a - b}')"

ctl set a b --rtt 10ms
read -r d_med d_p99 d_mean <<<"$(rtt_stats mfbench-a 100.64.0.2 1000 0.005)"
printf 'rtt_10ms_configured  median %s p99 %s mean %s | median error %.3f ms, p99 error %.3f ms\n' \
  "$d_med" "$d_p99" "$d_mean" "$(awk -v a="$d_med" 'BEGIN {print a - 10}')" \
  "$(awk -v a="$d_p99" 'BEGIN {print a - 10}')"
ctl set a b --rtt 0ms

t0=$(cpu_ticks "$emu_pid")
bytes0=$("$ctl_bin" --socket "$sock" show | sed -nE 's/^link a b .* bytes=([0-9]+) .*/\1/p')
e_tput=$(iperf3_mbps mfbench-b mfbench-a 100.64.0.2)
t1=$(cpu_ticks "$emu_pid")
bytes1=$("$ctl_bin" --socket "$sock" show | sed -nE 's/^link a b .* bytes=([0-9]+) .*/\1/p')
v_tput=$(iperf3_mbps "$VB" "$VA" 10.99.0.2)
hz=$(getconf CLK_TCK)
printf 'tcp_throughput_mbps  emulator %s | veth %s | ratio %.3f\n' "$e_tput" "$v_tput" \
  "$(awk -v a="$e_tput" -v b="$v_tput" 'BEGIN {print a / b}')"
printf 'emulator_cpu_s_per_gb %.2f (%.2f s CPU for %.0f MB)\n' \
  "$(awk -v t=$((t1 - t0)) -v hz="$hz" -v b=$((bytes1 - bytes0)) 'BEGIN {print (t / hz) / (b / 1e9)}')" \
  "$(awk -v t=$((t1 - t0)) -v hz="$hz" 'BEGIN {print t / hz}')" \
  "$(awk -v b=$((bytes1 - bytes0)) 'BEGIN {print b / 1e6}')"

ctl set a b --rate 50mbit
r_tput=$(iperf3_mbps mfbench-b mfbench-a 100.64.0.2)
printf 'rate_limit_50mbit    measured %s Mbit/s | ratio %.3f\n' "$r_tput" \
  "$(awk -v a="$r_tput" 'BEGIN {print a / 50}')"
echo "rss_after_kib $(rss_kib "$emu_pid")"
# The emulator's own scheduling error: how late it wrote packets after their release time.
"$ctl_bin" --socket "$sock" show | sed -n 's/^overlay released=/released_packets /p'
