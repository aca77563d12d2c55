#!/usr/bin/env bash
# The mesh view sits behind the same web config as every other route, on both daemons: with
# deploy/web-config.example.yml (TLS with client certificates, basic auth) the page, its assets
# and /api/v1/mesh answer 401 without credentials and 200 with them, over TLS only, as /metrics
# does beside them. The exporter's API gives its own row. Loopback only.
#   mesh_auth_test.sh EXPORTER_BINARY GATEWAY_BINARY SOURCE_DIR
set -euo pipefail
exporter=$1
gateway=$2
src=$3
work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=../gateway/lib.sh
source "$src/tests/gateway/lib.sh"

"$src/tests/web/make_test_pki.sh" "$work/pki" >/dev/null
pki=$work/pki
"$src/tests/web/example_web_config.sh" "$pki" "$work/etc"
password=scraper-pass # the password whose bcrypt hash the example carries

start_exporter mesh-node 127.0.0.1 --web.config.file "$work/etc/web.yml"
exporter_port=$(bound_port "$work/mesh-node.log" 127.0.0.1)
printf 'pusher-token-0123456789abcdef\n' >"$work/token"
printf 'targets:\n  push:\n    - {node: pusher, token_file: token}\n' >"$work/gateway.yml"
"$gateway" --web.listen-address 127.0.0.1:0 --config.file "$work/gateway.yml" \
  --web.config.file "$work/etc/web.yml" >"$work/gateway.log" 2>&1 &
pids+=($!)
wait_for 10 bound_port "$work/gateway.log" 127.0.0.1 >/dev/null || fail "gateway did not start"
gateway_port=$(bound_port "$work/gateway.log" 127.0.0.1)

tls=(--cacert "$pki/server-ca.crt" --cert "$pki/client.crt" --key "$pki/client.key")
code() {  # code ARGS...: the HTTP status, or refused(curl RC) when there is none
  local got rc=0
  got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@") || rc=$?
  [[ $rc -eq 0 ]] && echo "$got" || echo "refused(curl $rc)"
}
for daemon in exporter gateway; do
  port_var=${daemon}_port
  port=${!port_var}
  for path in /metrics /mesh /mesh/mesh.js /mesh/mesh.css /mesh/favicon.svg '/api/v1/mesh?window=1m'; do
    url="https://localhost:$port$path"
    got=$(code "${tls[@]}" "$url")
    [[ $got == 401 ]] || fail "$daemon $path without credentials: $got, want 401"
    got=$(code "${tls[@]}" -u prometheus:wrong "$url")
    [[ $got == 401 ]] || fail "$daemon $path with a wrong password: $got, want 401"
    got=$(code "${tls[@]}" -u "prometheus:$password" "$url")
    [[ $got == 200 ]] || fail "$daemon $path with credentials: $got, want 200"
    got=$(code -u "prometheus:$password" "http://127.0.0.1:$port$path")
    [[ $got == refused* ]] || fail "$daemon $path over plain HTTP: $got, want no answer"
    pass "$daemon $path: 401 without or with wrong credentials, 200 with them, TLS only"
  done
  # The page's policy comes through the secured server unchanged.
  curl -s -D - -o /dev/null "${tls[@]}" -u "prometheus:$password" "https://localhost:$port/mesh" |
    grep -qi "^Content-Security-Policy: default-src 'none'" ||
    fail "$daemon /mesh lost its Content-Security-Policy behind the web config"
  pass "$daemon /mesh keeps its Content-Security-Policy"
done

# The exporter answers for its own node.
body=$(curl -s --max-time 5 "${tls[@]}" -u "prometheus:$password" \
  "https://localhost:$exporter_port/api/v1/mesh?window=1m")
python3 -c '
import json, sys
view = json.loads(sys.argv[1])
names = [n["name"] for n in view["nodes"]]
assert names == ["mesh-node"], names
assert all(l["src"] == "mesh-node" for l in view["links"]), view["links"]
' "$body" || fail "the exporter's /api/v1/mesh does not give its own row: $body"
pass "the exporter's /api/v1/mesh gives its own node"
echo "mesh_auth_test: all checks passed"
