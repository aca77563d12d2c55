#!/usr/bin/env bash
# The RTT prober measured beside prometheus-smokeping-prober in one run:
#   1. accuracy on the emulated overlay (1, 48, 80 ms links): median and p99 absolute error
#      against the configured RTT, and each prober's mean against ping's (kernel timestamps) on
#      the same link at the same time;
#   2. cost: CPU and peak resident memory of meshflow-exporter and smokeping_prober probing the
#      same three peers with ICMP at the same rate, side by side;
#   3. scale: 1,000 peers at 1 Hz on 127.0.0.0/8 (inside the test bed's namespace): CPU share of
#      one core, and the RTT spread the prober adds (loopback RTT quantiles at scale against one
#      peer alone).
# Prints figures and ratios; passes or fails nothing. Needs root (network namespaces).
#   tests/bench/probe_accuracy.sh [BUILD_DIR]
# Durations: PROBE_BENCH_SECONDS (accuracy, default 30), PROBE_BENCH_COST_SECONDS (60),
# PROBE_BENCH_SCALE_SECONDS (35). PROBE_BENCH_PARTS picks parts (default "accuracy cost scale").
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build/bench}
export MESHFLOW_BUILD_DIR=$build
source "$top/tests/testbed/probe_lib.sh"
ACC=${PROBE_BENCH_SECONDS:-30}
COST=${PROBE_BENCH_COST_SECONDS:-60}
SCALE=${PROBE_BENCH_SCALE_SECONDS:-35}
PARTS=" ${PROBE_BENCH_PARTS:-accuracy cost scale} "
want() { [[ $PARTS == *" $1 "* ]]; }
command -v prometheus-smokeping-prober >/dev/null || die "prometheus-smokeping-prober not installed"
probe_up mfprobe-bench
for n in p1 p48 p80; do start_peer "$n"; done
for n in p1 p48 p80; do wait_peer "$n"; done
in_src() { ip netns exec "$(ns_of src)" "$@"; }

smokeping_config() {
  local interval=$1
  echo "targets:"
  echo "- hosts: [${NODE_V4[p1]}, ${NODE_V4[p48]}, ${NODE_V4[p80]}]"
  echo "  interval: $interval"
  echo "  network: ip4"
  echo "  protocol: icmp"
  echo "  size: 56"
}

if want accuracy; then
# --- 1. accuracy -----------------------------------------------------------------------------
echo "== accuracy: ${ACC}s, every 100 ms, on 1/48/80 ms links (same time, same links)"
count=$((ACC * 10))
smokeping_config 100ms >"$WORK/smokeping-acc.yml"
run=()
in_src timeout $((ACC + 5)) prometheus-smokeping-prober --privileged --log.level=debug \
  --config.file "$WORK/smokeping-acc.yml" --web.listen-address 127.0.0.1:19374 \
  >"$WORK/smokeping-acc.log" 2>&1 &
run+=($!)
for n in p1 p48 p80; do
  in_src timeout $((ACC + 10)) ping -n -i 0.1 -c "$count" -W 2 "${NODE_V4[$n]}" >"$WORK/ping-$n.txt" 2>&1 &
  run+=($!)
done
PROBE_PIDS+=("${run[@]}")
in_src timeout $((ACC + 10)) "$PROBE" --peer "p1=${NODE_V4[p1]}" --peer "p48=${NODE_V4[p48]}" \
  --peer "p80=${NODE_V4[p80]}" --method icmp,udp,tcp --tcp-port 6443 --udp-port 9474 \
  --interval 100ms --timeout 1s --count "$count" --samples >"$WORK/meshflow-acc.txt"
wait "${run[@]}" 2>/dev/null || true

python3 - "$WORK" "${NODE_V4[p1]}" "${NODE_V4[p48]}" "${NODE_V4[p80]}" <<'PY'
import re, statistics, sys
work, a1, a48, a80 = sys.argv[1:]
want = {"p1": 0.001, "p48": 0.048, "p80": 0.080}
addr = {a1: "p1", a48: "p48", a80: "p80"}
def q(v, p):
    v = sorted(v); pos = p * (len(v) - 1); lo = int(pos); hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)
