#!/usr/bin/env bash
# Pushgateway compatibility of meshflow-gateway, with the clients users already have: curl as
# the Pushgateway's README uses it (--data-binary, so curl's default form content type) on
# /metrics/job/<job>/instance/<node> and on /push?node=, and push_to_gateway of the Prometheus
# Python client (Debian's python3-prometheus-client). Only with the node's token; an unknown
# node is refused and counted; a bad path or a non-text content type is refused.
#   pushgateway_test.sh GATEWAY_BINARY
set -euo pipefail
gateway=$1
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
use_work
python=/usr/bin/python3  # Debian's, which python3-prometheus-client installs into
port=$(free_port)
mkdir "$work/tokens"
echo "laptop-secret-token-0001" >"$work/tokens/laptop"
echo "desktop-secret-token-0002" >"$work/tokens/desktop"
cat >"$work/gateway.yml" <<'EOF'
targets:
  push:
    - {node: laptop, token_file: tokens/laptop}
    - {node: desktop, token_file: tokens/desktop}
EOF
"$gateway" --config.check --config.file="$work/gateway.yml" >/dev/null || fail "--config.check"
"$gateway" --config.file="$work/gateway.yml" --web.listen-address="127.0.0.1:$port" \
  >"$work/gateway.log" 2>&1 &
pids+=($!)
base=http://127.0.0.1:$port
wait_for 10 curl -sf -o /dev/null "$base/-/ready" || fail "gateway did not start"

printf '# TYPE some_metric gauge\nsome_metric{label="val1"} 42\n' >"$work/body.prom"
status() {  # status EXPECTED CURL_ARGS...: the HTTP status curl gets must be EXPECTED
  local got
  got=$(curl -s -o "$work/reply" -w '%{http_code}' "${@:2}")
  [[ $got == "$1" ]] || fail "curl ${*:2}: status $got, expected $1: $(cat "$work/reply")"
}
auth=(-H "Authorization: Bearer laptop-secret-token-0001")
# The Pushgateway README's form, POST and PUT, with curl's default content type.
status 200 "${auth[@]}" --data-binary @"$work/body.prom" "$base/metrics/job/some_job/instance/laptop"
status 200 "${auth[@]}" -X PUT --data-binary @"$work/body.prom" "$base/metrics/job/some_job/instance/laptop"
grep -q '^some_metric{label="val1"} 42' <<<"$(curl -sf "$base/proxy?target=laptop")" ||
  fail "/proxy does not serve the pushed body"
echo "ok: curl --data-binary to /metrics/job/<job>/instance/<node>, POST and PUT"
# /push?node= keeps working, now also with curl's default content type.
status 200 "${auth[@]}" --data-binary @"$work/body.prom" "$base/push?node=laptop"
echo "ok: curl --data-binary to /push?node=<node>"

# Refused: another node's token, no token, an unknown node (counted), a malformed path, a
# content type that is not text format.
status 403 -H "Authorization: Bearer desktop-secret-token-0002" --data-binary @"$work/body.prom" \
  "$base/metrics/job/j/instance/laptop"
status 401 --data-binary @"$work/body.prom" "$base/metrics/job/j/instance/laptop"
before=$(curl -sf "$base/metrics" | sed -n 's/^meshflow_gateway_push_rejected_total{reason="unknown_node"} //p')
status 404 "${auth[@]}" --data-binary @"$work/body.prom" "$base/metrics/job/j/instance/stranger"
after=$(curl -sf "$base/metrics" | sed -n 's/^meshflow_gateway_push_rejected_total{reason="unknown_node"} //p')
[[ $after == $((${before:-0} + 1)) ]] ||
  fail "unknown node not counted: rejected_total{reason=unknown_node} $before -> $after"
status 400 "${auth[@]}" --data-binary @"$work/body.prom" "$base/metrics/job/j"
status 400 "${auth[@]}" --data-binary @"$work/body.prom" "$base/metrics/job/j/instance/laptop/extra/label"
status 415 "${auth[@]}" -H 'Content-Type: application/json' --data-binary @"$work/body.prom" \
  "$base/metrics/job/j/instance/laptop"
status 405 "${auth[@]}" -X DELETE "$base/metrics/job/j/instance/laptop"
echo "ok: wrong or missing token, unknown node (counted), malformed path, JSON, DELETE refused"

# push_to_gateway from the Prometheus Python client, unchanged but for the bearer token.
$python - "127.0.0.1:$port" <<'PY' || fail "push_to_gateway"
import sys
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
from prometheus_client.exposition import default_handler

def bearer(url, method, timeout, headers, data):
    return default_handler(url, method, timeout,
                           headers + [("Authorization", "Bearer desktop-secret-token-0002")], data)

registry = CollectorRegistry()
Gauge("job_last_success_unixtime", "Last time a batch job succeeded", registry=registry).set(7)
push_to_gateway(sys.argv[1], job="batch", grouping_key={"instance": "desktop"}, registry=registry,
                handler=bearer)
PY
grep -q '^job_last_success_unixtime 7' <<<"$(curl -sf "$base/proxy?target=desktop")" ||
  fail "the Python client's push is not served"
echo "ok: prometheus_client.push_to_gateway"
echo "pushgateway_test: all checks passed"
