#!/usr/bin/env bash
# The dashboard linter must reject what it promises to: a hard-coded data source uid, a rate
# without $__rate_interval, a metric outside the contract, a query that does not parse.
set -euo pipefail
dashboards_dir=${1:?usage: lint_selftest.sh DASHBOARDS_DIR RECORDING_RULES [PROMTOOL]}
rules=${2:?}
promtool=${3:-promtool}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

check() {
  local what=$1 want=$2 mutation=$3
  rm -rf "$work/d" && cp -r "$dashboards_dir" "$work/d"
  python3 - "$work/d/meshflow-health.json" "$mutation" <<'PY'
import json, sys
path, mutation = sys.argv[1], sys.argv[2]
d = json.load(open(path))
panel = next(p for p in d["panels"] if p["type"] == "timeseries")
target = panel["targets"][0]
if mutation == "uid":
    panel["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
elif mutation == "range":
    target["expr"] = "rate(meshflow_capture_packets_total[5m])"
elif mutation == "metric":
    target["expr"] = "meshflow_capture_packets"
elif mutation == "parse":
    target["expr"] = "sum by (node (up)"
json.dump(d, open(path, "w"))
PY
  if "$here/lint_dashboards.py" "$work/d" "$rules" "$promtool" 2>"$work/err" >/dev/null; then
    echo "lint_selftest: passed although $what" >&2
    exit 1
  fi
  if ! grep -q -- "$want" "$work/err"; then
    echo "lint_selftest: $what, but the report lacks '$want':" >&2
    cat "$work/err" >&2
    exit 1
  fi
}

check "a panel names a data source uid" "hard-coded data source uid" uid
check "a rate has a fixed range" "should be \[\$__rate_interval\]" range
check "a query reads an unknown metric" "reads meshflow_capture_packets," metric
check "a query does not parse" "could not parse expression" parse
echo "lint_selftest: OK"
