#!/usr/bin/env bash
# Path MTU probing on the WireGuard test bed: the exporter on src reports 1420 bytes (wg's MTU)
# to its peers; once the underlay link src <-> p48 carries at most 1400 bytes (larger packets
# vanish, no ICMP error: a black hole), the figure for p48 follows, by the end of the first
# search of p48 that starts after the change (within one cycle plus the searches' own time), to
# the largest inner packet WireGuard fits in 1400 bytes: plaintext padded to 16 bytes plus 60 of
# UDP/IPv4 and WireGuard header, so 1328. Over IPv6 inside the same IPv4 underlay it is the
# same. p1 keeps 1420, and p48 gets 1420 back once the link is restored.
# Needs root. Uses its own test bed instance and removes it on any exit. About 60 s.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/probe_lib.sh"
MESHFLOW_TESTBED_OVERLAY=wireguard probe_up mfprobe-mtu

CYCLE=5  # seconds between searches
cat >"$WORK/exporter-src.yaml" <<YAML
node_name: src
probes:
  interval: 1s
  timeout: 1s
  methods: [icmp]
  peers:
    - {name: p1, address: ${NODE_V4[p1]}}
    - {name: p48, address: ${NODE_V4[p48]}}
    - {name: p48-v6, address: "${NODE_V6[p48]}"}
  path_mtu: {interval: ${CYCLE}s, timeout: 400ms}
YAML
bg src exporter-src "$EXPORTER" --config.file "$WORK/exporter-src.yaml" \
  --web.listen-address "${NODE_V4[src]}:9474" "${ONLY_PROBE[@]}"

# mtu PEER: the exporter's current figure for PEER (empty until its first search).
mtu() {
  ip netns exec "$(ns_of src)" curl -sf -m 2 "http://${NODE_V4[src]}:9474/metrics" |
    sed -nE "s/^meshflow_probe_path_mtu_bytes\\{src_node=\"src\",dst_node=\"$1\"\\} ([0-9]+)$/\\1/p"
}
route_mtu() {
  ip netns exec "$(ns_of src)" curl -sf -m 2 "http://${NODE_V4[src]}:9474/metrics" |
    sed -nE "s/^meshflow_probe_route_mtu_bytes\\{src_node=\"src\",dst_node=\"$1\"\\} ([0-9]+)$/\\1/p"
}
# await PEER WANT LIMIT: seconds until PEER's figure is WANT, or empty after LIMIT seconds.
await() {
  local peer=$1 want=$2 limit=$3 start now
  start=$(date +%s.%N)
  while true; do
    now=$(date +%s.%N)
    if [[ $(mtu "$peer") == "$want" ]]; then
      awk -v a="$start" -v b="$now" 'BEGIN { printf "%.1f\n", b - a }'
      return 0
    fi
    awk -v a="$start" -v b="$now" -v l="$limit" 'BEGIN { exit !(b - a > l) }' && return 0
    sleep 0.5
  done
}

for peer in p1 p48 p48-v6; do
  t=$(await "$peer" 1420 30)
  if [[ -n $t ]]; then pass "$peer: path MTU 1420 (wg's MTU) after ${t}s"; else fail "$peer: path MTU '$(mtu "$peer")', want 1420"; fi
done
r=$(route_mtu p48)
[[ $r == 1420 ]] && pass "p48: route MTU 1420" || fail "p48: route MTU '$r', want 1420"

# One search after the change starts within a cycle; it takes a few timeouts of its own.
LIMIT=$((2 * CYCLE + 8))
ctl set src p48 --mtu 1400
for peer in p48 p48-v6; do
  t=$(await "$peer" 1328 "$LIMIT")
  if [[ -n $t ]]; then
    pass "$peer: underlay MTU 1400 -> path MTU 1328 after ${t}s (searches every ${CYCLE}s)"
  else
    fail "$peer: path MTU '$(mtu "$peer")' ${LIMIT}s after the underlay MTU fell to 1400, want 1328"
  fi
done
[[ $(mtu p1) == 1420 ]] && pass "p1: untouched, still 1420" || fail "p1: path MTU '$(mtu p1)', want 1420"
r=$(route_mtu p48)
[[ $r == 1420 ]] && pass "p48: route MTU stays 1420 (no ICMP error: a black hole)" ||
  fail "p48: route MTU '$r', want 1420"

ctl set src p48 --mtu 0
t=$(await p48 1420 "$LIMIT")
if [[ -n $t ]]; then pass "p48: link restored -> path MTU 1420 after ${t}s"; else fail "p48: path MTU '$(mtu p48)' after restore, want 1420"; fi
finish
