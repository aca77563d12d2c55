#!/usr/bin/env bash
# Live capture benchmark: tcpreplay pushes a generated capture (2,000 flow series, frames of
# 66/150/576/1514 bytes) into one end of a veth pair in a network namespace; meshflow-exporter
# captures the other end. For each rate step it prints the rate tcpreplay reached, the kernel
# drops meshflow saw, and the exporter's CPU time per 100k packets (from /proc/<pid>/stat), i.e.
# the share of one core it needs at 100k packets/s. pmacctd, capturing the same interface at the
# same steps (aggregating by host pair and port), is the peer. At the end: the highest rate with
# zero kernel drops and the exporter's resident memory holding 2,000 series.
#   tests/bench/flow_live.sh BUILD_DIR
# Needs root (namespaces, capture); prints a note and does nothing without it.
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
exporter=$build/exporter/meshflow-exporter
if [[ $(id -u) != 0 ]]; then
  echo "flow_live: skipped, needs root"
  exit 0
fi
for tool in ip tcpreplay curl python3; do
  command -v "$tool" >/dev/null || { echo "flow_live: skipped, $tool missing"; exit 0; }
done
[[ -x $exporter ]] || { echo "flow_live: $exporter not built"; exit 1; }

NS=mfcap-bench-$$
TX=mfcap-bt$$
RX=mfcap-br$$
PORT=9474
TMP=$(mktemp -d)
PID=
PEER_PID=
cleanup() {
  [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  [[ -n $PEER_PID ]] && kill "$PEER_PID" 2>/dev/null && wait "$PEER_PID" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  rm -rf "$TMP"
  true
}
trap cleanup EXIT INT TERM
# shellcheck source-path=SCRIPTDIR source=lib/veth_ns.sh
source "$here/lib/veth_ns.sh"
veth_ns_up

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (figures are only as quiet as the machine)"
python3 "$here/flow_live_gen.py" "$TMP/bench.pcap" "$TMP/meshflow.yml" "$RX" 2000 4
FILE_PACKETS=8000
CLK=$(getconf CLK_TCK)

collector_flags=()
"$exporter" --help 2>&1 | grep -q -- '--no-collector.probe' && collector_flags+=(--no-collector.probe)
# `ip netns exec` directly, not through a function: $! must be the exporter itself.
ip netns exec "$NS" "$exporter" --config.file "$TMP/meshflow.yml" --web.listen-address "127.0.0.1:$PORT" \
  "${collector_flags[@]}" >"$TMP/exporter.log" 2>&1 &
PID=$!

for _ in $(seq 100); do
  [[ $(metric meshflow_capture_up "iface=\"$RX\"") == 1 ]] && break
  sleep 0.1
done
[[ $(metric meshflow_capture_up "iface=\"$RX\"") == 1 ]] || { echo "exporter did not capture $RX"; cat "$TMP/exporter.log"; exit 1; }
# utime + stime of a process and all its descendants (pmacctd's plugins are child processes).
cpu_ticks() {
  local total p
  total=$(awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0)
  for p in $(pgrep -P "$1" || true); do total=$((total + $(cpu_ticks "$p"))); done
  echo "$total"
}
# Resident memory of a process and its descendants, in kB.
rss_kb() {
  local total p
  total=$(awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0)
  for p in $(pgrep -P "$1" || true); do total=$((total + $(rss_kb "$p"))); done
  echo "$total"
}

# Sends about `seconds` worth of packets at `pps` (0: as fast as the tool goes) with `tool`
# (tcpreplay, or the batching sender); prints "sent elapsed_seconds".
send() {
  local tool=$1 pps=$2 seconds=$3 loops
  if [[ $tool == tcpreplay ]]; then
    if ((pps == 0)); then
      in_ns tcpreplay -i "$TX" --topspeed --duration="$seconds" --loop=0 "$TMP/bench.pcap" 2>&1
    else
      loops=$(((pps * seconds + FILE_PACKETS - 1) / FILE_PACKETS))
      in_ns tcpreplay -i "$TX" --pps="$pps" --loop="$loops" "$TMP/bench.pcap" 2>&1
    fi | awk '/Actual:/ { sent = $2; for (i = 1; i <= NF; i++) if ($i == "in") t = $(i + 1) }
              END { printf "%d %s\n", sent, t }'
  else
    in_ns "$build/tests/bench/flow_live_sender" "$TX" "$TMP/bench.pcap" "$pps" "$seconds" |
      awk '{ print $2, $4 }'
  fi
}

# What the process under test counted so far: meshflow's flow packets, or the packets in
# pmacctd's memory table.
counted() {
  if [[ $1 == meshflow ]]; then
    metric meshflow_flow_packets_total "iface=\"$RX\""
  else
    in_ns pmacct -p "$TMP/pmacct.pipe" -s -O csv 2>/dev/null |
      awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "PACKETS") c = i; next }
               c { sum += $c } END { printf "%.0f\n", sum }'
  fi
}

