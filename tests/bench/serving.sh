#!/usr/bin/env bash
# Serving /metrics: meshflow with 1,000 and 10,000 series beside prometheus-node-exporter
# (its default collectors, about a thousand series) measured in the same run on loopback.
# Goals: 10,000 series served in under 10 ms; resident memory no larger than node_exporter's.
#   serving.sh BUILD_DIR
set -euo pipefail
build=$1
bench=$build/tests/bench/serving_bench
count=${SERVING_BENCH_REQUESTS:-300}
work=$(mktemp -d)
ne_pid=""
trap '[[ -n "$ne_pid" ]] && kill "$ne_pid" 2>/dev/null; rm -rf "$work"' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
prometheus-node-exporter --web.listen-address "127.0.0.1:$port" >"$work/ne.log" 2>&1 &
ne_pid=$!
for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" && break; sleep 0.05; done
ne_series=$(curl -s "http://127.0.0.1:$port/metrics" | grep -vc '^#')

echo "== serving /metrics, $count requests each on one keep-alive connection"
"$bench" client "http://127.0.0.1:$port/metrics" "$count" "node_exporter series=$ne_series" "$ne_pid" | tee "$work/ne"
"$bench" serve 1000 "$count" | tee "$work/m1k"
"$bench" serve 10000 "$count" | tee "$work/m10k"

field() { tr ' ' '\n' <"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }
echo "== ratios (meshflow / node_exporter, measured above)"
awk -v a="$(field "$work/m1k" rss_kib)" -v b="$(field "$work/ne" rss_kib)" \
  'BEGIN { printf "rss 1k series: %.2fx node_exporter (%d KiB vs %d KiB)\n", a / b, a, b }'
awk -v a="$(field "$work/m10k" rss_kib)" -v b="$(field "$work/ne" rss_kib)" \
  'BEGIN { printf "rss 10k series: %.2fx node_exporter (%d KiB vs %d KiB)\n", a / b, a, b }'
awk -v a="$(field "$work/m1k" median_ms)" -v b="$(field "$work/ne" median_ms)" \
  'BEGIN { printf "median latency 1k series: %.2fx node_exporter\n", a / b }'
awk -v a="$(field "$work/m10k" median_ms)" -v p="$(field "$work/m10k" p99_ms)" \
  'BEGIN { printf "10k series: median %.2f ms, p99 %.2f ms (goal < 10 ms)\n", a, p }'
