#!/usr/bin/env bash
# What passive TCP (issue 6) costs the flow collector's offline path on a node-like TCP mix:
# 2,000 long-lived connections of the reference cluster's roles with real sequence numbers,
# echoed TCP timestamps, 0.5 % retransmissions and steady churn (tcp_cost_gen.py). meshflow's
# replay with flows.tcp off and on, best of three each, in packets per cpu-second. The
# random-tuple reference mix (about 170,000 connections in 3 million packets) is measured by
# flow_replay.sh beside pmacctd and tshark. Goal: under 25 % fewer packets per second.
#   tcp_cost.sh BUILD_DIR      TCP_BENCH_PACKETS=N (default 2000000), TCP_BENCH_CONNECTIONS=N
set -euo pipefail
build=$1
packets=${TCP_BENCH_PACKETS:-2000000}
connections=${TCP_BENCH_CONNECTIONS:-2000}
here=$(cd "$(dirname "$0")" && pwd)
replay=$build/collectors/flow/meshflow-flow-replay
work=$(mktemp -d "${TMPDIR:-/tmp}/meshflow-tcp-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

pcap=$work/tcp-mix.pcap
/usr/bin/python3 "$here/tcp_cost_gen.py" "$pcap" "$packets" "$connections"
echo "== capture: $packets packets over $connections connections, $(du -m "$pcap" | cut -f1) MB"
cat "$pcap" >/dev/null # from the page cache for every run
for state in on off; do
  { cat "$pcap.yaml"; printf 'flows:\n  tcp:\n    enabled: %s\n' \
    "$([[ $state == on ]] && echo true || echo false)"; } >"$work/tcp-$state.yaml"
done

best() { # CONFIG: prints the lowest user+sys seconds of three runs
  local TIMEFORMAT="%U %S" t b=""
  for _ in 1 2 3; do
    t=$({ time "$replay" --config.file "$1" "$pcap" >"$work/out.prom" 2>/dev/null; } 2>&1)
    t=$(awk '{ print $1 + $2 }' <<<"$t")
    if [[ -z $b ]] || awk -v a="$t" -v b="$b" 'BEGIN { exit !(a < b) }'; then b=$t; fi
  done
  echo "$b"
}
off=$(best "$work/tcp-off.yaml")
on=$(best "$work/tcp-on.yaml")
samples=$(awk '/^meshflow_tcp_rtt_seconds_count/ { s += $2 } END { printf "%d", s }' "$work/out.prom")
retrans=$(awk '/^meshflow_tcp_retransmitted_packets_total/ { s += $2 } END { printf "%d", s }' \
  "$work/out.prom")
awk -v n="$packets" -v off="$off" -v on="$on" 'BEGIN {
  printf "passive TCP off: cpu %.3fs, %.2f million packets per cpu-second\n", off, n / off / 1e6
  printf "passive TCP on:  cpu %.3fs, %.2f million packets per cpu-second\n", on, n / on / 1e6
  printf "passive TCP cost: %.0f %% fewer packets per cpu-second, %.0f ns per packet (goal < 25 %%)\n",
    100 * (1 - off / on), (on - off) / n * 1e9 }'
echo "(with passive TCP on: $samples RTT samples, $retrans retransmissions counted)"