samples = {}
for line in open(f"{work}/meshflow-acc.txt"):
    m = re.match(r"rtt peer=(\S+) method=(\S+) seq=\d+ rtt_seconds=(\S+)", line)
    if m: samples.setdefault((m[1], "meshflow-" + m[2]), []).append(float(m[3]))
unit = {"ms": 1e-3, "µs": 1e-6, "us": 1e-6, "s": 1.0, "ns": 1e-9}
for line in open(f"{work}/smokeping-acc.log"):
    m = re.search(r'msg="Echo reply" ip_addr=(\S+) .* time=([0-9.]+)(ms|µs|us|ns|s) ', line)
    if m and m[1] in addr: samples.setdefault((addr[m[1]], "smokeping"), []).append(float(m[2]) * unit[m[3]])
# ping prints each time to 3 significant digits but its average in microseconds: the average is
# the reference the goal names ("mean within 50 us of ping's").
ping_avg = {}
for peer in want:
    for line in open(f"{work}/ping-{peer}.txt"):
        m = re.search(r"time=([0-9.]+) ms", line)
        if m: samples.setdefault((peer, "ping"), []).append(float(m[1]) * 1e-3)
        m = re.match(r"rtt min/avg/max/mdev = [0-9.]+/([0-9.]+)/", line)
        if m: ping_avg[peer] = float(m[1]) * 1e-3
print("error = |sample - configured RTT|; mean-ping = the prober's mean minus ping's average")
print(f"{'link':6} {'prober':16} {'n':>5} {'median err':>11} {'p99 err':>11} {'mean-ping':>11}")
ratios = []
for peer, rtt in want.items():
    ping_mean = ping_avg.get(peer, float("nan"))
    row = {}
    for prober in ("ping", "smokeping", "meshflow-icmp", "meshflow-udp", "meshflow-tcp"):
        v = samples.get((peer, prober), [])
        if not v:
            print(f"{peer:6} {prober:16} {0:>5} (no samples)"); continue
        err = [abs(x - rtt) for x in v]
        row[prober] = (q(err, 0.5), q(err, 0.99), statistics.mean(v) - ping_mean)
        print(f"{peer:6} {prober:16} {len(v):>5} {q(err,0.5)*1e6:>8.1f} us {q(err,0.99)*1e6:>8.1f} us"
              f" {(statistics.mean(v)-ping_mean)*1e6:>+8.1f} us")
    if "smokeping" in row and "meshflow-icmp" in row:
        ratios.append((peer, row["smokeping"][0] / max(row["meshflow-icmp"][0], 1e-9),
                       row["smokeping"][1] / max(row["meshflow-icmp"][1], 1e-9)))
for peer, r50, r99 in ratios:
    print(f"ratio {peer}: smokeping/meshflow-icmp median error x{r50:.1f}, p99 error x{r99:.1f}")
PY

fi

if want cost; then
# --- 2. cost ---------------------------------------------------------------------------------
echo
echo "== cost: ${COST}s side by side, 3 peers, ICMP every 100 ms each"
smokeping_config 100ms >"$WORK/smokeping-cost.yml"
cat >"$WORK/exporter-cost.yaml" <<YAML
node_name: src
probes:
  interval: 100ms
  methods: [icmp]
  reflector: {enabled: false}
  peers:
    - {name: p1, address: ${NODE_V4[p1]}}
    - {name: p48, address: ${NODE_V4[p48]}}
    - {name: p80, address: ${NODE_V4[p80]}}
YAML
# GNU time reports the CPU and peak RSS of the whole process tree it waited for.
run=()
in_src /usr/bin/time -f "%U %S %M" -o "$WORK/cost-meshflow.time" timeout -s TERM "$COST" \
  "$EXPORTER" --config.file "$WORK/exporter-cost.yaml" --web.listen-address 127.0.0.1:19474 \
  "${ONLY_PROBE[@]}" >"$WORK/cost-meshflow.log" 2>&1 &
