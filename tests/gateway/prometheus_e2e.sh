#!/usr/bin/env bash
# A real Prometheus (Debian package) that knows only the gateway: it discovers every node via
# the gateway's /targets (http_sd) and scrapes each through /proxy. Two exporters are scraped,
# one is dead, one pushes. Checks each node's `up`, that bad pushes (malformed, oversized, wrong
# token, another node's name) are refused and change nothing, and that a pushing node that stops
# turns `up` to 0 within TTL + one scrape and back to 1 when it returns. Loopback only.
#   prometheus_e2e.sh PATH/TO/meshflow-exporter PATH/TO/meshflow-gateway
set -euo pipefail

exporter=$1
gateway=$2
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
use_work KILL

start_loopback_nodes
printf 'desktop-agent-token-0123456789abcdef\n' >"$work/desktop.token"
{
  loopback_targets
  cat <<YAML
    - {node: desktop-agent, token_file: desktop.token}
push: {max_body_bytes: 65536}
YAML
} >"$work/gateway.yml"
start_gateway gateway
# shellcheck disable=SC2154  # set by start_gateway
gw="127.0.0.1:$gw_port"
pass "gateway on $gw, exporters at $acer_url $jp_url"

start_pusher() {
  start_exporter laptop-agent 127.0.0.4 --push.url "http://$gw/push" \
    --push.token-file "$work/laptop.token" --push.interval 1s
  pusher_pid=${pids[-1]}
}
start_pusher

prom_port=$(free_port)
cat >"$work/prometheus.yml" <<YAML
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: meshflow
    http_sd_configs:
      - {url: 'http://$gw/targets', refresh_interval: 1s}
YAML
promtool check config "$work/prometheus.yml" >/dev/null || fail "promtool check config"
prometheus --config.file "$work/prometheus.yml" --storage.tsdb.path "$work/tsdb" \
  --web.listen-address "127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)

query() { prom_query "http://127.0.0.1:$prom_port" "$1"; }
up_of() { query "up{node=\"$1\"}" | sed -n 's/.*=\([0-9]*\)$/\1/p'; }
all_seen() { [[ $(query 'up{job="meshflow"}' | wc -l) -eq 5 ]]; }
wait_for 60 all_seen || fail "Prometheus did not discover 5 nodes: $(query up)"
settled() {
  [[ $(up_of acer-agent) == 1 && $(up_of ct-serv-jp) == 1 && $(up_of laptop-agent) == 1 &&
     $(up_of gce-agent-tw) == 0 && $(up_of desktop-agent) == 0 ]]
}
wait_for 30 settled || fail "up per node: $(query up)"
pass "up per node: $(query up | tr '\n' ' ')"

# Every target is the gateway itself; the node label tells the nodes apart.
[[ $(query 'count by (instance) (up)') == "instance=$gw=5" ]] ||
  fail "targets are not all the gateway: $(query 'count by (instance) (up)')"
for n in acer-agent ct-serv-jp laptop-agent; do
  [[ $(query "meshflow_build_info{node=\"$n\"}" | wc -l) -eq 1 ]] || fail "no metrics of $n"
done
pass "each node's own metrics arrive with its node label, scraped or pushed"

# Bad pushes: each refused with its status, nothing served changes.
push() {  # push NODE TOKEN BODY_FILE: prints the HTTP status
  curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $2" \
    -H 'Content-Type: text/plain; version=0.0.4' --data-binary "@$3" "http://$gw/push?node=$1"
}
printf 'evil_metric{a="1" 1\n' >"$work/malformed"
python3 -c 'print("evil_metric{a=\"%s\"} 1" % ("x" * 70000))' >"$work/oversized"
printf 'evil_metric 1\n' >"$work/valid"
[[ $(push laptop-agent laptop-agent-token-0123456789abcdef "$work/malformed") == 400 ]] ||
  fail "malformed push not 400"
[[ $(push laptop-agent laptop-agent-token-0123456789abcdef "$work/oversized") == 413 ]] ||
  fail "oversized push not 413"
[[ $(push laptop-agent wrong-token-wrong-token-wrong-token "$work/valid") == 401 ]] ||
  fail "wrong token not 401"
[[ $(push desktop-agent laptop-agent-token-0123456789abcdef "$work/valid") == 403 ]] ||
  fail "push for another node's name not 403"
# A here-string, not a pipe: grep -q stops at the first match and curl's SIGPIPE would fail it.
grep -q '^meshflow_build_info' <<<"$(curl -s "http://$gw/proxy?target=laptop-agent")" ||
  fail "laptop-agent body lost after bad pushes"
! curl -s "http://$gw/proxy?target=laptop-agent" | grep -q evil_metric ||
  fail "a refused push reached laptop-agent"
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://$gw/proxy?target=desktop-agent") == 503 ]] ||
  fail "desktop-agent served after a push with another node's token"
curl -s "http://$gw/metrics" >"$work/gw_metrics"
for reason in malformed too_large bad_token wrong_node; do
  grep -q "^meshflow_gateway_push_rejected_total{reason=\"$reason\"} 1$" "$work/gw_metrics" ||
    fail "rejection $reason not counted: $(grep push_rejected "$work/gw_metrics")"
done
promtool check metrics <"$work/gw_metrics" || fail "promtool check metrics on the gateway"
sleep 2
[[ $(query 'count(evil_metric)') == "" ]] || fail "evil_metric reached Prometheus"
pass "malformed, oversized, wrong-token and other-node pushes refused, nothing changed"

# The pushing node leaves: up 0 within TTL (3 pushes of 1 s) + one scrape (+1 s slack for
# the query seeing the newest sample), then back.
kill -TERM "$pusher_pid"
left=$SECONDS
down() { [[ $(up_of laptop-agent) == 0 ]]; }
wait_for 8 down || fail "laptop-agent still up $((SECONDS - left)) s after it stopped pushing"
took=$((SECONDS - left))
((took >= 2)) || fail "laptop-agent went down after ${took}s, before its TTL"
pass "laptop-agent up=0 ${took}s after its last push (TTL 3s + 1s scrape)"
start_pusher
back() { [[ $(up_of laptop-agent) == 1 ]]; }
wait_for 10 back || fail "laptop-agent not back up"
pass "laptop-agent up=1 again once it pushes"

# Federation of the same nodes in one scrape.
curl -sfG "http://$gw/federate" --data-urlencode 'match[]=meshflow_build_info' >"$work/federate"
for n in acer-agent ct-serv-jp laptop-agent; do
  [[ $(grep -c "^meshflow_build_info{.*node=\"$n\"} 1$" "$work/federate") -eq 1 ]] ||
    fail "federate lacks $n: $(cat "$work/federate")"
done
[[ $(grep -c '^# TYPE meshflow_build_info gauge$' "$work/federate") -eq 1 ]] ||
  fail "federate: one TYPE line per family expected"
pass "federate merges 3 live nodes"
