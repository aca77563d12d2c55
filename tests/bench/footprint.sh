#!/usr/bin/env bash
# Memory and CPU of an idle meshflow-exporter scraped every 5 s, beside the peers a node runs
# anyway, measured in the same run: prometheus-node-exporter and prometheus-smokeping-prober
# (Debian packages). Also the exporter behind TLS + bcrypt basic auth, to show what the web
# config costs. These figures size the DaemonSet's requests/limits and the unit's MemoryMax.
#   footprint.sh BUILD_DIR [SECONDS]      (default 120 s; loopback only)
set -euo pipefail
build=$1
seconds=${2:-120}
src=$(cd "$(dirname "$0")/../.." && pwd)
exporter=$(realpath "$build/exporter/meshflow-exporter")
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n ${KEEP:-} ]] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Default collectors (flow capture on the host's interfaces, probes, reflector), as deployed;
# the reflector on a free port so that it does not meet another test's.
reflector_port=$(free_port)
cat >"$work/meshflow.yml" <<YML
probes: {reflector: {enabled: true, port: $reflector_port}}
YML

"$src/tests/web/make_test_pki.sh" "$work/pki" >/dev/null
hash=$(python3 -W ignore -c 'import crypt; print(crypt.crypt("bench", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))')
cat >"$work/web.yml" <<YML
tls_server_config: {cert_file: $work/pki/server.crt, key_file: $work/pki/server.key}
basic_auth_users: {prometheus: '$hash'}
YML

declare -A port url curl_args
start() {  # name, url scheme, command...
  local name=$1 scheme=$2
  shift 2
  port[$name]=$(free_port)
  "$@" "${port[$name]}" >"$work/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
  url[$name]="$scheme://127.0.0.1:${port[$name]}/metrics"
}
meshflow() { exec "$exporter" --config.file="$work/meshflow.yml" --web.listen-address="127.0.0.1:$1"; }
meshflow_tls() {
  exec "$exporter" --config.file="$work/meshflow.yml" --no-collector.probe \
    --web.config.file="$work/web.yml" --web.listen-address="127.0.0.1:$1"
}
node_exporter() { exec prometheus-node-exporter --web.listen-address="127.0.0.1:$1"; }
smokeping() { exec prometheus-smokeping-prober --web.listen-address="127.0.0.1:$1" 127.0.0.1; }

start meshflow http meshflow
# The TLS one runs without the probe collector only to keep its reflector off the first's port.
start meshflow_tls https meshflow_tls
start node_exporter http node_exporter
start smokeping http smokeping
curl_args[meshflow_tls]="-k -u prometheus:bench"
sleep 2

cpu_seconds() {  # pid -> utime+stime in seconds
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
names=(meshflow meshflow_tls node_exporter smokeping)
declare -A cpu0
for n in "${names[@]}"; do
  p=pid_$n
  cpu0[$n]=$(cpu_seconds "${!p}")
done
# One scrape of each every 5 s, as Prometheus does.
rounds=$((seconds / 5))
bytes=()
for ((i = 0; i < rounds; i++)); do
  for n in "${names[@]}"; do
    # shellcheck disable=SC2086
    curl -s -o /dev/null ${curl_args[$n]:-} --max-time 4 "${url[$n]}" || true
  done
  sleep 5
done
declare -A rss hwm cpu
for n in "${names[@]}"; do
  p=pid_$n
  rss[$n]=$(awk '/^VmRSS/ {print $2}' "/proc/${!p}/status")
  hwm[$n]=$(awk '/^VmHWM/ {print $2}' "/proc/${!p}/status")
  cpu[$n]=$(awk -v a="$(cpu_seconds "${!p}")" -v b="${cpu0[$n]}" -v s="$((rounds * 5))" \
    'BEGIN {printf "%.3f", 100 * (a - b) / s}')
done
printf '%-16s %10s %13s %12s %12s %12s\n' what rss_kib peak_rss_kib cpu_percent \
  rss_vs_node cpu_vs_node
for n in "${names[@]}"; do
  printf '%-16s %10s %13s %12s %12s %12s\n' "$n" "${rss[$n]}" "${hwm[$n]}" "${cpu[$n]}" \
    "$(awk -v a="${rss[$n]}" -v b="${rss[node_exporter]}" 'BEGIN {printf "%.2fx", a / b}')" \
    "$(awk -v a="${cpu[$n]}" -v b="${cpu[node_exporter]}" \
      'BEGIN {if (b > 0) printf "%.2fx", a / b; else print "n/a"}')"
done
echo "(${rounds} scrapes each over $((rounds * 5)) s; rss ratio against node_exporter's;" \
  "cpu_percent of one core, scrapes included)"
