#!/usr/bin/env bash
# The coverage check must fail when an alert has no unit test, no runbook section, or a
# critical variant that could page for an on-demand node. Runs it on broken copies.
set -euo pipefail
alerts_dir=${1:?usage: check_alerts_selftest.sh ALERTS_DIR TESTS_DIR}
tests_dir=${2:?}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp -r "$alerts_dir" "$work/alerts"
cp -r "$tests_dir" "$work/tests"
"$here/check_alerts.py" "$work/alerts" "$work/tests" >/dev/null

expect_failure() {
  local what=$1 pattern=$2
  if "$here/check_alerts.py" "$work/alerts" "$work/tests" 2>"$work/err" >/dev/null; then
    echo "check_alerts_selftest: passed although $what" >&2
    exit 1
  fi
  if ! grep -q -- "$pattern" "$work/err"; then
    echo "check_alerts_selftest: $what, but the report lacks '$pattern':" >&2
    cat "$work/err" >&2
    exit 1
  fi
}

# An alert with a runbook section but no test.
cat >>"$work/alerts/alerting_rules.yml" <<'YAML'
  - name: selftest
    rules:
      - alert: MeshflowSelftestUntested
        expr: vector(1)
        labels:
          severity: warning
        annotations:
          summary: s
          description: "{{ $value }}"
          runbook_url: file:///usr/share/doc/meshflow/runbooks.md#meshflowselftestuntested
YAML
printf '\n## MeshflowSelftestUntested\n\n**Meaning.** x\n**How to confirm.** x\n**What to do.** x\n' \
  >>"$work/alerts/runbooks.md"
expect_failure "an alert has no test" "MeshflowSelftestUntested (warning): no unit test in which it fires"

# The same alert, critical and without the on-demand exclusion, and without a runbook.
cp "$alerts_dir/runbooks.md" "$work/alerts/runbooks.md"
sed -i 's/severity: warning$/severity: critical/' "$work/alerts/alerting_rules.yml"
expect_failure "a critical alert ignores on-demand nodes" "does not exclude meshflow:on_demand_node:info"
expect_failure "an alert has no runbook section" "no section '## MeshflowSelftestUntested'"

# A rule reading a metric outside the contract.
cp "$alerts_dir/alerting_rules.yml" "$work/alerts/alerting_rules.yml"
sed -i 's/expr: meshflow_capture_up == 0/expr: meshflow_capture_upp == 0/' "$work/alerts/alerting_rules.yml"
expect_failure "a rule reads an unknown metric" "reads meshflow_capture_upp"

echo "check_alerts_selftest: OK"
