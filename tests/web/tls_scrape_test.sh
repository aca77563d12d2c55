#!/usr/bin/env bash
# The exporter behind TLS with client certificates and basic auth, configured by our example
# web config, scraped by a real Prometheus (Debian package) on loopback; everything that should
# be refused is: wrong password, unknown user, no client certificate, an expired or foreign
# client certificate, plain HTTP against the TLS port. Then the web config is changed on disk:
# new users apply, a broken file keeps the last good one, a new certificate restarts the
# listener.
#   tls_scrape_test.sh EXPORTER_BINARY SOURCE_DIR
set -euo pipefail
exporter_bin=$1
src=$2
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
use_work

# The example file verbatim, with certificates (a fresh test PKI) where its relative paths point.
pki=$work/pki
"$src/tests/web/example_web_config.sh" "$pki" "$work/etc"
promtool check web-config "$work/etc/web.yml" || fail "promtool refuses the example web config"
# The password whose bcrypt hash the example carries.
password=scraper-pass

"$exporter_bin" --web.listen-address=127.0.0.1:0 --web.config.file="$work/etc/web.yml" \
  --no-collector.flow --no-collector.probe --log.level=debug >"$work/exporter.log" 2>&1 &
pids+=($!)
wait_for 10 bound_port "$work/exporter.log" 127.0.0.1 >/dev/null || fail "exporter did not start"
port=$(bound_port "$work/exporter.log" 127.0.0.1)
url=https://localhost:$port/metrics

# curl_code ARGS...: the HTTP status, or "tls-refused"/"no-http" when there is none.
curl_code() {
  local code rc=0
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@") || rc=$?
  if [[ $rc -eq 0 ]]; then echo "$code"; elif [[ $code == 000 ]]; then echo "refused(curl $rc)"; else echo "$code"; fi
}
good=(--cacert "$pki/server-ca.crt" --cert "$pki/client.crt" --key "$pki/client.key")
expect() {  # what expected, then curl arguments
  local what=$1 want=$2 got
  shift 2
  got=$(curl_code "$@")
  if [[ $want == refused ]]; then
    [[ $got == refused* ]] || fail "$what: expected the connection refused, got $got"
  else
    [[ $got == "$want" ]] || fail "$what: expected $want, got $got"
  fi
  echo "ok: $what -> $got"
}
expect "client cert + right password" 200 "${good[@]}" -u "prometheus:$password" "$url"
expect "client cert + wrong password" 401 "${good[@]}" -u prometheus:wrong "$url"
expect "client cert + unknown user" 401 "${good[@]}" -u mallory:"$password" "$url"
expect "client cert, no credentials" 401 "${good[@]}" "$url"
curl -s -D - -o /dev/null "${good[@]}" "$url" | grep -qi '^WWW-Authenticate: Basic' ||
  fail "401 without WWW-Authenticate: Basic"
echo "ok: 401 carries WWW-Authenticate: Basic"
expect "no client certificate" refused --cacert "$pki/server-ca.crt" -u "prometheus:$password" "$url"
expect "expired client certificate" refused --cacert "$pki/server-ca.crt" \
  --cert "$pki/expired.crt" --key "$pki/expired.key" -u "prometheus:$password" "$url"
expect "certificate from an untrusted CA" refused --cacert "$pki/server-ca.crt" \
  --cert "$pki/stranger.crt" --key "$pki/stranger.key" -u "prometheus:$password" "$url"
expect "plain HTTP against the TLS port" refused -u "prometheus:$password" \
  "http://127.0.0.1:$port/metrics"
expect "TLS 1.1 client" refused "${good[@]}" --tls-max 1.1 -u "prometheus:$password" "$url"

# A real Prometheus: one job with the right settings, one per way of being refused.
prom_port=$(free_port)
echo "$password" >"$work/password"
echo wrong >"$work/wrong-password"
job() {  # name, extra tls_config lines, password file
  cat <<JOB
  - job_name: $1
    scheme: https
    static_configs: [{targets: ["localhost:$port"]}]
    basic_auth: {username: prometheus, password_file: $3}
    tls_config:
      ca_file: $pki/server-ca.crt
$2
JOB
}
client="      cert_file: $pki/client.crt
      key_file: $pki/client.key"
expired="      cert_file: $pki/expired.crt
      key_file: $pki/expired.key"
{
  printf 'global: {scrape_interval: 1s, scrape_timeout: 900ms}\nscrape_configs:\n'
  job meshflow-tls "$client" "$work/password"
  job wrong-password "$client" "$work/wrong-password"
  job no-client-cert "" "$work/password"
  job expired-client-cert "$expired" "$work/password"
  cat <<JOB
  - job_name: plain-http
    static_configs: [{targets: ["localhost:$port"]}]
    basic_auth: {username: prometheus, password_file: $work/password}
JOB
} >"$work/prometheus.yml"
promtool check config "$work/prometheus.yml" >/dev/null || fail "test prometheus.yml invalid"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)

