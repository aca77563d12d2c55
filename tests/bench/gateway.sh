#!/usr/bin/env bash
# meshflow-gateway benchmarks. Figures only; nothing passes or fails.
#
# 1. Lossy WAN (test bed, topologies/wan.yaml: 250 ms round trip, 12 % loss per packet and
#    direction): 100 exporters on home-worker, two Prometheus servers on cloud-cp scraping every
#    5 s (timeout 5 s) in the same run: one scrapes the 100 targets directly across the link,
#    the other only the gateway on home-worker (http_sd /targets + /proxy). Reported: the share
#    of scrapes that completed in time (mean of `up`), scrape duration quantiles, and the
#    gateway's CPU and resident memory. Skipped without root.
# 2. /federate of 100 nodes x 1,000 series (loopback): the gateway's merged view beside a real
#    Prometheus's /federate over the same 100,000 series, same match[], same client.
#   tests/bench/gateway.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
top=$(cd "$(dirname "$0")/../.." && pwd)
exporter=${MESHFLOW_EXPORTER:-$build/exporter/meshflow-exporter}
gateway=${MESHFLOW_GATEWAY:-$build/gateway/meshflow-gateway}
emulator=${MESHFLOW_OVERLAY_EMULATOR:-$build/tests/testbed/meshflow-overlay-emulator}
ctl_bin=${MESHFLOW_OVERLAY_CTL:-$build/tests/testbed/meshflow-overlay-ctl}
window=${GATEWAY_BENCH_WINDOW:-120}  # seconds of WAN scraping measured
targets=${GATEWAY_BENCH_TARGETS:-100}
for b in "$exporter" "$gateway"; do [[ -x $b ]] || { echo "gateway: $b not built"; exit 1; }; done

