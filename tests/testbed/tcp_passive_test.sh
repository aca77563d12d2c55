#!/usr/bin/env bash
# Passive TCP health (issue 6) on the test bed, against the kernel's own view of the same
# connections:
#   1. reference topology, the 80 ms ct-serv-jp <-> acer-agent link: pgbench from acer-agent to
#      PostgreSQL on ct-serv-jp and redis-benchmark from ct-serv-jp to Redis on acer-agent. The
#      smallest RTT sample each client node's exporter took (handshake and timestamp) is within
#      0.5 ms of the kernel's smallest RTT sample of those connections (`ss -ti` minrtt), read
#      while they run. Minimum against minimum: the kernel exposes no sample but its minimum;
#      `ss` rtt is its smoothed RTT (srtt, an average with gain 1/8), which follows the mean of
#      the samples, not their median, and under load the samples' tail (the server's own
#      processing, delayed ACKs, a stalled CPU) pulls the two apart by several ms (see
#      tests/testbed/README.md). Both medians are printed beside it.
#   2. wan topology (250 ms, 12 % loss each way): bulk iperf3 transfers from cloud-cp; the
#      retransmissions cloud-cp's exporter counts with src_node=cloud-cp agree within 5 % with
#      the kernel's TcpRetransSegs in cloud-cp's namespace (every TCP sender there is ours).
# Needs root. Own instances (mftcp, mftcpw), removed on any exit. Bounded: every client runs
# under `timeout`.
#   tcp_passive_test.sh   (binaries from MESHFLOW_BUILD_DIR or the first build directory)
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$DIR/lib.sh"
if [[ $(id -u) != 0 ]]; then
  echo "skipped: needs root (network namespaces)"
  exit 77
fi
WORK=$(mktemp -d)
INSTANCES=()
cleanup() {
  local i
  for i in "${INSTANCES[@]}"; do "$DIR/down" --instance "$i" >/dev/null 2>&1 || true; done
  rm -rf -- "$WORK"
}
trap cleanup EXIT

in_node() {
  local node=$1
  shift
  ip netns exec "$(ns_of "$node")" "$@"
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# min/p10/median/p90/max/mean of numbers on stdin, for the messages.
spread() { sort -g | awk '{ v[NR] = $1; s += $1 } END { if (NR) printf "min %.2f p10 %.2f p50 %.2f p90 %.2f max %.2f mean %.2f", v[1], v[int(NR * 0.1) + 1], v[int((NR + 1) / 2)], v[int(NR * 0.9) + 1], v[NR], s / NR }'; }
scrape() { in_node "$1" curl -sf -m 5 "http://${NODE_V4[$1]}:9474/metrics"; }

# The kernel's smoothed RTT (ms) of every established connection to PORT into OUT and its
# minimum RTT into OUT.min, every 0.5 s, until the file STOP exists (at most 120 readings).
sample_ss() {
  local node=$1 port=$2 out=$3 stop=$4 i lines
  for ((i = 0; i < 120; i++)); do
    [[ -e $stop ]] && break
    lines=$(in_node "$node" ss -tinH state established "( dport = :$port )" || true)
    grep -o ' rtt:[0-9.]*' <<<"$lines" | cut -d: -f2 >>"$out" || true
    grep -o 'minrtt:[0-9.]*' <<<"$lines" | cut -d: -f2 >>"$out.min" || true
    sleep 0.5
  done
}
# The RTT samples (ms) an exporter logged for ROLE SRC DST.
logged_samples() {
  local log=$1 role=$2 src=$3 dst=$4
  grep -o "tcp rtt sample role=$role src_node=$src dst_node=$dst kind=[a-z]* seconds=[0-9.]*" \
    "$log" | sed 's/.*seconds=//' | awk '{ printf "%.3f\n", $1 * 1000 }'
}

# --- 1. RTT over the 80 ms link ------------------------------------------------------------------
set_instance mftcp
INSTANCES+=("$INSTANCE")
"$DIR/up" --instance "$INSTANCE" --overlay "${MESHFLOW_TESTBED_OVERLAY:-tun}" \
  --only postgres,redis,exporters --require-exporter \
  --exporter-arg --log.level=debug --exporter-arg --no-collector.probe
load_nodes
acer=acer-agent ct=ct-serv-jp

stop=$WORK/stop
sample_ss "$acer" 5432 "$WORK/kernel-postgresql" "$stop" &
ss_pg=$!
sample_ss "$ct" 6379 "$WORK/kernel-redis" "$stop" &
ss_redis=$!
timeout 60 ip netns exec "$(ns_of "$acer")" pgbench -h "${NODE_V4[$ct]}" -U postgres -S -M prepared -c 2 -T 15 \
  -n bench >"$WORK/pgbench.log" 2>&1 &
pg=$!
timeout 60 ip netns exec "$(ns_of "$ct")" redis-benchmark -h "${NODE_V4[$acer]}" -p 6379 -c 2 \
  -n 150 -t set,get -q >"$WORK/redis-benchmark.log" 2>&1 &
redis=$!
wait "$pg" || fail "pgbench failed: $(tail -n 3 "$WORK/pgbench.log")"
wait "$redis" || fail "redis-benchmark failed: $(tail -n 3 "$WORK/redis-benchmark.log")"
touch "$stop"
wait "$ss_pg" "$ss_redis"
sleep 1 # the last echoes reach the exporters' capture buffers (buffer timeout)

check_rtt() {
  local role=$1 client=$2 server=$3 kernel_file=$4
  local log=$RUN_DIR/logs/exporter-$client.log
  local ours n_ours kernel n_kernel count ours_median kernel_median
  ours=$(logged_samples "$log" "$role" "$client" "$server" | sort -g | head -n 1 || true)
  ours_median=$(logged_samples "$log" "$role" "$client" "$server" | median || true)
  n_ours=$(logged_samples "$log" "$role" "$client" "$server" | wc -l || true)
  kernel=$(sort -g "$kernel_file.min" 2>/dev/null | head -n 1 || true)
  kernel_median=$(median <"$kernel_file")
  n_kernel=$(wc -l <"$kernel_file")
  echo "      $role meshflow samples (ms): $(logged_samples "$log" "$role" "$client" "$server" | spread)"
  echo "      $role kernel ss rtt (ms):    $(spread <"$kernel_file") (srtt)"
  echo "      $role kernel ss minrtt (ms): $(spread <"$kernel_file.min")"
  echo "      $role medians: meshflow's samples $ours_median, kernel srtt $kernel_median (not compared)"
  echo "      load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  # The exposed histogram holds the same samples the log shows.
  count=$(scrape "$client" | awk -v r="role=\"$role\"" -v c="src_node=\"$client\"" \
    -v d="dst_node=\"$server\"" '/^meshflow_tcp_rtt_seconds_count\{/ && index($0, r) &&
    index($0, c) && index($0, d) { s += $2 } END { printf "%d", s }')
  if [[ -z $ours || -z $kernel || $n_ours -lt 10 || $n_kernel -lt 10 ]]; then
    fail "$role rtt: ${n_ours} samples from meshflow, ${n_kernel} from ss (want 10 or more)"
  elif ((count != n_ours)); then
    fail "$role rtt: the histogram counts $count samples, the exporter logged $n_ours"
  # Minimum against minimum agreed within 0.03 ms at load 5-6 (80.136 / 80.115 and 80.050 /
  # 80.039 ms), while the medians of meshflow's samples and of srtt were 0.4-0.6 ms apart and
  # the means 1.2-1.4 ms the other way; 0.5 ms leaves room for a capture point's own stall.
  elif awk -v a="$ours" -v b="$kernel" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.5) }'; then
    pass "$role rtt $client -> $server: meshflow minimum $ours ms over $n_ours samples," \
      "kernel minrtt $kernel ms over $n_kernel ss readings"
  else
    fail "$role rtt $client -> $server: meshflow minimum $ours ms ($n_ours samples)," \
      "kernel minrtt $kernel ms ($n_kernel readings): more than 0.5 ms apart"
  fi
}
check_rtt postgresql "$acer" "$ct" "$WORK/kernel-postgresql"
check_rtt redis "$ct" "$acer" "$WORK/kernel-redis"
"$DIR/down" --instance "$INSTANCE" >/dev/null

