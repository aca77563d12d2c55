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
