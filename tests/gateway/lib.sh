# Helpers shared by the gateway's shell tests. Sourced, never run. Callers set $work (a
# temporary directory whose *.log files are shown on failure).

fail() {
  echo "FAIL: $*" >&2
  local f
  for f in "$work"/*.log; do
    echo "--- $f:" >&2
    tail -n 15 "$f" >&2
  done
  exit 1
}
pass() { echo "ok: $*"; }

# wait_for SECONDS COMMAND...: runs COMMAND every 100 ms until it succeeds or time is up.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

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

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
bound_port() {  # bound_port LOG HOST: the port the daemon logged for HOST
  grep -o "listening on $2:[0-9]*" "$1" | head -1 | cut -d: -f2
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
