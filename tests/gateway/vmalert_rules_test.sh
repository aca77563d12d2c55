#!/usr/bin/env bash
# The bundled rules in vmalert, the ruler of a VictoriaMetrics remote store: `vmalert -dryRun`
# parses every group and checks every expression as MetricsQL. Debian 12's vmalert (1.79)
# predates `keep_firing_for` (Prometheus 2.42), so the rules are checked once as they are,
# expecting that field to be the only complaint, and once without it, expecting no complaint.
#   vmalert_rules_test.sh ALERTS_DIR
set -euo pipefail
alerts=${1:?usage: $0 ALERTS_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rules=("$alerts"/*_rules.yml)
args=()
for r in "${rules[@]}"; do args+=("-rule=$r"); done
if vmalert -dryRun "${args[@]}" >"$work/as-is.log" 2>&1; then
  echo "ok: vmalert -dryRun takes ${rules[*]} as they are"
else
  complaints=$(grep -o 'unknown fields in rule: [a-z_, ]*' "$work/as-is.log" | sort -u)
  uses=$(cat "${rules[@]}" | grep -c '^[[:space:]]*keep_firing_for:' || true)
  if [[ $complaints != "unknown fields in rule: keep_firing_for" ]]; then
    cat "$work/as-is.log" >&2
    echo "FAIL: vmalert refuses the rules for more than keep_firing_for" >&2
    exit 1
  fi
  echo "ok: vmalert $(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null) refuses only keep_firing_for ($uses alerts set it)"
  stripped=()
  for r in "${rules[@]}"; do
    grep -v '^[[:space:]]*keep_firing_for:' "$r" >"$work/$(basename "$r")"
    stripped+=("-rule=$work/$(basename "$r")")
  done
  vmalert -dryRun "${stripped[@]}" >"$work/stripped.log" 2>&1 || {
    cat "$work/stripped.log" >&2
    echo "FAIL: vmalert -dryRun refuses the rules even without keep_firing_for" >&2
    exit 1
  }
  echo "ok: without keep_firing_for every group and expression passes vmalert -dryRun"
fi
