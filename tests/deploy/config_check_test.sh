#!/usr/bin/env bash
# --config.check of both daemons: 0 and "ok" for the configs the package, the image and the
# manifests ship; 1 for broken files, with every broken file's error located (file, line,
# field), the config and the web config checked in one run; no socket opened.
#   config_check_test.sh EXPORTER GATEWAY SOURCE_DIR
set -euo pipefail
exporter=$1
gateway=$2
src=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

expect_ok() {  # expect_ok BINARY ARGS...
  "$@" >"$work/out" 2>&1 || { cat "$work/out" >&2; fail "$* exited $?"; }
}
expect_ok "$exporter" --config.check
for f in "$src/deploy/meshflow.yml" "$src/deploy/kubernetes/base/meshflow.yml" \
  "$src"/deploy/kubernetes/overlays/*/meshflow.yml; do
  expect_ok "$exporter" --config.check --config.file="$f"
  grep -qx "$f: ok" "$work/out" || fail "no 'ok' for $f"
done
for f in "$src/deploy/gateway.yml" "$src/deploy/kubernetes/base/gateway.yml"; do
  expect_ok "$gateway" --config.check --config.file="$f"
  grep -qx "$f: ok" "$work/out" || fail "no 'ok' for $f"
done
echo "ok: the shipped configs pass --config.check"

# Broken: a host-bits CIDR and a bad probe interval in the exporter config, a missing token file
# and a zero scrape interval in the gateway config, a web config with an unknown key and a
# plain-text password. Every error of both files in one run.
printf 'nodes:\n  - name: a\n    addresses: [100.64.0.3/24]\nprobes:\n  interval: fast\n' \
  >"$work/meshflow.yml"
printf 'targets:\n  push:\n    - {node: laptop, token_file: missing}\nscrape_interval: 0s\n' \
  >"$work/gateway.yml"
printf 'basic_auth_users:\n  prometheus: not-a-bcrypt-hash\ntls_server_config: {cert_fil: x}\n' \
  >"$work/web.yml"
check_bad() {  # check_bad BINARY CONFIG PATTERN
  local status=0
  "$1" --config.check --config.file="$2" --web.config.file="$work/web.yml" >"$work/out" 2>&1 ||
    status=$?
  [[ $status == 1 ]] || { cat "$work/out" >&2; fail "$(basename "$1") exited $status, expected 1"; }
  grep -q "$3" "$work/out" || { cat "$work/out" >&2; fail "$(basename "$1"): no located error for $2"; }
  grep -q "$work/web.yml:[0-9]*:[0-9]*: " "$work/out" ||
    { cat "$work/out" >&2; fail "$(basename "$1"): no located error for the web config"; }
  echo "ok: $(basename "$1") --config.check exits 1 and locates both errors:"
  sed 's/^/    /' "$work/out"
}
check_bad "$exporter" "$work/meshflow.yml" "$work/meshflow.yml:3:[0-9]*: field nodes\[0\].addresses\[0\]"
grep -q "$work/meshflow.yml:5:[0-9]*: field probes.interval" "$work/out" ||
  fail "the exporter's check stopped at the first error of its config"
grep -q "$work/web.yml:2:[0-9]*: field basic_auth_users.prometheus" "$work/out" ||
  fail "the check stopped at the first error of the web config"
check_bad "$gateway" "$work/gateway.yml" "$work/gateway.yml:3:[0-9]*: field targets.push\[0\].token_file"
grep -q "$work/gateway.yml:4:[0-9]*: field scrape_interval" "$work/out" ||
  fail "the gateway's check stopped at the first error of its config"
echo "config_check_test: all checks passed"
