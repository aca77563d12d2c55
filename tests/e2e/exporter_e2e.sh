#!/usr/bin/env bash
# End-to-end test of the real meshflow-exporter binary on loopback: serving, headers, gzip,
# landing page, reload by signal and by HTTP with good and bad files, exposition checked by
# promtool, a slow client, and a clean stop on SIGTERM.
#   exporter_e2e.sh PATH/TO/meshflow-exporter
set -euo pipefail

exporter=$1
work=$(mktemp -d)
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null || true
  exec 7>&- 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; echo "--- exporter log:" >&2; tail -n 30 "$work/log" >&2 || true; exit 1; }
pass() { echo "ok: $*"; }

wait_for() {  # wait_for SECONDS COMMAND...: polls every 50 ms
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

cat > "$work/good.yml" <<'YAML'
node_name: e2e-one
nodes:
  - {name: peer, addresses: [127.0.0.2/32]}
YAML

"$exporter" --web.listen-address 127.0.0.1:0 --config.file "$work/good.yml" \
  --web.enable-lifecycle --log.format json >"$work/log" 2>&1 &
pid=$!
listening() { grep -q '"msg":"listening on 127.0.0.1:' "$work/log"; }
wait_for 10 listening || fail "exporter did not start listening"
addr=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$work/log" | head -1 | cut -d' ' -f3)
base="http://$addr"
pass "listening on $addr"

# Exposition and headers.
curl -sS -D "$work/headers" -o "$work/metrics" "$base/metrics"
grep -q '^HTTP/1.1 200' "$work/headers" || fail "metrics status"
grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8' "$work/headers" ||
  fail "content type: $(grep -i content-type "$work/headers")"
for m in meshflow_build_info meshflow_config_last_reload_successful \
  meshflow_config_last_reload_success_timestamp_seconds process_cpu_seconds_total \
  process_resident_memory_bytes process_open_fds process_start_time_seconds; do
  grep -q "^$m" "$work/metrics" || fail "missing $m"
done
promtool check metrics <"$work/metrics" || fail "promtool check metrics"
pass "exposition, headers, promtool check metrics"

curl -sS -H 'Accept-Encoding: gzip' -D "$work/gzheaders" -o "$work/metrics.gz" "$base/metrics"
grep -qi '^Content-Encoding: gzip' "$work/gzheaders" || fail "no gzip"
gunzip -c "$work/metrics.gz" | grep -q '^meshflow_build_info' || fail "gzip body"
curl -sS -D "$work/plainheaders" -o /dev/null "$base/metrics"
! grep -qi '^Content-Encoding' "$work/plainheaders" || fail "gzip without Accept-Encoding"
pass "gzip only when accepted"

curl -sS "$base/" | grep -q 'href="/metrics"' || fail "landing page link"
curl -sS "$base/" | grep -q 'e2e-one' || fail "landing page node name"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$base/-/healthy") == 200 ]] || fail healthy
[[ $(curl -s -o /dev/null -w '%{http_code}' "$base/-/ready") == 200 ]] || fail ready
[[ $(curl -s -o /dev/null -w '%{http_code}' "$base/nope") == 404 ]] || fail "404"
[[ $(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/metrics") == 405 ]] || fail "405"
pass "landing page, health, readiness, 404, 405"

metric() { curl -s "$base/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# Reload by SIGHUP with a good file.
t0=$(metric meshflow_config_last_reload_success_timestamp_seconds)
sleep 0.01
sed -i 's/e2e-one/e2e-two/' "$work/good.yml"
kill -HUP "$pid"
renamed() { curl -s "$base/" | grep -q e2e-two; }
wait_for 5 renamed || fail "SIGHUP reload did not apply"
[[ $(metric meshflow_config_last_reload_successful) == 1 ]] || fail "reload successful metric"
t1=$(metric meshflow_config_last_reload_success_timestamp_seconds)
awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b > a) }' || fail "reload timestamp did not move"
pass "SIGHUP reload with a good file"

# Reload by SIGHUP with a bad file keeps the old config.
cp "$work/good.yml" "$work/good.yml.bak"
printf 'node_name: e2e-three\nnodes:\n  - {name: peer, addresses: [127.0.0.2/8]}\n' >"$work/good.yml"
kill -HUP "$pid"
failed() { [[ $(metric meshflow_config_last_reload_successful) == 0 ]]; }
wait_for 5 failed || fail "bad reload not reported"
grep -q "good.yml:3:.*nodes\[0\].addresses\[0\]" "$work/log" || fail "bad reload log lacks file:line:field"
curl -s "$base/" | grep -q e2e-two || fail "bad reload replaced the running config"
pass "SIGHUP reload with a bad file keeps the running config"

# Reload over HTTP (--web.enable-lifecycle).
code=$(curl -s -o "$work/reload" -w '%{http_code}' -X POST "$base/-/reload")
[[ $code == 500 ]] && grep -q 'good.yml:3:' "$work/reload" || fail "POST /-/reload bad: $code"
cp "$work/good.yml.bak" "$work/good.yml"
[[ $(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/-/reload") == 200 ]] || fail "POST reload"
[[ $(metric meshflow_config_last_reload_successful) == 1 ]] || fail "reload metric after fix"
pass "POST /-/reload, bad then good"

# A client that connects and sends nothing must not stall others.
exec 7<>"/dev/tcp/127.0.0.1/${addr##*:}"
for i in 1 2 3 4 5; do
  curl -sS -m 2 -o /dev/null "$base/metrics" || fail "scrape $i stalled behind a silent client"
done
exec 7>&-
pass "silent client does not stall scrapes"

# Concurrent scrapes are all answered.
for i in $(seq 1 16); do curl -s -m 5 -o /dev/null -w '%{http_code}\n' "$base/metrics" & done >"$work/codes"
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
[[ $(grep -c '^200$' "$work/codes") == 16 ]] || fail "concurrent scrapes: $(sort "$work/codes" | uniq -c)"
pass "16 concurrent scrapes"

# SIGTERM stops within a second.
start=$(date +%s%N)
kill -TERM "$pid"
wait "$pid"
rc=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
pid=""
[[ $rc == 0 ]] || fail "exit code $rc after SIGTERM"
((elapsed_ms < 1000)) || fail "stop took ${elapsed_ms} ms"
pass "SIGTERM stopped cleanly in ${elapsed_ms} ms"

# A bad config at start-up is refused with file, line and field.
printf 'nodes:\n  - {name: a, adresses: []}\n' >"$work/bad.yml"
if "$exporter" --web.listen-address 127.0.0.1:0 --config.file "$work/bad.yml" >"$work/badlog" 2>&1; then
  fail "started with a bad config"
fi
grep -q 'bad.yml:2:.*field nodes\[0\].adresses' "$work/badlog" || fail "start-up error: $(cat "$work/badlog")"
pass "bad config at start-up: exit 1 naming file, line and field"
echo "1 passed, 0 failed"
