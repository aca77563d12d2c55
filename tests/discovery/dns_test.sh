#!/usr/bin/env bash
# The DNS source against a real dnsmasq on a loopback port of its own: A and AAAA records of a
# name, re-resolved at every poll (the records change under it), and a dead server is an error.
# --local makes dnsmasq the authority for mesh.test: NODATA for a missing type, NXDOMAIN for a
# missing name, as a cluster DNS server answers for its zone.
set -euo pipefail
check=$1
command -v dnsmasq >/dev/null || { echo "SKIP: no dnsmasq"; exit 77; }
# shellcheck source=tests/discovery/lib.sh
source "$(dirname "$0")/lib.sh"
use_work

port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_dnsmasq() {
  dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
    --listen-address=127.0.0.1 --bind-interfaces --port="$port" --user="$(id -un)" \
    --local=/mesh.test/ --pid-file= --log-facility=- "$@" 2>>"$work/dnsmasq.log" &
  dns_pid=$!
  pids=("$dns_pid")  # the only process to stop on exit
  for _ in $(seq 50); do
    # Ready when it answers; dig is not needed, the source itself asks.
    ss -Hlun "sport = :$port" | grep -q . && return 0
    sleep 0.1
  done
  cat "$work/dnsmasq.log"; fail "dnsmasq did not start"
}
stop_dnsmasq() { kill "$dns_pid"; wait "$dns_pid" 2>/dev/null || true; pids=(); }

start_check dns "127.0.0.1:$port" peers.mesh.test

start_dnsmasq --host-record=peers.mesh.test,10.77.0.1 --host-record=peers.mesh.test,10.77.0.2 \
  --host-record=peers.mesh.test,fd00:77::3
poll
[[ $(head -1 <<<"$out") == "ok 3" ]] || fail "expected 3 addresses"
for a in 10.77.0.1/32 10.77.0.2/32 fd00:77::3/128; do grep -qx "|$a" <<<"$out" || fail "$a"; done

# A node leaves and another joins: the next poll asks again and sees it.
stop_dnsmasq
start_dnsmasq --host-record=peers.mesh.test,10.77.0.1 --host-record=peers.mesh.test,10.77.0.9
poll
[[ $(head -1 <<<"$out") == "ok 2" ]] || fail "re-resolution"
grep -qx "|10.77.0.9/32" <<<"$out" || fail "the new address"

# A name the server does not know: NXDOMAIN is an error (the last good set is kept upstream).
line=$(echo poll | timeout 20 "$check" dns "127.0.0.1:$port" nobody.mesh.test | head -1)
echo "$line"
[[ $line == "error nobody.mesh.test"* ]] || fail "unknown name: $line"

stop_dnsmasq
poll
[[ $out == "error peers.mesh.test"* ]] || fail "a dead server must be an error"
echo PASS
