#!/usr/bin/env bash
# The Tailscale source over a Unix socket served by a stand-in for tailscaled that answers
# /localapi/v0/status with the reconstructed fixture (no tailscaled is involved), then with
# malformed JSON and with an HTTP error; a missing socket is an error, not a crash.
set -euo pipefail
check=$1
fixture=$2
# shellcheck source=tests/discovery/lib.sh
source "$(dirname "$0")/lib.sh"
use_work

echo good >"$work/mode"
python3 - "$work/tailscaled.sock" "$fixture" "$work/mode" <<'PY' &
import socket, sys
path, fixture, mode_file = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(4)
while True:
    c, _ = s.accept()
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = c.recv(4096)
        if not chunk:
            break
        head += chunk
    mode = open(mode_file).read().strip()
    lines = head.decode().split("\r\n")
    if lines[0] != "GET /localapi/v0/status HTTP/1.0" or "Host: local-tailscaled.sock" not in lines:
        status, body = "400 Bad Request", b"unexpected request: " + head[:200]
    elif mode == "good":
        status, body = "200 OK", open(fixture, "rb").read()
    elif mode == "bad":
        status, body = "200 OK", b'{"Peer": {"nodekey:1": {"HostName": "x", "TailscaleIPs": ["100.1.2"]}}}'
    else:
        status, body = "503 Service Unavailable", b"tailscaled is starting\n"
    c.sendall(b"HTTP/1.0 " + status.encode() + b"\r\nContent-Type: application/json\r\n\r\n" + body)
    c.close()
PY
pids+=($!)
for _ in $(seq 50); do [[ -S $work/tailscaled.sock ]] && break; sleep 0.1; done

start_check tailscale "$work/tailscaled.sock"

poll
[[ $(head -1 <<<"$out") == "ok 3" ]] || fail "expected Self and two peers"
grep -qx 'acer-agent|100.101.102.3/32,fd7a:115c:a1e0::3/128' <<<"$out" || fail "acer-agent"
grep -qx 'laptop-7|100.101.102.7/32,fd7a:115c:a1e0::7/128' <<<"$out" || fail "laptop-7"
echo bad >"$work/mode"
poll
[[ $out == "error "*'TailscaleIPs[0]: not an IP address'* ]] || fail "bad data must be located"
echo down >"$work/mode"
poll
[[ $out == "error "*"HTTP 503"* ]] || fail "an HTTP error"
out=$(echo poll | timeout 20 "$check" tailscale "$work/no-such.sock")
echo "$out"
[[ $out == "error "*"no-such.sock: cannot connect"* ]] || fail "a missing socket"
echo PASS