run+=($!)
in_src /usr/bin/time -f "%U %S %M" -o "$WORK/cost-smokeping.time" timeout -s TERM "$COST" \
  prometheus-smokeping-prober --privileged --config.file "$WORK/smokeping-cost.yml" \
  --web.listen-address 127.0.0.1:19375 >"$WORK/cost-smokeping.log" 2>&1 &
run+=($!)
PROBE_PIDS+=("${run[@]}")
# Both are scraped every 5 s, as the reference cluster's Prometheus does.
for ((i = 0; i < COST / 5 - 1; i++)); do
  sleep 5
  in_src curl -s -m 2 -o /dev/null http://127.0.0.1:19474/metrics || true
  in_src curl -s -m 2 -o /dev/null http://127.0.0.1:19375/metrics || true
done
wait "${run[@]}" 2>/dev/null || true
# GNU time puts "Command exited with non-zero status" first: timeout's 124. The figures are last.
read -r mu ms mrss < <(tail -n 1 "$WORK/cost-meshflow.time") || true
read -r su ss srss < <(tail -n 1 "$WORK/cost-smokeping.time") || true
awk -v mu="$mu" -v ms="$ms" -v mr="$mrss" -v su="$su" -v ss="$ss" -v sr="$srss" -v t="$COST" 'BEGIN {
  mc = mu + ms; sc = su + ss;
  printf "meshflow-exporter  cpu %.2fs (%.3f%% of a core)  peak RSS %.1f MB\n", mc, 100*mc/t, mr/1024;
  printf "smokeping_prober   cpu %.2fs (%.3f%% of a core)  peak RSS %.1f MB\n", sc, 100*sc/t, sr/1024;
  printf "ratio smokeping/meshflow: cpu x%.1f, RSS x%.1f\n", (mc > 0 ? sc/mc : 0), (mr > 0 ? sr/mr : 0) }'

fi

if want scale; then
# --- 3. scale --------------------------------------------------------------------------------
echo
echo "== scale: 1,000 peers on 127.0.0.0/8 at 1 Hz, ${SCALE}s (reflector in its own process)"
in_src ip link set lo up
ip netns exec "$(ns_of src)" "$PROBE" --reflect-only --reflector-port 9475 \
  --reflector-rate 100000 --duration $((SCALE * 3 + 30))s >"$WORK/reflector.log" 2>&1 &
PROBE_PIDS+=($!)
sleep 0.5
ip netns exec "$(ns_of src)" timeout 30 "$PROBE" --peer one=127.0.0.2 --method icmp,udp \
  --udp-port 9475 --interval 10ms --count 1000 --timeout 1s >"$WORK/scale-baseline.txt"
