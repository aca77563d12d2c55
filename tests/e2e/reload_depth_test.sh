#!/usr/bin/env bash
# Deeply nested configs reloaded into both real daemons, by SIGHUP and by POST /-/reload: nesting
# depths from 1 to 100,000 in three YAML shapes. Every reload must be answered (200 or a located
# error), the daemon must live through all of them, and past 64 levels the error must name the
# file, line and column. /-/reload exists only with --web.enable-lifecycle.
#   reload_depth_test.sh PATH/TO/meshflow-exporter PATH/TO/meshflow-gateway
set -euo pipefail

exporter=$1
gateway=$2
work=$(mktemp -d)
pid=""
trap '[[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT
# shellcheck source-path=SCRIPTDIR source=../gateway/lib.sh
. "$(dirname "$0")/../gateway/lib.sh" # fail (shows $work/*.log), pass
log=$work/daemon.log
# poll_for SECONDS COMMAND...: as wait_for, every 10 ms (hundreds of reloads are waited for).
poll_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do ((SECONDS < deadline)) || return 1; sleep 0.01; done
}

# Depths: the first few, around the cap (64), where civetweb workers used to overflow (about
# 150), up to yaml-cpp's own limit (2,000) and far beyond it.
depths=(1 2 3 8 32 63 64 65 66 100 128 150 160 256 1000 1999 2000 2001 4096 10000 100000)
python3 - "$work" "${depths[@]}" <<'PY'
import sys
work, depths = sys.argv[1], [int(d) for d in sys.argv[2:]]
for d in depths:
    shape = d % 3
    if shape == 0:    # flow lists: [[[1]]]
        text = "[" * d + "1" + "]" * d
    elif shape == 1:  # flow mappings: {a: {a: 1}}
        text = "{a: " * d + "1" + "}" * d
    else:             # compact block lists: - - - 1
        text = "- " * d + "1"
    with open(f"{work}/depth-{d}.yml", "w") as f:
        f.write(text + "\n")
PY

reloads() { grep -c 'config reload' "$log" || true; }
bound() { grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | head -1 | cut -d' ' -f3; }

# run_daemon NAME GOOD_CONFIG BINARY ARGS...: starts it with --web.enable-lifecycle, reloads every
# depth by SIGHUP and then by POST, and checks it still serves and still reloads a good file.
run_daemon() {
  local name=$1 good=$2
  shift 2
  local config=$work/$name.yml
  printf '%s' "$good" >"$config"
  : >"$log"
  "$@" --web.listen-address 127.0.0.1:0 --config.file "$config" --web.enable-lifecycle \
    >"$log" 2>&1 &
  pid=$!
  poll_for 10 bound >/dev/null || fail "$name did not start"
  local base
  base="http://127.0.0.1:$(bound | cut -d: -f2)"
  local n=0 d code
  for d in "${depths[@]}"; do
    cp "$work/depth-$d.yml" "$config"
    kill -HUP "$pid" 2>/dev/null || fail "$name died before the SIGHUP reload of depth $d"
    n=$((n + 1))
    # shellcheck disable=SC2016 # evaluated by poll_for, each time it polls
    poll_for 10 eval '(( $(reloads) >= n ))' || fail "$name did not answer the SIGHUP of depth $d"
  done
  kill -0 "$pid" 2>/dev/null || fail "$name died during the SIGHUP reloads"
  tail -n 1 "$log" | grep -q "$name.yml:1:.*nested more than 64 levels" ||
    fail "$name: the deepest SIGHUP reload was not a located error"
  pass "$name: ${#depths[@]} SIGHUP reloads, depths 1 to 100000, no crash"
  for d in "${depths[@]}"; do
    cp "$work/depth-$d.yml" "$config"
    code=$(curl -s -m 10 -o "$work/reply" -w '%{http_code}' -X POST "$base/-/reload") ||
      fail "$name: POST /-/reload of depth $d got no answer"
    [[ $code == 500 ]] || fail "$name: the reload of depth $d answered $code"
    if ((d > 64)); then
      grep -q "$name.yml:1:[0-9]*: invalid config: lists and mappings nested more than 64" \
        "$work/reply" || fail "$name: depth $d: not a located depth error: $(head -c 300 "$work/reply")"
    fi
  done
  kill -0 "$pid" 2>/dev/null || fail "$name died during the POST reloads"
  pass "$name: ${#depths[@]} POST /-/reload, depths 1 to 100000, no crash, located errors past 64"
  printf '%s' "$good" >"$config"
  [[ $(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST "$base/-/reload") == 200 ]] ||
    fail "$name: a good config is not reloaded after the deep ones"
  [[ $(curl -s -m 10 -o /dev/null -w '%{http_code}' "$base/metrics") == 200 ]] ||
    fail "$name: /metrics not served after the deep reloads"
  kill -TERM "$pid"
  wait "$pid" || fail "$name did not stop cleanly"
  pid=""
  pass "$name: still serving and reloading after them, stopped cleanly"
}

run_daemon exporter $'node_name: depth\n' "$exporter" --no-collector.flow --no-collector.probe
run_daemon gateway $'targets: {}\n' "$gateway"

# Without --web.enable-lifecycle there is no /-/reload to reach.
for daemon in exporter gateway; do
  cmd=("$exporter" --no-collector.flow --no-collector.probe)
  [[ $daemon == gateway ]] && cmd=("$gateway")
  : >"$log"
  "${cmd[@]}" --web.listen-address 127.0.0.1:0 >"$log" 2>&1 &
  pid=$!
  poll_for 10 bound >/dev/null || fail "$daemon did not start"
  code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST "http://$(bound)/-/reload")
  [[ $code == 404 ]] || fail "$daemon: POST /-/reload answered $code without --web.enable-lifecycle"
  kill -TERM "$pid"
  wait "$pid" || true
  pid=""
done
pass "no /-/reload without --web.enable-lifecycle"
