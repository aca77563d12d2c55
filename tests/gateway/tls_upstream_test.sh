#!/usr/bin/env bash
# The gateway scraping an exporter secured as deploy/web-config.example.yml secures it (TLS,
# client certificates, basic auth), through /proxy and /federate, by name and by address. Then
# each way it can go wrong, by reloading the gateway's config: a CA that does not sign the
# exporter's certificate, a name the certificate does not carry, no client certificate, a wrong
# password, and a ca_file that does not exist (refused with file, line and field). Last, a node
# pushing to a gateway served with that web config. Loopback only.
#   tls_upstream_test.sh EXPORTER GATEWAY SOURCE_DIR
set -euo pipefail
exporter=$1
gateway=$2
src=$3
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
use_work

pki=$work/pki
"$src/tests/web/example_web_config.sh" "$pki" "$work/etc"
echo scraper-pass >"$work/password" # the password whose hash the example carries
echo wrong >"$work/wrong-password"

printf 'node_name: secured\n' >"$work/exporter.yml"
"$exporter" --web.listen-address 127.0.0.1:0 --config.file "$work/exporter.yml" \
  --web.config.file "$work/etc/web.yml" --no-collector.flow --no-collector.probe \
  >"$work/exporter.log" 2>&1 &
pids+=($!)
wait_for 10 bound_port "$work/exporter.log" 127.0.0.1 >/dev/null || fail "exporter did not start"
port=$(bound_port "$work/exporter.log" 127.0.0.1)

# gateway_config SCRAPE_SETTINGS: both targets, and the given scrape: section.
gateway_config() {
  cat >"$work/gateway.yml.new" <<YAML
targets:
  static:
    - {node: by-name, url: 'https://localhost:$port/metrics'}
    - {node: by-address, url: 'https://127.0.0.1:$port/metrics'}
scrape:
$1
YAML
  mv "$work/gateway.yml.new" "$work/gateway.yml"
}
good_tls="  tls_config: {ca_file: pki/server-ca.crt, cert_file: pki/client.crt, key_file: pki/client.key}"
good_auth="  basic_auth: {username: prometheus, password_file: password}"
gateway_config "$good_tls
$good_auth"
# Basic auth in front of the gateway too: a failed scrape's upstream details are shown only to
# clients that gave credentials.
grep -A1 '^basic_auth_users:' "$work/etc/web.yml" >"$work/gateway-web.yml"
start_gateway gateway --web.enable-lifecycle --web.config.file "$work/gateway-web.yml"
# shellcheck disable=SC2154  # set by start_gateway
gw="http://127.0.0.1:$gw_port"

# proxy NODE: "CODE first-line-of-body".
proxy() {
  curl -s --max-time 10 -u prometheus:scraper-pass -o "$work/body" -w '%{http_code}' \
    "$gw/proxy?target=$1"
  printf ' %s\n' "$(head -c 300 "$work/body" | head -1)"
}
for node in by-name by-address; do
  got=$(proxy "$node")
  [[ $got == 200* ]] || fail "proxy to $node over mutual TLS: $got"
  grep -q '^meshflow_build_info{' "$work/body" || fail "proxy to $node: no exporter metrics"
  pass "proxy to $node over mutual TLS with basic auth -> 200 with the exporter's metrics"
done
curl -s --max-time 10 -u prometheus:scraper-pass "$gw/federate" --data-urlencode 'match[]=meshflow_build_info' -G \
  >"$work/federate" || fail "federate failed"
[[ $(grep -c '^meshflow_build_info{' "$work/federate") == 2 ]] ||
  fail "federate: expected both nodes' build info, got: $(head -c 500 "$work/federate")"
pass "federate over mutual TLS: both targets"

