#!/usr/bin/env bash
# The WireGuard source against a real wireguard-go device: peers added and removed with `wg`
# show up in the next poll; a missing socket is an error, not a crash. Needs root (a network
# namespace of its own, /dev/net/tun). Everything it creates carries a random name and is
# removed on exit.
set -euo pipefail
check=$1
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root"; exit 77; }
command -v wireguard-go >/dev/null && command -v wg >/dev/null || { echo "SKIP: no wireguard-go"; exit 77; }
[[ -c /dev/net/tun ]] || { echo "SKIP: no /dev/net/tun"; exit 77; }

suffix=$(printf '%04x%04x' $RANDOM $RANDOM)
ns=mfdisc-$suffix
ifname=wgd$suffix
sockdir=/var/run/wireguard
work=$(mktemp -d)
wg_pid=
cleanup() {
  [[ -n $wg_pid ]] && kill "$wg_pid" 2>/dev/null && wait "$wg_pid" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -f "$sockdir/$ifname.sock"
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
mkdir -p "$sockdir"
ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$ifname" >"$work/wg.log" 2>&1 &
wg_pid=$!
for _ in $(seq 50); do [[ -S $sockdir/$ifname.sock ]] && break; sleep 0.1; done
[[ -S $sockdir/$ifname.sock ]] || { echo "FAIL: wireguard-go made no socket"; cat "$work/wg.log"; exit 1; }

(umask 077; wg genkey >"$work/key")
ip netns exec "$ns" wg set "$ifname" private-key "$work/key" listen-port 0
p1=$(wg genkey | wg pubkey)
p2=$(wg genkey | wg pubkey)
ip netns exec "$ns" wg set "$ifname" peer "$p1" allowed-ips 10.77.0.2/32,10.42.1.0/24 \
  endpoint 127.0.0.1:51999
ip netns exec "$ns" wg set "$ifname" peer "$p2" allowed-ips 10.77.0.3/32,fd00:77::3/128

# shellcheck source=tests/discovery/lib.sh
source "$(dirname "$0")/lib.sh"
start_check wireguard "$sockdir" "$ifname"

poll
[[ $(head -1 <<<"$out") == "ok 2" ]] || fail "expected 2 peers"
grep -qx '|10.77.0.2/32,10.42.1.0/24' <<<"$out" || fail "peer 1's addresses"
grep -qx '|10.77.0.3/32,fd00:77::3/128' <<<"$out" || fail "peer 2's addresses"

ip netns exec "$ns" wg set "$ifname" peer "$p1" remove
poll
[[ $(head -1 <<<"$out") == "ok 1" ]] || fail "a removed peer still listed"

# Every socket in the directory (no interface named) includes ours.
out=$(echo poll | "$check" wireguard "$sockdir")
grep -qx '|10.77.0.3/32,fd00:77::3/128' <<<"$out" || fail "directory scan: $out"

kill "$wg_pid"; wait "$wg_pid" 2>/dev/null || true; wg_pid=
rm -f "$sockdir/$ifname.sock"
poll
[[ $out == "error "*"$ifname.sock"* ]] || fail "a missing socket must be a located error"
echo PASS
