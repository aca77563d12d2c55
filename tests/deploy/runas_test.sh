#!/usr/bin/env bash
# As root: starts the exporter with --runas nobody and checks in /proc what it kept: the uid,
# CAP_NET_RAW only while the flow collector runs and CAP_NET_ADMIN only while WireGuard
# discovery is on (in every thread), no_new_privs; and that the metrics say the same. Also: an
# unknown --runas user stops the start.
#   runas_test.sh EXPORTER_BINARY
set -euo pipefail
exporter=$1
if [[ $(id -u) -ne 0 ]]; then
  echo "runas_test: needs root (skipped)"
  exit 77
fi
work=$(mktemp -d)
chmod 755 "$work"
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  tail -n 20 "$work/log" >&2 || true
  exit 1
}
# The reflector on a free port, so that parallel tests do not meet.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'probes: {reflector: {enabled: true, port: %s}}\n' "$port" >"$work/meshflow.yml"
chmod 644 "$work/meshflow.yml"
nobody_uid=$(id -u nobody)
NET_RAW=0000000000002000
NET_RAW_ADMIN=0000000000003000

run() {  # extra flags...; sets pid and url
  # Emptied here, not by the child's redirection, which may come after the reads below.
  : >"$work/log"
  "$exporter" --config.file="$work/meshflow.yml" --web.listen-address=127.0.0.1:0 --runas nobody \
    "$@" >"$work/log" 2>&1 &
  pid=$!
  url=
  for _ in $(seq 1 100); do
    url=$(sed -n 's/.*metrics at \(http:[^ "]*\).*/\1/p' "$work/log" | head -1)
    [[ -n $url ]] && grep -q 'running as uid=' "$work/log" && break
    sleep 0.1
  done
  [[ -n $url ]] || fail "exporter did not start"
}
field() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pid/status"; }
check() {  # what, expected CapEff
  local what=$1 want=$2
  [[ $(field Uid) == "$nobody_uid" ]] || fail "$what: Uid $(field Uid), expected $nobody_uid"
  [[ $(awk '$1 == "Uid:" {print $2 $3 $4 $5}' "/proc/$pid/status") == \
    "$nobody_uid$nobody_uid$nobody_uid$nobody_uid" ]] || fail "$what: not every uid switched"
  [[ $(field Gid) == "$(id -g nobody)" ]] || fail "$what: Gid $(field Gid)"
  [[ $(field Groups) == "" ]] || fail "$what: supplementary groups $(field Groups)"
  [[ $(field NoNewPrivs) == 1 ]] || fail "$what: NoNewPrivs $(field NoNewPrivs)"
  for task in /proc/"$pid"/task/*; do
    for set in CapEff CapPrm CapInh CapAmb; do
      local got
      got=$(awk -v k="$set:" '$1 == k {print $2}' "$task/status")
      local expect=$want
      [[ $set == CapInh || $set == CapAmb ]] && expect=0000000000000000
      [[ $got == "$expect" ]] || fail "$what: thread ${task##*/} $set $got, expected $expect"
    done
  done
  echo "ok: $what: uid $(field Uid), CapEff $(field CapEff) in all" \
    "$(ls /proc/"$pid"/task | wc -l) threads, NoNewPrivs 1"
}

run
check "flow collector on" "$NET_RAW"
metrics=$(curl -s --max-time 5 "$url")
grep -q '^meshflow_capabilities{cap="cap_net_raw",set="effective"} 1' <<<"$metrics" ||
  fail "metrics do not show cap_net_raw"
grep -q '^meshflow_no_new_privs 1' <<<"$metrics" || fail "metrics do not show no_new_privs"
grep -q '^meshflow_running_as_root 0' <<<"$metrics" || fail "metrics say root"
[[ $(grep -c '^meshflow_capabilities{' <<<"$metrics") == 2 ]] || fail "more capabilities in metrics"
echo "ok: metrics show cap_net_raw (effective, permitted), no_new_privs 1, running_as_root 0"
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=

run --no-collector.flow
check "flow collector off" 0000000000000000
grep -q '^meshflow_capabilities' <<<"$(curl -s --max-time 5 "$url")" &&
  fail "capabilities left in metrics"
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=

# WireGuard discovery keeps CAP_NET_ADMIN (the kernel shows a device's peers only to it); the
# socket directory is empty, so the source fails and says why, and the start goes on.
mkdir -m 755 "$work/wg"
printf 'probes: {reflector: {enabled: true, port: %s}}\n' "$port" >"$work/meshflow.yml"
printf 'discovery: {enabled: true, wireguard: {enabled: true, socket_dir: %s}}\n' "$work/wg" \
  >>"$work/meshflow.yml"
run
check "WireGuard discovery on" "$NET_RAW_ADMIN"
grep -q '^meshflow_capabilities{cap="cap_net_admin",set="effective"} 1' \
  <<<"$(curl -s --max-time 5 "$url")" || fail "metrics do not show cap_net_admin"
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=

rc=0
"$exporter" --web.listen-address=127.0.0.1:0 --runas no-such-user-here >"$work/log" 2>&1 || rc=$?
[[ $rc -ne 0 ]] || fail "an unknown --runas user was accepted"
grep -q 'unknown --runas user' "$work/log" || fail "no reason given for the refused --runas"
echo "ok: unknown --runas user refused (exit $rc)"
echo "runas_test: all checks passed"