query() {  # PromQL -> "job=value" lines
  curl -s --max-time 5 "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json,sys
for r in json.load(sys.stdin)["data"]["result"]:
    print(r["metric"].get("job", ""), r["value"][1], sep="=")' 2>/dev/null || true
}
want="expired-client-cert=0
meshflow-tls=1
no-client-cert=0
plain-http=0
wrong-password=0"
got=
for _ in $(seq 1 60); do
  got=$(query up | sort)
  [[ $got == "$want" ]] && break
  sleep 0.5
done
[[ $got == "$want" ]] || { tail -n 20 "$work/prometheus.log" >&2; fail "Prometheus up: $got"; }
echo "ok: Prometheus scrapes over mutual TLS with basic auth; the four refused jobs are down"
samples=$(query 'scrape_samples_scraped{job="meshflow-tls"}')
[[ ${samples#*=} -gt 10 ]] || fail "too few samples scraped: $samples"
echo "ok: $samples samples per scrape"
kill "${pids[1]}"
wait "${pids[1]}" 2>/dev/null || true
pids=("${pids[0]}")

# Reloads. New users take effect without a restart (the watcher polls every 3 s).
wait_for() {  # what, want, curl args...
  local what=$1 want=$2 got=
  shift 2
  for _ in $(seq 1 40); do
    got=$(curl_code "$@")
    [[ $got == "$want" ]] && { echo "ok: $what -> $got"; return; }
    sleep 0.25
  done
  fail "$what: expected $want, got $got"
}
hash=$(python3 -W ignore -c 'import crypt; print(crypt.crypt("n3w", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))')
sed "s#^  prometheus: .*#  grafana-agent: '$hash'#" "$src/deploy/web-config.example.yml" \
  >"$work/etc/web.yml.new"
mv "$work/etc/web.yml.new" "$work/etc/web.yml"
wait_for "new user after reload" 200 "${good[@]}" -u grafana-agent:n3w "$url"
expect "old user after reload" 401 "${good[@]}" -u "prometheus:$password" "$url"

# A broken file is refused and the last good config stays.
printf 'basic_auth_users:\n  grafana-agent: not-a-hash\n' >"$work/etc/web.yml.new"
mv "$work/etc/web.yml.new" "$work/etc/web.yml"
for _ in $(seq 1 40); do
  grep -q 'web config not reloaded' "$work/exporter.log" && break
  sleep 0.25
done
grep 'web config not reloaded' "$work/exporter.log" | grep -q 'web.yml:2:' ||
  fail "the broken web config was not reported with its line"
expect "last good config after a broken reload" 200 "${good[@]}" -u grafana-agent:n3w "$url"

# A renewed server certificate (same file names) restarts the listener with it.
old_serial=$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -cert "$pki/client.crt" \
  -key "$pki/client.key" </dev/null 2>/dev/null | openssl x509 -noout -serial)
sed "s#^  prometheus: .*#  grafana-agent: '$hash'#" "$src/deploy/web-config.example.yml" \
  >"$work/etc/web.yml.new"
mv "$work/etc/web.yml.new" "$work/etc/web.yml"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$work/new.key" -out "$work/new.csr" 2>/dev/null
openssl x509 -req -in "$work/new.csr" -CA "$pki/server-ca.crt" -CAkey "$pki/server-ca.key" \
  -CAcreateserial -days 30 -extfile "$pki/server.ext" -out "$work/new.crt" 2>/dev/null
cp "$work/new.key" "$work/etc/tls/meshflow.key.new"
cp "$work/new.crt" "$work/etc/tls/meshflow.crt.new"
mv "$work/etc/tls/meshflow.key.new" "$work/etc/tls/meshflow.key"
mv "$work/etc/tls/meshflow.crt.new" "$work/etc/tls/meshflow.crt"
new_serial=
for _ in $(seq 1 40); do
  new_serial=$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -cert "$pki/client.crt" \
    -key "$pki/client.key" </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null || true)
  [[ -n $new_serial && $new_serial != "$old_serial" ]] && break
  sleep 0.25
done
[[ -n $new_serial && $new_serial != "$old_serial" ]] ||
  fail "the renewed certificate is not served ($old_serial -> $new_serial)"
echo "ok: renewed certificate served after a listener restart ($old_serial -> $new_serial)"
wait_for "scrape after the restart" 200 "${good[@]}" -u grafana-agent:n3w "$url"
grep -q 'listener restarted' "$work/exporter.log" || fail "no listener restart logged"
echo "tls_scrape_test: all checks passed"