# --- 2. retransmissions over the 250 ms / 12 % loss link ----------------------------------------
set_instance mftcpw
INSTANCES+=("$INSTANCE")
"$DIR/up" --instance "$INSTANCE" --topology "$DIR/topologies/wan.yaml" \
  --overlay "${MESHFLOW_TESTBED_OVERLAY:-tun}" --only exporters \
  --require-exporter --exporter-arg --no-collector.probe
load_nodes
cloud=cloud-cp home=home-worker
retrans_segs() { in_node "$cloud" awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) c[$i] = i; h = 1 } else print $c["RetransSegs"] }' /proc/net/snmp; }
ours_retrans() {
  scrape "$cloud" | awk -v src="src_node=\"$cloud\"" '
    /^meshflow_tcp_retransmitted_packets_total\{/ && index($0, src) { s += $2 }
    END { printf "%d", s }'
}
in_node "$home" timeout 90 iperf3 -s -1 -B "${NODE_V4[$home]}" >"$WORK/iperf3-server.log" 2>&1 &
server=$!
retry 50 in_node "$home" sh -c "ss -ltnH '( sport = :5201 )' | grep -q ." ||
  fail "iperf3 server did not start: $(cat "$WORK/iperf3-server.log")"
kernel_before=$(retrans_segs)
ours_before=$(ours_retrans)
timeout 80 ip netns exec "$(ns_of "$cloud")" iperf3 -c "${NODE_V4[$home]}" -P 8 -t 25 \
  --connect-timeout 10000 >"$WORK/iperf3.log" 2>&1 || true
wait "$server" || true
sleep 2 # FIN retransmissions and the capture buffer timeout
kernel=$(($(retrans_segs) - kernel_before))
ours=$(($(ours_retrans) - ours_before))
if ((kernel < 100)); then
  fail "retransmissions: the kernel retransmitted only $kernel segments (want 100 or more" \
    "for a 5 % comparison); iperf3: $(tail -n 3 "$WORK/iperf3.log")"
elif awk -v o="$ours" -v k="$kernel" 'BEGIN { d = o - k; if (d < 0) d = -d; exit !(d <= 0.05 * k) }'; then
  pass "retransmissions $cloud -> $home: meshflow $ours, kernel TcpRetransSegs $kernel"
  echo "      iperf3: $(grep -E 'SUM.*sender' "$WORK/iperf3.log" | tr -s ' ' || true)"
else
  fail "retransmissions $cloud -> $home: meshflow $ours, kernel TcpRetransSegs $kernel" \
    "(more than 5 % apart)"
fi

finish