INSTANCE=mfgw-bench
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$top/tests/testbed/down" --instance "$INSTANCE" >/dev/null 2>&1 || true
  rm -rf -- "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() {  # wait_http URL [NS]: up to 20 s
  for _ in $(seq 1 200); do
    if [[ -n ${2:-} ]]; then
      ip netns exec "$2" curl -sf -o /dev/null "$1" && return 0
    else
      curl -sf -o /dev/null "$1" && return 0
    fi
    sleep 0.1
  done
  return 1
}
query() {  # query PROM_URL PROMQL [NS]: the first value, at $eval_time when set
  local cmd=(curl -sf "$1/api/v1/query" --data-urlencode "query=$2")
  [[ -n ${eval_time:-} ]] && cmd+=(--data-urlencode "time=$eval_time")
  [[ -n ${3:-} ]] && cmd=(ip netns exec "$3" "${cmd[@]}")
  "${cmd[@]}" | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "nan")'
}
cpu_seconds() {  # utime+stime of a pid, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------------------------------------
echo "== 1. $targets targets behind 250 ms / 12 % loss, 5 s scrapes: direct vs through the gateway"
if [[ -n ${GATEWAY_BENCH_SKIP_WAN:-} ]]; then
  echo "skipped: GATEWAY_BENCH_SKIP_WAN is set"
elif [[ $(id -u) != 0 || ! -x $emulator ]]; then
  echo "skipped: needs root and $emulator"
else
  "$top/tests/testbed/up" --instance "$INSTANCE" --topology "$top/tests/testbed/topologies/wan.yaml" \
    --skip services --emulator "$emulator" --ctl "$ctl_bin" >"$work/up.log"
  home=$INSTANCE-home-worker
  cloud=$INSTANCE-cloud-cp
  home4=10.4.0.2
  cloud4=10.4.0.1
  printf 'node_name: bench\n' >"$work/exporter.yml"
  : >"$work/static_targets"
  {
    echo "targets:"
    echo "  static:"
  } >"$work/gateway.yml"
  for i in $(seq 0 $((targets - 1))); do
    port=$((21000 + i))
    printf 'node_name: node-%03d\n' "$i" >"$work/e$i.yml"
    ip netns exec "$home" "$exporter" --web.listen-address "$home4:$port" \
      --config.file "$work/e$i.yml" --no-collector.flow --no-collector.probe \
      --log.level warn >>"$work/exporters.log" 2>&1 &
    pids+=($!)
    echo "'$home4:$port'," >>"$work/static_targets"
    printf "    - {node: node-%03d, url: 'http://%s:%d/metrics'}\n" "$i" "$home4" "$port" \
      >>"$work/gateway.yml"
  done
  ip netns exec "$home" "$gateway" --web.listen-address "$home4:9475" \
    --config.file "$work/gateway.yml" --log.level warn >"$work/gateway.log" 2>&1 &
  gw_pid=$!
  pids+=($gw_pid)
  wait_http "http://$home4:9475/-/healthy" "$home" || { echo "gateway did not start"; exit 1; }
  wait_http "http://$home4:$((21000 + targets - 1))/metrics" "$home" ||
    { echo "exporters did not start"; exit 1; }
  body_bytes=$(ip netns exec "$home" curl -s "http://$home4:21000/metrics" | wc -c)
  body_gz=$(ip netns exec "$home" curl -s -H 'Accept-Encoding: gzip' "http://$home4:21000/metrics" | wc -c)

  cat >"$work/direct.yml" <<YAML
global: {scrape_interval: 5s, scrape_timeout: 5s}
scrape_configs:
  - job_name: direct
    static_configs:
      - targets: [$(tr -d '\n' <"$work/static_targets" | sed 's/,$//')]
YAML
  cat >"$work/via.yml" <<YAML
global: {scrape_interval: 5s, scrape_timeout: 5s}
scrape_configs:
  - job_name: gateway
    http_sd_configs:
      - {url: 'http://$home4:9475/targets', refresh_interval: 5s}
YAML
  for p in direct:9090 via:9091; do
    ip netns exec "$cloud" prometheus --config.file "$work/${p%%:*}.yml" \
      --storage.tsdb.path "$work/tsdb-${p%%:*}" --web.listen-address "$cloud4:${p##*:}" \
      --log.level warn >"$work/prom-${p%%:*}.log" 2>&1 &
    pids+=($!)
  done
  wait_http "http://$cloud4:9090/-/ready" "$cloud" && wait_http "http://$cloud4:9091/-/ready" "$cloud" ||
    { echo "prometheus did not start"; exit 1; }
  # Warm-up: discovery and the first scrapes (their connection set-up) are not measured.
  sleep 20
  cpu0=$(cpu_seconds "$gw_pid")
  echo "measuring ${window}s (exposition $body_bytes bytes, $body_gz gzipped) ..."
  sleep "$window"
  cpu1=$(cpu_seconds "$gw_pid")
  # Every figure from the same instant, so the counts agree with each other.
  eval_time=$(date +%s)
  for p in direct:9090 via:9091; do
    url="http://$cloud4:${p##*:}"
    name=${p%%:*}
    ok=$(query "$url" "sum(sum_over_time(up[${window}s]))" "$cloud")
    all=$(query "$url" "sum(count_over_time(up[${window}s]))" "$cloud")
    p50=$(query "$url" "quantile(0.5, quantile_over_time(0.5, scrape_duration_seconds[${window}s]))" "$cloud")
    p99=$(query "$url" "max(quantile_over_time(0.99, scrape_duration_seconds[${window}s]))" "$cloud")
    targets_seen=$(query "$url" "count(up)" "$cloud")
    awk -v n="$name" -v ok="$ok" -v all="$all" -v a="$p50" -v b="$p99" -v t="$targets_seen" \
      'BEGIN { printf "%-7s targets=%d scrapes=%d in_time=%d share=%.4f duration_median_s=%.3f duration_p99_s=%.3f\n", n, t, all, ok, ok / all, a, b }' |
      tee "$work/res-$name"
  done
  unset eval_time
  share() { tr ' ' '\n' <"$1" | awk -F= '$1 == "share" { print $2 }'; }
  awk -v g="$(share "$work/res-via")" -v d="$(share "$work/res-direct")" \
    'BEGIN { printf "ratio: share in time through the gateway / direct = %.3f\n", g / d }'
  awk -v c0="$cpu0" -v c1="$cpu1" -v w="$window" -v r="$(rss_kib "$gw_pid")" -v h="$(hwm_kib "$gw_pid")" \
    'BEGIN { printf "gateway: cpu %.2f%% of one core (%.2f s over %d s), rss %d KiB, peak rss %d KiB\n", 100 * (c1 - c0) / w, c1 - c0, w, r, h }'
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  "$top/tests/testbed/down" --instance "$INSTANCE" >/dev/null 2>&1 || true
fi

# ---------------------------------------------------------------------------------------------
echo
echo "== 2. /federate of 100 nodes x 1,000 series: the gateway vs Prometheus's own /federate"
nodes=100
series=1000
runs=${GATEWAY_BENCH_FEDERATE_RUNS:-20}
gw_port=$(free_port)
{
  echo "targets:"
  echo "  push:"
  for i in $(seq 0 $((nodes - 1))); do
    printf 'bench-token-%03d-0123456789abcdef\n' "$i" >"$work/t$i"
    printf '    - {node: node-%03d, token_file: t%d}\n' "$i" "$i"
  done
  echo "push: {ttl: 1h}"
} >"$work/fed.yml"
"$gateway" --web.listen-address "127.0.0.1:$gw_port" --config.file "$work/fed.yml" \
  --log.level warn >"$work/fed-gateway.log" 2>&1 &
fed_pid=$!
pids+=($fed_pid)
wait_http "http://127.0.0.1:$gw_port/-/healthy" || { echo "gateway did not start"; exit 1; }
python3 - "$work/body" "$series" <<'PY'
import random, sys
path, n = sys.argv[1], int(sys.argv[2])
random.seed(1)
with open(path, "w") as f:
    for fam in range(n // 100):
        f.write(f"# HELP bench_family_{fam} A benchmark family.\n# TYPE bench_family_{fam} gauge\n")
        for i in range(100):
            f.write(f'bench_family_{fam}{{peer="peer-{i}",role="role-{i % 7}"}} {random.random()}\n')
PY
for i in $(seq 0 $((nodes - 1))); do
  curl -sf -o /dev/null -X POST -H "Authorization: Bearer $(cat "$work/t$i")" \
    -H 'Content-Type: text/plain; version=0.0.4' \
    --data-binary "@$work/body" "http://127.0.0.1:$gw_port/push?node=$(printf node-%03d "$i")"
done
prom_port=$(free_port)
cat >"$work/fed-prom.yml" <<YAML
global: {scrape_interval: 5s, scrape_timeout: 5s}
scrape_configs:
  - job_name: bench
    honor_labels: true
    http_sd_configs:
      - {url: 'http://127.0.0.1:$gw_port/targets', refresh_interval: 5s}
YAML
prometheus --config.file "$work/fed-prom.yml" --storage.tsdb.path "$work/fed-tsdb" \
  --web.listen-address "127.0.0.1:$prom_port" --log.level warn >"$work/fed-prom.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$prom_port/-/ready" || { echo "prometheus did not start"; exit 1; }
for _ in $(seq 1 60); do
  [[ $(query "http://127.0.0.1:$prom_port" 'count({__name__=~"bench_.*"})') == $((nodes * series)) ]] && break
  sleep 1
done
match='match[]={__name__=~"bench_.*"}'
time_federate() {  # time_federate BASE LABEL
  local out=$work/times-$2 i
  : >"$out"
  for i in $(seq 1 "$runs"); do
    curl -sf -o "$work/fed-body-$2" -w '%{time_total} %{size_download}\n' -G \
      --data-urlencode "$match" "$1/federate" >>"$out"
  done
  sort -n "$out" | awk -v l="$2" -v s="$(grep -c '^bench_' "$work/fed-body-$2")" '
    { t[NR] = $1; b = $2 }
    END { printf "%-10s series=%d bytes=%d median_ms=%.1f p90_ms=%.1f min_ms=%.1f (%d runs)\n",
          l, s, b, 1000 * t[int((NR + 1) / 2)], 1000 * t[int(NR * 0.9 + 0.5)], 1000 * t[1], NR }' |
    tee "$work/fed-$2"
}
time_federate "http://127.0.0.1:$gw_port" gateway
time_federate "http://127.0.0.1:$prom_port" prometheus
med() { tr ' ' '\n' <"$1" | awk -F= '$1 == "median_ms" { print $2 }'; }
awk -v g="$(med "$work/fed-gateway")" -v p="$(med "$work/fed-prometheus")" \
  'BEGIN { printf "ratio: gateway /federate median latency / Prometheus = %.2f\n", g / p }'
awk -v r="$(rss_kib "$fed_pid")" -v h="$(hwm_kib "$fed_pid")" \
  'BEGIN { printf "gateway holding 100 x 1,000 pushed series: rss %d KiB, peak %d KiB\n", r, h }'
