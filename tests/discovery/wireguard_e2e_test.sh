#!/usr/bin/env bash
# Two exporters, each in a network namespace of its own joined by a wireguard-go tunnel, with
# configs that hold no node and no peer address: only the WireGuard source and an overlay
# prefix. Passes when each one probes the other under the other's node name (found by hello),
# and prints how long that took. Needs root; everything carries a random name and is removed.
set -euo pipefail
exporter=$1
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root"; exit 77; }
command -v wireguard-go >/dev/null && command -v wg >/dev/null || { echo "SKIP: no wireguard-go"; exit 77; }
[[ -c /dev/net/tun ]] || { echo "SKIP: no /dev/net/tun"; exit 77; }

r=$(printf '%04x%03x' $RANDOM $((RANDOM % 4096)))
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for s in a b; do ip netns del "mfdisc-$s$r" 2>/dev/null || true; done
  rm -f /var/run/wireguard/wgd[ab]"$r".sock
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for s in a b; do echo "--- exporter $s"; tail -20 "$work/exporter-$s.log" || true; done
  exit 1
}

ip netns add "mfdisc-a$r"
ip netns add "mfdisc-b$r"
ip link add "vda$r" netns "mfdisc-a$r" type veth peer name "vdb$r" netns "mfdisc-b$r"
ip -n "mfdisc-a$r" addr add 192.0.2.1/24 dev "vda$r"
ip -n "mfdisc-b$r" addr add 192.0.2.2/24 dev "vdb$r"
for s in a b; do
  ip -n "mfdisc-$s$r" link set lo up
  ip -n "mfdisc-$s$r" link set "vd$s$r" up
  (umask 077; wg genkey >"$work/$s.key")
  wg pubkey <"$work/$s.key" >"$work/$s.pub"
  ip netns exec "mfdisc-$s$r" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "wgd$s$r" \
    >"$work/wg-$s.log" 2>&1 &
  pids+=($!)
done
for s in a b; do
  for _ in $(seq 50); do [[ -S /var/run/wireguard/wgd$s$r.sock ]] && break; sleep 0.1; done
done
ip netns exec "mfdisc-a$r" wg set "wgda$r" private-key "$work/a.key" listen-port 51820 \
  peer "$(cat "$work/b.pub")" allowed-ips 10.99.0.2/32 endpoint 192.0.2.2:51820
ip netns exec "mfdisc-b$r" wg set "wgdb$r" private-key "$work/b.key" listen-port 51820 \
  peer "$(cat "$work/a.pub")" allowed-ips 10.99.0.1/32 endpoint 192.0.2.1:51820
ip -n "mfdisc-a$r" addr add 10.99.0.1/24 dev "wgda$r"
ip -n "mfdisc-b$r" addr add 10.99.0.2/24 dev "wgdb$r"
ip -n "mfdisc-a$r" link set "wgda$r" up
ip -n "mfdisc-b$r" link set "wgdb$r" up

for s in a b; do
  cat >"$work/$s.yml" <<YML
node_name: node-$s
probes: {interval: 200ms, timeout: 1s, methods: [udp]}
discovery:
  enabled: true
  refresh_interval: 2s
  overlay_prefixes: [10.99.0.0/24]
  wireguard: {enabled: true, interfaces: [wgd$s$r]}
YML
  ip netns exec "mfdisc-$s$r" "$exporter" --config.file "$work/$s.yml" --no-collector.flow \
    --web.listen-address 127.0.0.1:9474 >"$work/exporter-$s.log" 2>&1 &
  pids+=($!)
done
start=$(date +%s.%N)

# Each exporter: a probe answered under the other node's name.
declare -A seen
for _ in $(seq 300); do
  for pair in a:b b:a; do
    s=${pair%:*} d=${pair#*:}
    [[ -n ${seen[$s]:-} ]] && continue
    if ip netns exec "mfdisc-$s$r" curl -s 127.0.0.1:9474/metrics 2>/dev/null |
        grep -E "^meshflow_probe_received_total\{src_node=\"node-$s\",dst_node=\"node-$d\",method=\"udp\"\} [1-9]" >/dev/null; then
      seen[$s]=$(awk -v now="$(date +%s.%N)" -v t0="$start" 'BEGIN { printf "%.2f", now - t0 }')
    fi
  done
  [[ -n ${seen[a]:-} && -n ${seen[b]:-} ]] && break
  sleep 0.1
done
[[ -n ${seen[a]:-} ]] || fail "node-a never probed node-b by name within 30 s"
[[ -n ${seen[b]:-} ]] || fail "node-b never probed node-a by name within 30 s"
printf 'first answered probe under the peer'"'"'s name: node-a %.2f s, node-b %.2f s after start\n' \
  "${seen[a]}" "${seen[b]}"
ip netns exec "mfdisc-a$r" curl -s 127.0.0.1:9474/metrics |
  grep -E '^meshflow_discovery_(nodes|source_up|hello_replies_total|hello_conflicts_total|merged_nodes)'
# No series under the address name: the hello named the peer before any probe went out, or the
# address-named series was replaced.
if ip netns exec "mfdisc-a$r" curl -s 127.0.0.1:9474/metrics | grep -q 'dst_node="10.99.0.2"'; then
  echo "note: a series under the address name 10.99.0.2 exists beside node-b"
fi
echo PASS
