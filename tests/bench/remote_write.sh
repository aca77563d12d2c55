#!/usr/bin/env bash
# Remote write: meshflow-gateway beside vmagent (same Debian package as VictoriaMetrics), in the
# same run, both scraping the same 100 targets x 1,000 series every 5 s and writing to the same
# VictoriaMetrics (loopback). Figures only; nothing passes or fails. Reported per agent: samples
# that arrived in VictoriaMetrics per CPU-second of the agent, resident memory (now and peak),
# request bytes sent per sample. CPU is the process's own (utime + stime from /proc/PID/stat),
# not wall time. vmagent keeps its queue in memory and spills to -remoteWrite.tmpDataPath; the
# gateway's queue is on disk (queue_config.path, every sample written and flushed) unless
# REMOTE_WRITE_BENCH_QUEUE=memory.
#   tests/bench/remote_write.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
gateway=${MESHFLOW_GATEWAY:-$build/gateway/meshflow-gateway}
window=${REMOTE_WRITE_BENCH_WINDOW:-120}  # seconds measured, after a warm-up
targets=${REMOTE_WRITE_BENCH_TARGETS:-100}
series=${REMOTE_WRITE_BENCH_SERIES:-1000}
queue=${REMOTE_WRITE_BENCH_QUEUE:-disk}
[[ $queue == disk || $queue == memory ]] || { echo "remote_write: queue is disk or memory"; exit 1; }
[[ -x $gateway ]] || { echo "remote_write: $gateway not built"; exit 1; }
command -v vmagent >/dev/null || { echo "remote_write: vmagent not installed"; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf -- "$work"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() {
  for _ in $(seq 1 300); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "remote_write: $1 did not answer" >&2
  return 1
}

# The targets: one threaded server, /metrics/N for each target, 1,000 gauges whose values move
# with every scrape.
exp_port=$(free_port)
python3 - "$exp_port" "$targets" "$series" >"$work/targets.log" 2>&1 <<'PY' &
import sys, threading
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
port, targets, series = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
lines = [f'bench_series{{id="{i}",role="r{i % 20}",iface="eth{i % 4}"}} ' for i in range(series)]
count = [0] * targets
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            t = int(self.path.rsplit("/", 1)[1])
        except ValueError:
            self.send_error(404); return
        with lock:
            count[t] += 1
            n = count[t]
        body = ("# TYPE bench_series gauge\n" +
                "".join(f"{l}{(n * 7 + i) % 1000}\n" for i, l in enumerate(lines))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
pids+=($!)
wait_http "http://127.0.0.1:$exp_port/metrics/0"

vm_port=$(free_port)
victoria-metrics -httpListenAddr "127.0.0.1:$vm_port" -storageDataPath "$work/vm" \
  -search.latencyOffset=0s -retentionPeriod=1d -search.maxUniqueTimeseries=1000000 \
  -search.maxQueryDuration=300s \
  >"$work/vm.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$vm_port/health"

{
  echo "targets:"
  echo "  static:"
  for i in $(seq 0 $((targets - 1))); do
    echo "    - {node: t$i, url: 'http://127.0.0.1:$exp_port/metrics/$i'}"
  done
  echo "scrape_interval: 5s"
  echo "remote_write:"
  echo "  - url: http://127.0.0.1:$vm_port/api/v1/write"
  echo "    name: vm"
  echo "    external_labels: {agent: gateway}"
  # On disk, so nothing is dropped while VictoriaMetrics registers 200,000 new series at the
  # start; in memory, 50,000 samples per shard (the default).
  if [[ $queue == disk ]]; then echo "    queue_config: {path: gateway-queue}"; fi
} >"$work/gateway.yml"
{
  echo "global: {scrape_interval: 5s, scrape_timeout: 5s}"
  echo "scrape_configs:"
  echo "  - job_name: meshflow"
  echo "    static_configs:"
  for i in $(seq 0 $((targets - 1))); do
    echo "      - {targets: ['127.0.0.1:$exp_port'], labels: {node: t$i, __metrics_path__: /metrics/$i}}"
  done
} >"$work/vmagent.yml"

gw_port=$(free_port)
"$gateway" --web.listen-address "127.0.0.1:$gw_port" --config.file "$work/gateway.yml" \
  --log.level warn >"$work/gateway.log" 2>&1 &
gw_pid=$!
pids+=($gw_pid)
va_port=$(free_port)
vmagent -httpListenAddr "127.0.0.1:$va_port" -promscrape.config "$work/vmagent.yml" \
  -remoteWrite.url "http://127.0.0.1:$vm_port/api/v1/write" -remoteWrite.label agent=vmagent \
  -remoteWrite.tmpDataPath "$work/vmagent-queue" -loggerLevel WARN >"$work/vmagent.log" 2>&1 &
va_pid=$!
pids+=($va_pid)
wait_http "http://127.0.0.1:$gw_port/metrics"
wait_http "http://127.0.0.1:$va_port/metrics"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {print r, h}' "/proc/$1/status"; }
vm_count() {  # samples of one agent in VictoriaMetrics over the window
  curl -s "http://127.0.0.1:$vm_port/api/v1/query" \
    --data-urlencode "query=sum(count_over_time({agent=\"$1\"}[${window}s]))" \
    --data-urlencode "time=$2" --data-urlencode "timeout=120s" >"$work/count-$1.json"
  python3 - "$work/count-$1.json" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
try:
    r = json.loads(text)["data"]["result"]
except (ValueError, KeyError):
    sys.exit("VictoriaMetrics answered: " + text[:500])
print(r[0]["value"][1] if r else 0)
PY
}
gw_bytes() { curl -sf "http://127.0.0.1:$gw_port/metrics" |
  awk '$1 == "meshflow_remote_write_sent_bytes_total{remote_name=\"vm\"}" {print $2}'; }
va_bytes() { curl -sf "http://127.0.0.1:$va_port/metrics" |
  awk '$1 ~ /^vmagent_remotewrite_bytes_sent_total/ {s += $2} END {printf "%.0f\n", s}'; }

sleep 20  # warm-up: the first scrapes, series creation in VictoriaMetrics
hz=$(getconf CLK_TCK)
g0=$(cpu_ticks $gw_pid) v0=$(cpu_ticks $va_pid) gb0=$(gw_bytes) vb0=$(va_bytes)
start=$(date +%s)
sleep "$window"
end=$(date +%s)
g1=$(cpu_ticks $gw_pid) v1=$(cpu_ticks $va_pid) gb1=$(gw_bytes) vb1=$(va_bytes)
read -r g_rss g_hwm < <(rss_kib $gw_pid)
read -r v_rss v_hwm < <(rss_kib $va_pid)
sleep 5  # let the last batches land
gs=$(vm_count gateway "$end") vs=$(vm_count vmagent "$end")
curl -sf "http://127.0.0.1:$gw_port/metrics" >"$work/gw_metrics"

echo "== remote write, $targets targets x $series series every 5 s, ${window} s measured, gateway queue: $queue"
python3 - "$hz" "$g0" "$g1" "$gs" "$gb0" "$gb1" "$g_rss" "$g_hwm" gateway \
            "$v0" "$v1" "$vs" "$vb0" "$vb1" "$v_rss" "$v_hwm" vmagent <<'PY'
import sys
hz = float(sys.argv[1])
rows = []
for a in (sys.argv[2:10], sys.argv[10:18]):
    c0, c1, samples, b0, b1, rss, hwm, name = a
    cpu = (float(c1) - float(c0)) / hz
    samples = float(samples)
    sent = float(b1) - float(b0)
    rows.append((name, samples, cpu, samples / cpu if cpu else float("inf"),
                 sent / samples if samples else 0, int(rss), int(hwm)))
    print(f"{name:8s} samples_in_vm={samples:.0f} cpu_s={cpu:.2f} samples_per_cpu_s={rows[-1][3]:.0f} "
          f"bytes_per_sample={rows[-1][4]:.2f} rss_kib={rss} peak_rss_kib={hwm}")
g, v = rows
print(f"ratio gateway/vmagent: samples per CPU-second {g[3] / v[3]:.2f}, rss {g[5] / v[5]:.2f}, "
      f"bytes per sample {g[4] / v[4] if v[4] else float('nan'):.2f}")
PY
# Where the gateway's missing samples went, when it delivered fewer than vmagent.
echo "gateway: $(grep -E '^meshflow_remote_write_samples_(dropped_total|failed_total|pending)' \
  "$work/gw_metrics" | tr '\n' ' ')"
echo "gateway: rounds longer than the interval: $(grep -c 'skipping ahead' "$work/gateway.log" || true)"
