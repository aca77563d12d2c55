#!/usr/bin/env bash
# What passive TCP costs in live capture, beside what it costs in offline replay
# (flow_replay.sh). The reference mix from flow_replay_gen, its frames padded back to their full
# length, is sent once through a veth pair in a network namespace at a fixed rate while
# meshflow-exporter captures the other end, with passive TCP off and on, alternating. The
# exporter's CPU time (all threads, user and kernel, from /proc/PID/task/*/schedstat, in
# nanoseconds) over the send is divided by the packets it counted.
#   tests/bench/tcp_live_cost.sh BUILD_DIR
#   TCP_LIVE_PACKETS (default 500000), TCP_LIVE_PPS (default 250000), TCP_LIVE_PAIRS (default 3)
# Needs root (namespaces, capture); prints a note and does nothing without it.
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
exporter=$build/exporter/meshflow-exporter
gen=$build/tests/bench/flow_replay_gen
sender=$build/tests/bench/flow_live_sender
packets=${TCP_LIVE_PACKETS:-500000}
pps=${TCP_LIVE_PPS:-250000}
pairs=${TCP_LIVE_PAIRS:-3}
if [[ $(id -u) != 0 ]]; then
  echo "tcp_live_cost: skipped, needs root"
  exit 0
fi
for f in "$exporter" "$gen" "$sender"; do
  [[ -x $f ]] || { echo "tcp_live_cost: $f not built"; exit 1; }
done

NS=mftcp-bench-$$
TX=mftcp-bt$$
RX=mftcp-br$$
PORT=9475
TMP=$(mktemp -d)
PID=
cleanup() {
  [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  rm -rf "$TMP"
  true
}
trap cleanup EXIT INT TERM
# shellcheck source-path=SCRIPTDIR source=lib/veth_ns.sh
source "$(dirname "$0")/lib/veth_ns.sh"
veth_ns_up

"$gen" "$TMP/mix.pcap" "$packets" >/dev/null
# The generator writes headers only (snaplen 128); on a wire a frame is as long as its IP
# header says. Zero bytes stand in for the payload.
python3 - "$TMP/mix.pcap" "$TMP/wire.pcap" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as src, open(sys.argv[2], "wb") as out:
    header = bytearray(src.read(24))
    struct.pack_into("<I", header, 16, 65535)  # snaplen
    out.write(header)
    while True:
        record = src.read(16)
        if len(record) < 16:
            break
        sec, usec, caplen, wirelen = struct.unpack("<IIII", record)
        data = src.read(caplen)
        out.write(struct.pack("<IIII", sec, usec, wirelen, wirelen))
        out.write(data + bytes(wirelen - caplen))
PY
rm "$TMP/mix.pcap"
for enabled in false true; do
  {
    cat "$TMP/mix.pcap.yaml"
    printf 'flows:\n  capture:\n    interfaces:\n      include: ["^%s$"]\n' "$RX"
    printf '  tcp:\n    enabled: %s\n' "$enabled"
  } >"$TMP/tcp-$enabled.yml"
done

# CPU time of every thread of a process so far, in nanoseconds.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }

# One run: start the exporter with passive TCP on or off, send the mix once, print
# "ns_per_packet counted kernel_drops".
run() {
  local enabled=$1 c0 c1 counted drops
  ip netns exec "$NS" "$exporter" --config.file "$TMP/tcp-$enabled.yml" \
    --web.listen-address "127.0.0.1:$PORT" --no-collector.probe >"$TMP/exporter.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do
    [[ $(metric meshflow_capture_up "iface=\"$RX\"") == 1 ]] && break
    sleep 0.1
  done
  [[ $(metric meshflow_capture_up "iface=\"$RX\"") == 1 ]] ||
    { echo "exporter did not capture $RX" >&2; cat "$TMP/exporter.log" >&2; exit 1; }
  c0=$(cpu_ns "$PID")
  in_ns "$sender" "$TX" "$TMP/wire.pcap" "$send_pps" "$send_seconds" >/dev/null
  sleep 1.5 # a stats read and a block timeout later, everything is counted
  c1=$(cpu_ns "$PID")
  counted=$(metric meshflow_flow_packets_total "iface=\"$RX\"")
  drops=$(metric meshflow_capture_dropped_packets_total "iface=\"$RX\",where=\"kernel\"")
  if kill "$PID"; then wait "$PID" 2>/dev/null || true; fi
  PID=
  awk -v c=$((c1 - c0)) -v n="$counted" -v d="$drops" 'BEGIN { printf "%.1f %d %d\n", n ? c / n : 0, n, d }'
}

# The sender sends rate x seconds packets, looping the file: pick the two so that it goes out
# once (a replayed connection would start over in the middle of its own sequence space).
send_seconds=$(((packets + pps / 2) / pps))
((send_seconds > 0)) || send_seconds=1
send_pps=$((packets / send_seconds))
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "== $((send_pps * send_seconds)) packets of the reference mix at $send_pps packets/s," \
  "$pairs alternating off/on pairs"
printf '%-5s %-4s %14s %10s %8s\n' pair tcp ns/packet counted k.drops
offs=() ons=()
for ((i = 1; i <= pairs; i++)); do
  for enabled in false true; do
    read -r ns counted drops < <(run "$enabled")
    printf '%-5s %-4s %14s %10s %8s\n' "$i" "$([[ $enabled == true ]] && echo on || echo off)" \
      "$ns" "$counted" "$drops"
    if [[ $enabled == true ]]; then ons+=("$ns"); else offs+=("$ns"); fi
  done
done
awk -v offs="${offs[*]}" -v ons="${ons[*]}" 'BEGIN {
  n = split(offs, a, " "); split(ons, b, " ")
  for (i = 1; i <= n; i++) c[i] = 100 * (1 - a[i] / b[i])
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (c[j] < c[i]) { x = c[i]; c[i] = c[j]; c[j] = x }
  median = n % 2 ? c[(n + 1) / 2] : (c[n / 2] + c[n / 2 + 1]) / 2
  printf "passive TCP cost in live capture: median %.1f %% of the pairs (from %.1f to %.1f %%)\n",
    median, c[1], c[n] }'
