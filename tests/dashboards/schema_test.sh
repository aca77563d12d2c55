#!/usr/bin/env bash
# Checks dashboards/*.json against Grafana's published schema (@grafana/schema), with the
# packages pinned by package-lock.json installed by `npm ci` into a work directory (by default
# a temporary one; pass one to reuse it), then checks that a broken copy is rejected.
set -euo pipefail
dashboards_dir=$(cd "${1:?usage: schema_test.sh DASHBOARDS_DIR [WORK_DIR]}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
if [[ -n "${2:-}" ]]; then
  work=$2
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi

cp "$here/package.json" "$here/package-lock.json" "$here/check_schema.mjs" "$work/"
(cd "$work" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

node "$work/check_schema.mjs" "$dashboards_dir"

# A misspelt panel option and a variable with an unknown field must be reported.
mkdir -p "$work/broken"
python3 - "$dashboards_dir/overlay-mesh.json" "$work/broken/overlay-mesh.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
panel = next(p for p in d["panels"] if p["type"] == "timeseries")
panel["options"]["legnd"] = panel["options"].pop("legend")
d["templating"]["list"][1]["refreshEvery"] = 5
json.dump(d, open(sys.argv[2], "w"))
PY
if node "$work/check_schema.mjs" "$work/broken" 2>"$work/err" >/dev/null; then
  echo "schema_test: a broken dashboard passed the schema check" >&2
  exit 1
fi
for want in "legnd" "refreshEvery"; do
  if ! grep -q "$want" "$work/err"; then
    echo "schema_test: the schema check did not report '$want':" >&2
    cat "$work/err" >&2
    exit 1
  fi
done
echo "schema_test: broken copy rejected as expected"
