#!/usr/bin/env bash
# Response time of basic auth outcomes, to show that an unknown user costs what a wrong
# password costs (one bcrypt each, against a dummy hash for unknown users) and what the cache
# of accepted credentials saves a scraper. bcrypt cost 10, plain HTTP on loopback, 30 requests
# of each kind, interleaved so that load changes hit all kinds alike.
#   web_auth.sh BUILD_DIR
set -euo pipefail
exporter=$(realpath "$1/exporter/meshflow-exporter")
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
use_work
hash=$(python3 -W ignore -c 'import crypt; print(crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))')
printf "basic_auth_users:\n  alice: '%s'\n" "$hash" >"$work/web.yml"
"$exporter" --web.listen-address=127.0.0.1:0 --web.config.file="$work/web.yml" \
  --no-collector.flow --no-collector.probe >"$work/exporter.log" 2>&1 &
pids+=($!)
wait_for 10 bound_port "$work/exporter.log" 127.0.0.1 >/dev/null || fail "exporter did not start"
url=http://127.0.0.1:$(bound_port "$work/exporter.log" 127.0.0.1)/metrics
declare -A args=([unknown_user]="-u mallory:s3cret" [wrong_password]="-u alice:wrong"
  [right_password]="-u alice:s3cret" [no_credentials]="")
kinds=(unknown_user wrong_password right_password no_credentials)
for _ in $(seq 1 30); do
  for k in "${kinds[@]}"; do
    # shellcheck disable=SC2086
    curl -s -o /dev/null -w '%{time_total}\n' ${args[$k]} "$url" >>"$work/$k"
  done
done
printf '%-16s %10s %10s %10s\n' outcome median_ms p90_ms vs_wrong_pw
median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)] * 1000}'; }
p90() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int(NR*0.9)] * 1000}'; }
wrong=$(median "$work/wrong_password")
for k in "${kinds[@]}"; do
  m=$(median "$work/$k")
  printf '%-16s %10.2f %10.2f %10s\n' "$k" "$m" "$(p90 "$work/$k")" \
    "$(awk -v a="$m" -v b="$wrong" 'BEGIN {printf "%.2fx", a / b}')"
done
echo "(right_password: the first request pays a bcrypt, the rest hit the cache)"
