#!/usr/bin/env bash
# What passive TCP (issue 6) costs the flow collector's offline path on a node-like TCP mix:
# 2,000 long-lived connections of the reference cluster's roles with real sequence numbers,
# echoed TCP timestamps, 0.5 % retransmissions and steady churn (tcp_cost_gen.py). meshflow's
# replay with flows.tcp off and on, alternating, ten pairs (TCP_BENCH_PAIRS), the fastest run of
# each and the median cost over the pairs, in packets per cpu-second. flow_replay.sh measures
# it on the reference mix (about 3,500 live connections among other traffic) and, as a worst
# case, on random TCP tuples. Goal: under 25 % fewer packets per second.
#   tcp_cost.sh BUILD_DIR      TCP_BENCH_PACKETS=N (default 2000000), TCP_BENCH_CONNECTIONS=N,
#                              TCP_BENCH_PAIRS=N (default 10)
set -euo pipefail
build=$1
packets=${TCP_BENCH_PACKETS:-2000000}
connections=${TCP_BENCH_CONNECTIONS:-2000}
here=$(cd "$(dirname "$0")" && pwd)
replay=$build/collectors/flow/meshflow-flow-replay
work=$(mktemp -d "${TMPDIR:-/tmp}/meshflow-tcp-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# shellcheck source-path=SCRIPTDIR source=lib/on_off.sh
. "$here/lib/on_off.sh"
pcap=$work/tcp-mix.pcap
/usr/bin/python3 "$here/tcp_cost_gen.py" "$pcap" "$packets" "$connections"
echo "== capture: $packets packets over $connections connections, $(du -m "$pcap" | cut -f1) MB"
cache_capture "$pcap" # from the page cache for every run
for state in on off; do
  { cat "$pcap.yaml"; printf 'flows:\n  tcp:\n    enabled: %s\n' \
    "$([[ $state == on ]] && echo true || echo false)"; } >"$work/tcp-$state.yaml"
done

on_off_runs "${TCP_BENCH_PAIRS:-10}" "$work/out.prom" \
  "$replay" --config.file "$work/tcp-off.yaml" "$pcap" -- \
  "$replay" --config.file "$work/tcp-on.yaml" "$pcap"
off=$off_cpu on=$on_cpu
samples=$(awk '/^meshflow_tcp_rtt_seconds_count/ { s += $2 } END { printf "%d", s }' "$work/out.prom")
retrans=$(awk '/^meshflow_tcp_retransmitted_packets_total/ { s += $2 } END { printf "%d", s }' \
  "$work/out.prom")
awk -v n="$packets" -v off="$off" -v on="$on" 'BEGIN {
  printf "passive TCP off: cpu %.3fs, %.2f million packets per cpu-second\n", off, n / off / 1e6
  printf "passive TCP on:  cpu %.3fs, %.2f million packets per cpu-second\n", on, n / on / 1e6
  printf "passive TCP cost: %.0f %% fewer packets per cpu-second (fastest runs), %.0f ns per packet (goal < 25 %%)\n",
    100 * (1 - off / on), (on - off) / n * 1e9 }'
echo "passive TCP cost, median of the pairs: $pair_cost %"
echo "(with passive TCP on: $samples RTT samples, $retrans retransmissions counted)"