# One rate step for `who` (process `pid`).
step() {
  local who=$1 pid=$2 tool=$3 pps=$4
  local d0=0 d1=0 p0 p1 c0 c1 sent elapsed
  [[ $who == meshflow ]] && d0=$(metric meshflow_capture_dropped_packets_total "iface=\"$RX\",where=\"kernel\"")
  p0=$(counted "$who")
  c0=$(cpu_ticks "$pid")
  read -r sent elapsed < <(send "$tool" "$pps" 3)
  sleep 1.5  # a stats read (every second) and a block timeout later, everything is counted
  [[ $who == meshflow ]] && d1=$(metric meshflow_capture_dropped_packets_total "iface=\"$RX\",where=\"kernel\"")
  p1=$(counted "$who")
  c1=$(cpu_ticks "$pid")
  awk -v who="$who" -v tool="$tool" -v pps="$pps" -v sent="$sent" -v t="$elapsed" \
    -v drops=$((d1 - d0)) -v counted=$((p1 - p0)) -v ticks=$((c1 - c0)) -v clk="$CLK" 'BEGIN {
      cpu = ticks / clk
      per100k = sent > 0 ? cpu * 100000 / sent * 100 : 0
      target = pps == 0 ? "max" : pps
      rate = t > 0 ? sent / t : 0
      shown = who == "meshflow" ? drops : "-"
      printf "%-9s %-9s %-9s %10d %10.0f %8s %10d %8.2f %13.1f%%\n", who, tool, target, sent, rate,
             shown, counted, cpu, per100k
    }' | tee -a "$TMP/results"
}

# tcpreplay as the issue names it, then the batching sender for the rates tcpreplay cannot reach.
STEPS=("tcpreplay 50000" "tcpreplay 0" "sender 100000" "sender 200000" "sender 400000"
       "sender 800000" "sender 0")
header() {
  printf "%-9s %-9s %-9s %10s %10s %8s %10s %8s %14s\n" who tool target sent "sent_pps" \
    "k.drops" counted cpu_s "core@100kpps"
}
# Idle cost first: the capture handle open on a quiet interface (block timeout wakeups, stats).
idle0=$(cpu_ticks "$PID")
sleep 10
idle1=$(cpu_ticks "$PID")
echo "meshflow idle CPU with one captured interface: $(awk -v t=$((idle1 - idle0)) -v clk="$CLK" 'BEGIN { printf "%.2f", t / clk / 10 * 100 }')% of a core (10 s, clock ticks of 1/$CLK s)"
header
first=1
for s in "${STEPS[@]}"; do
  step meshflow "$PID" $s
  if ((first)); then
    # Every series exists after the first step; only a few scrapes have run so far.
    first_mem_kb=$(rss_kb "$PID")
peak_kb=$(awk '/^VmHWM/ { print $2 }' "/proc/$PID/status")
    first=0
  fi
done

