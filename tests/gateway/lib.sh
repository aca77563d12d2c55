# shellcheck shell=bash
# Helpers shared by the gateway's shell tests, on top of tests/lib.sh. Sourced, never run.
# Callers set $work (a temporary directory whose *.log files are shown on failure).

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"  # fail, pass, wait_for, free_port, bound_port

# prom_query URL PROMQL [COMMAND PREFIX...]: one "labels=value" line per series, sorted;
# nothing while Prometheus is not answering yet. A prefix such as "ip netns exec NS" runs curl
# elsewhere.
prom_query() {
  local url=$1 promql=$2
  shift 2
  "$@" curl -sf "$url/api/v1/query" --data-urlencode "query=$promql" 2>/dev/null |
    python3 -c '
import json, sys
text = sys.stdin.read()
for r in (json.loads(text)["data"]["result"] if text else []):
    labels = ",".join(k + "=" + v for k, v in sorted(r["metric"].items()) if k != "__name__")
    print(labels + "=" + r["value"][1])' | sort
}

# An exporter with only its HTTP side and self metrics (no capture, no probing), logging to
# $work/NAME.log; the caller defines $exporter, $work and pids.
start_exporter() {  # start_exporter NAME HOST [extra flags...]
  local name=$1 host=$2; shift 2
  printf 'node_name: %s\n' "$name" >"$work/$name.yml"
  "$exporter" --web.listen-address "$host:0" --config.file "$work/$name.yml" \
    --no-collector.flow --no-collector.probe "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  wait_for 10 bound_port "$work/$name.log" "$host" >/dev/null ||
    fail "exporter $name did not start"
}

# start_gateway NAME [extra flags...]: the gateway ($gateway) on a free loopback port with
# $work/NAME.yml, logging to $work/NAME.log; sets $gw_port.
# shellcheck disable=SC2034,SC2154  # $gateway is the caller's, $gw_port is for the caller
start_gateway() {
  local name=$1; shift
  "$gateway" --web.listen-address 127.0.0.1:0 --config.file "$work/$name.yml" "$@" \
    >"$work/$name.log" 2>&1 &
  pids+=($!)
  wait_for 10 bound_port "$work/$name.log" 127.0.0.1 >/dev/null || fail "$name did not start"
  gw_port=$(bound_port "$work/$name.log" 127.0.0.1)
}

# The loopback cluster of the end-to-end tests. start_loopback_nodes starts the exporters
# acer-agent (127.0.0.2) and ct-serv-jp (127.0.0.3), sets their URLs in $acer_url and $jp_url and
# writes laptop-agent's push token to $work/laptop.token. loopback_targets prints the gateway's
# targets section: those two, gce-agent-tw (nothing answers there) and laptop-agent pushing; more
# push entries may follow it.
# shellcheck disable=SC2034  # acer_url and jp_url are for loopback_targets and the caller
start_loopback_nodes() {
  start_exporter acer-agent 127.0.0.2
  start_exporter ct-serv-jp 127.0.0.3
  acer_url="http://127.0.0.2:$(bound_port "$work/acer-agent.log" 127.0.0.2)/metrics"
  jp_url="http://127.0.0.3:$(bound_port "$work/ct-serv-jp.log" 127.0.0.3)/metrics"
  printf 'laptop-agent-token-0123456789abcdef\n' >"$work/laptop.token"
}
# shellcheck disable=SC2154  # set by start_loopback_nodes
loopback_targets() {
  cat <<YAML
targets:
  static:
    - {node: acer-agent, url: '$acer_url'}
    - {node: ct-serv-jp, url: '$jp_url'}
    - {node: gce-agent-tw, url: 'http://127.0.0.5:1/metrics'}
  push:
    - {node: laptop-agent, token_file: laptop.token}
YAML
}