peers=()
for ((i = 0; i < 1000; i++)); do peers+=(--peer "lo$i=127.0.$((i / 250 + 1)).$((i % 250 + 1))"); done
ticks=$(getconf CLK_TCK)
# measure_cpu PID LABEL: user and system CPU of PID over the middle of its run. On loopback the
# kernel answers the echo and delivers both packets in the sender's own system time, so the
# system share holds the kernel's whole round trip; the user share is the prober's own work.
# Run time in nanoseconds of every thread (schedstat: exact, where the tick-sampled user/system
# split of /proc/PID/stat is only an estimate).
run_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }
measure_cpu() {
  local pid=$1 label=$2 u0 s0 u1 s1 t0 t1 r0 r1 rss
  sleep 5  # start-up and the first round out of the way
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  r0=$(run_ns "$pid") t0=$(date +%s.%N)
  sleep $((SCALE - 10))
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  r1=$(run_ns "$pid") t1=$(date +%s.%N)
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  awk -v u0="$u0" -v s0="$s0" -v u1="$u1" -v s1="$s1" -v t0="$t0" -v t1="$t1" -v hz="$ticks" \
    -v r0="$r0" -v r1="$r1" -v rss="$rss" -v l="$label" 'BEGIN { d = (t1 - t0) * hz;
      printf "%-34s CPU %5.2f%% of one core (ticks: user %.2f%%, system %.2f%%) over %.0fs, peak RSS %.1f MB\n",
        l, 100 * (r1 - r0) / 1e9 / (t1 - t0), 100 * (u1 - u0) / d, 100 * (s1 - s0) / d, t1 - t0,
        rss / 1024 }'
}
run_scale() {
  local methods=$1 out=$2
  ip netns exec "$(ns_of src)" "$PROBE" "${peers[@]}" --method "$methods" --udp-port 9475 \
    --interval 1s --timeout 1s --duration "${SCALE}s" >"$out" &
  local pid=$!
  measure_cpu "$pid" "meshflow 1000 peers $methods"
  wait "$pid"
}
run_scale icmp "$WORK/scale-icmp.txt"
run_scale icmp,udp "$WORK/scale-both.txt"
{
  echo "targets:"
  echo "- interval: 1s"
  echo "  network: ip4"
  echo "  protocol: icmp"
  echo "  hosts:"
  for ((i = 0; i < 1000; i++)); do echo "  - 127.0.$((i / 250 + 1)).$((i % 250 + 1))"; done
} >"$WORK/smokeping-scale.yml"
ip netns exec "$(ns_of src)" timeout "$SCALE" prometheus-smokeping-prober --privileged \
  --config.file "$WORK/smokeping-scale.yml" --web.listen-address 127.0.0.1:19376 \
  >"$WORK/smokeping-scale.log" 2>&1 &
sp=$!
# timeout forks the prober: measure the child, once it exists.
child=""
for ((i = 0; i < 50; i++)); do
  child=$(pgrep -P "$sp" | head -n 1 || true)
  [[ -n $child && $(cat "/proc/$child/comm" 2>/dev/null) == prometheus-smok* ]] && break
  child=""
  sleep 0.1
done
if [[ -n $child ]]; then
  measure_cpu "$child" "smokeping_prober 1000 hosts icmp"
else
  echo "smokeping_prober did not start: $(tail -n 3 "$WORK/smokeping-scale.log")"
fi
wait "$sp" 2>/dev/null || true
for m in icmp udp; do
  b=$(grep "^overall method=$m " "$WORK/scale-baseline.txt")
  s=$(grep "^overall method=$m " "$WORK/scale-both.txt")
  awk -v b="$b" -v s="$s" -v m="$m" 'function get(line, k,   i, n, kv, f) {
      n = split(line, f, " "); for (i = 1; i <= n; i++) { split(f[i], kv, "="); if (kv[1] == k) return kv[2] } }
    BEGIN {
      printf "%-4s one peer:    median %.1f us  p99 %.1f us  (%d samples)\n", m,
        get(b, "median_seconds")*1e6, get(b, "p99_seconds")*1e6, get(b, "samples");
      printf "%-4s 1000 peers:  median %.1f us  p99 %.1f us  p99.9 %.1f us  (%d samples)\n", m,
        get(s, "median_seconds")*1e6, get(s, "p99_seconds")*1e6, get(s, "p999_seconds")*1e6, get(s, "samples");
      printf "%-4s spread at scale: p99 - median = %.1f us, p99 - one-peer median = %.1f us\n", m,
        (get(s, "p99_seconds") - get(s, "median_seconds"))*1e6,
        (get(s, "p99_seconds") - get(b, "median_seconds"))*1e6 }'
done
grep -h "^summary" "$WORK/scale-both.txt" | awk '{for (i = 1; i <= NF; i++) { split($i, kv, "=");
  if (kv[1] == "sent") s += kv[2]; if (kv[1] == "received") r += kv[2]; if (kv[1] == "lost") l += kv[2];
  if (kv[1] == "fallbacks") f += kv[2] } }
  END { printf "scale run: %d sent, %d received, %d lost, %d timestamp fallbacks\n", s, r, l, f }'
fi