mem_kb=$(rss_kb "$PID")
peak_kb=$(awk '/^VmHWM/ { print $2 }' "/proc/$PID/status")
series=$(metric meshflow_flow_series)

# The same 2,000 series and 60 scrapes with glibc limited to two malloc arenas: shows how much of
# the resident memory is arenas left behind by scrapes served on many threads.
kill "$PID" && wait "$PID" 2>/dev/null || true
MALLOC_ARENA_MAX=2 ip netns exec "$NS" "$exporter" --config.file "$TMP/meshflow.yml" \
  --web.listen-address "127.0.0.1:$PORT" "${collector_flags[@]}" >"$TMP/exporter2.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
  [[ $(metric meshflow_capture_up "iface=\"$RX\"") == 1 ]] && break
  sleep 0.1
done
send sender 20000 1 >/dev/null
sleep 1.5
for _ in $(seq 60); do scrape >/dev/null; done
arena_mem_kb=$(rss_kb "$PID")
peak_kb=$(awk '/^VmHWM/ { print $2 }' "/proc/$PID/status")

if command -v pmacctd >/dev/null; then
  # The peer gets the interface alone: meshflow stops first so the two do not share the cores.
  kill "$PID" && wait "$PID" 2>/dev/null || true
  PID=
  cat >"$TMP/pmacctd.conf" <<EOF
daemonize: false
pcap_interface: $RX
aggregate: src_host, dst_host, dst_port, proto
plugins: memory
imt_path: $TMP/pmacct.pipe
EOF
  ip netns exec "$NS" pmacctd -f "$TMP/pmacctd.conf" >"$TMP/pmacctd.log" 2>&1 &
  PEER_PID=$!
  sleep 2
  for s in "${STEPS[@]}"; do step pmacctd "$PEER_PID" $s; done
  peer_mem_kb=$(rss_kb "$PEER_PID")
fi

echo
# Columns: who tool target sent sent_pps k.drops counted cpu_s core@100kpps
awk '$1 == "meshflow" && $6 == 0 && $7 == $4 && $5 > best { best = $5; how = $2 }
     END { printf "meshflow highest rate with zero kernel drops and every packet counted: %.0f packets/s (%s)\n", best, how }' "$TMP/results"
awk '$1 == "pmacctd" && $7 == $4 && $5 > best { best = $5; how = $2 }
     END { if (best) printf "pmacctd  highest rate with every packet counted: %.0f packets/s (%s)\n", best, how }' "$TMP/results"
# CPU per packet sent, over all steps; "counted" says how much of it each one really processed.
awk '$4 > 0 { cpu[$1] += $8; n[$1] += $4; c[$1] += $7 }
     END {
       m = n["meshflow"] ? cpu["meshflow"] / n["meshflow"] * 1e7 : 0
       p = n["pmacctd"] ? cpu["pmacctd"] / n["pmacctd"] * 1e7 : 0
       if (m) printf "meshflow CPU per 100k packets/s: %.1f%% of a core (counted %.1f%% of the packets sent)\n", m, c["meshflow"] / n["meshflow"] * 100
       if (p) printf "pmacctd  CPU per 100k packets/s: %.1f%% of a core (counted %.1f%% of the packets sent); pmacctd/meshflow %.1fx\n", p, c["pmacctd"] / n["pmacctd"] * 100, m ? p / m : 0
     }' "$TMP/results"
echo "meshflow resident memory with $series series: $((first_mem_kb / 1024)) MB after the first step, $((mem_kb / 1024)) MB after all steps and their scrapes (goal under 20 MB)"
echo "meshflow peak resident memory (VmHWM, during a scrape): $((peak_kb / 1024)) MB"
echo "meshflow resident memory with $series series after 60 scrapes, MALLOC_ARENA_MAX=2: $((arena_mem_kb / 1024)) MB"
[[ -n ${peer_mem_kb:-} ]] && echo "pmacctd resident memory (core and memory plugin): $((peer_mem_kb / 1024)) MB ($peer_mem_kb kB)"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