reload() {
  curl -s --max-time 10 -u prometheus:scraper-pass -X POST -o "$work/reload" -w '%{http_code}' \
    "$gw/-/reload"
}
# expect_failure WHAT SCRAPE_SETTINGS PATTERN: after a reload, both targets fail with PATTERN.
expect_failure() {
  local what=$1 settings=$2 pattern=$3 node got
  gateway_config "$settings"
  [[ $(reload) == 200 ]] || fail "$what: reload refused: $(cat "$work/reload")"
  for node in by-name by-address; do
    got=$(proxy "$node")
    [[ $got =~ $pattern ]] || fail "$what ($node): expected /$pattern/, got: $got"
  done
  pass "$what -> ${got:0:160}"
}
expect_failure "a CA that did not sign the exporter's certificate" \
  "  tls_config: {ca_file: pki/client-ca.crt, cert_file: pki/client.crt, key_file: pki/client.key}
$good_auth" '^502 .*\(tls\).*not accepted'
expect_failure "a server_name the certificate does not carry" \
  "  tls_config: {ca_file: pki/server-ca.crt, cert_file: pki/client.crt, key_file: pki/client.key, server_name: other.example}
$good_auth" '^502 .*\(tls\).*not accepted'
expect_failure "no client certificate" \
  "  tls_config: {ca_file: pki/server-ca.crt}
$good_auth" '^502 .*\((tls|io)\)'
expect_failure "a wrong password" \
  "$good_tls
  basic_auth: {username: prometheus, password_file: wrong-password}" '^502 .*HTTP 401'

gateway_config "  tls_config: {ca_file: pki/missing-ca.crt}"
[[ $(reload) == 500 ]] || fail "a missing ca_file was accepted"
grep -q 'gateway.yml:6:.*ca_file' "$work/reload" ||
  fail "the missing ca_file was not reported with its file, line and field: $(cat "$work/reload")"
got=$(proxy by-name)
[[ $got =~ ^502.*HTTP\ 401 ]] || fail "the last good config is not in force after a bad reload: $got"
pass "a missing ca_file is refused at its line; the last good config stays"
# The other direction: a node pushing to a gateway served with the same web config (TLS with
# client certificates; /push needs its token, not basic auth).
printf 'pusher-token-0123456789abcdef\n' >"$work/push.token"
printf 'targets:\n  push:\n    - {node: pusher, token_file: push.token}\n' >"$work/gateway-tls.yml"
start_gateway gateway-tls --web.config.file "$work/etc/web.yml"
gw_tls="localhost:$gw_port"
push_flags=(--no-collector.flow --no-collector.probe --push.token-file "$work/push.token"
  --push.interval 1s --push.tls-ca-file "$pki/server-ca.crt")
printf 'node_name: pusher\n' >"$work/pusher.yml"
if "$exporter" --web.listen-address 127.0.0.1:0 --config.file "$work/pusher.yml" \
  "${push_flags[@]}" --push.url "http://$gw_tls/push" >"$work/refused.log" 2>&1; then
  fail "the exporter started with --push.tls-ca-file and an http:// push URL"
fi
grep -q 'need an https:// --push.url' "$work/refused.log" ||
  fail "TLS files with an http:// push URL: no clear error: $(tail -2 "$work/refused.log")"
pass "TLS files with an http:// push URL are refused at start"
"$exporter" --web.listen-address 127.0.0.1:0 --config.file "$work/pusher.yml" \
  "${push_flags[@]}" --push.url "https://$gw_tls/push" --push.tls-cert-file "$pki/client.crt" \
  --push.tls-key-file "$pki/client.key" >"$work/pusher.log" 2>&1 &
pids+=($!)
pushed() {
  curl -s --max-time 5 --cacert "$pki/server-ca.crt" --cert "$pki/client.crt" \
    --key "$pki/client.key" -u prometheus:scraper-pass "https://$gw_tls/proxy?target=pusher" |
    grep -q '^meshflow_build_info{'
}
wait_for 15 pushed || fail "no push arrived over mutual TLS"
pass "a node pushes over mutual TLS to a gateway served with the example web config"
echo "tls_upstream_test: all checks passed"
