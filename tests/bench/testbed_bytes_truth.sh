#!/usr/bin/env bash
# Bytes per role against tshark on the same interfaces in the same run, on the TUN-only overlay
# and on real WireGuard: the reference cluster with Redis on acer-agent and an exporter per node
# (flows only); ct-serv-jp writes and reads a 1 MB value three times. On acer-agent, tshark
# captures the overlay interface (ts0, or wg3-<tag>) and, with WireGuard, the underlay (eth1).
# Printed side by side: the exporter's redis bytes on the overlay interface and tshark's
# (TCP port 6379); with WireGuard also its wireguard bytes on eth1 and tshark's (UDP 51820), and
# the cross terms that must stay 0 (no redis on the underlay, no wireguard on the overlay: no
# double counting between kinds). Needs root.
#   tests/bench/testbed_bytes_truth.sh BUILD_DIR
set -euo pipefail
export MESHFLOW_BUILD_DIR=${1:?usage: $0 BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../testbed/lib.sh"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$TESTBED_DIR/down" --instance "$INSTANCE" >/dev/null 2>&1 || true
  rm -rf -- "$WORK"
}
trap cleanup EXIT
head -c 1000000 /dev/urandom >"$WORK/value"

# bytes FILE IFACE ROLE: the exporter's meshflow_flow_bytes_total summed over node pairs.
bytes() {
  awk -v i="iface=\"$2\"" -v r="role=\"$3\"" '$1 ~ /^meshflow_flow_bytes_total\{/ && index($1, i) && index($1, r) { s += $2 }
    END { printf "%d\n", s }' "$1"
}
# captured PCAP FILTER T0 T1: IP bytes tshark saw between two times (IPv4 total length).
captured() {
  tshark -r "$1" -Y "$2 && frame.time_epoch >= $3 && frame.time_epoch <= $4" -T fields -e ip.len \
    2>/dev/null | awk '{ s += $1 } END { printf "%d\n", s }'
}

for mode in tun wireguard; do
  set_instance "mfbbt-${mode:0:3}"
  "$TESTBED_DIR/up" --instance "$INSTANCE" --overlay "$mode" --only redis,exporters \
    --require-exporter --exporter-arg --no-collector.probe >/dev/null
  load_nodes
  acer=$(ns_of acer-agent)
  overlay_if=ts0
  [[ $mode == wireguard ]] && overlay_if=$(wg_ifname acer-agent)
  ifaces=("$overlay_if")
  [[ $mode == wireguard ]] && ifaces+=(eth1)
  for i in "${ifaces[@]}"; do
    ip netns exec "$acer" tshark -i "$i" -n -w "$WORK/$mode-$i.pcap" -a duration:120 \
      >"$WORK/$mode-$i.log" 2>&1 &
    PIDS+=($!)
  done
  for i in "${ifaces[@]}"; do
    retry 300 grep -q "^Capturing on" "$WORK/$mode-$i.log" || die "tshark on $i did not start"
  done
  metrics() { ip netns exec "$acer" curl -sf -m 5 "http://${NODE_V4[acer-agent]}:9474/metrics"; }
  # Quiet on both sides of each reading: the exporter's capture hands packets over in blocks
  # (up to 100 ms late), so a reading in a silence counts exactly the packets before it.
  sleep 2
  t0=$(date +%s.%N)
  metrics >"$WORK/m0"
  sleep 1
  for k in 1 2 3; do
    ip netns exec "$(ns_of ct-serv-jp)" redis-cli -h "${NODE_V4[acer-agent]}" -x set big <"$WORK/value" >/dev/null
    ip netns exec "$(ns_of ct-serv-jp)" redis-cli -h "${NODE_V4[acer-agent]}" get big >/dev/null
  done
  sleep 2
  metrics >"$WORK/m1"
  t1=$(date +%s.%N)
  sleep 1
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=()
  echo "overlay $mode (acer-agent, 3 x 1 MB redis SET and GET from ct-serv-jp):"
  ex=$(($(bytes "$WORK/m1" "$overlay_if" redis) - $(bytes "$WORK/m0" "$overlay_if" redis)))
  ts=$(captured "$WORK/$mode-$overlay_if.pcap" "tcp.port == 6379" "$t0" "$t1")
  echo "  $overlay_if role redis:      exporter $ex bytes, tshark $ts bytes, difference $((ex - ts))"
  if [[ $mode == wireguard ]]; then
    ex=$(($(bytes "$WORK/m1" eth1 wireguard) - $(bytes "$WORK/m0" eth1 wireguard)))
    ts=$(captured "$WORK/$mode-eth1.pcap" "udp.port == 51820" "$t0" "$t1")
    echo "  eth1 role wireguard:   exporter $ex bytes, tshark $ts bytes, difference $((ex - ts))"
    echo "  eth1 role redis (must be 0): $(($(bytes "$WORK/m1" eth1 redis) - $(bytes "$WORK/m0" eth1 redis)))"
    echo "  $overlay_if role wireguard (must be 0): $(($(bytes "$WORK/m1" "$overlay_if" wireguard) - $(bytes "$WORK/m0" "$overlay_if" wireguard)))"
    echo "  encapsulation: underlay bytes / overlay bytes = $(awk -v u="$ex" -v o="$(captured "$WORK/$mode-$overlay_if.pcap" "ip" "$t0" "$t1")" 'BEGIN { printf "%.4f", u / o }')"
  fi
  "$TESTBED_DIR/down" --instance "$INSTANCE" >/dev/null
done
