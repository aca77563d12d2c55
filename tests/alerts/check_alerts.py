#!/usr/bin/env python3
"""Static checks on alerts/ that promtool and amtool do not make.

- every alert is named Meshflow<CamelCase>, has severity critical|warning|info, a summary, a
  templated description and a runbook_url pointing at its own section of alerts/runbooks.md;
- every runbook section exists, says what the alert means, how to confirm it and what to do,
  and no section is left for an alert that no longer exists;
- every variant of every alert (name and severity) has a unit test in which it fires, one
  in which it does not, and every alert has a test where nothing at all fires;
- on-demand nodes never page: no rule labelled on_demand is critical, and every critical
  rule excludes meshflow:on_demand_node:info;
- every metric a rule reads is in the metric contract or is a recording rule.

Usage: check_alerts.py ALERTS_DIR TESTS_DIR
"""

import glob
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import promql_names  # noqa: E402
from verdict import verdict  # noqa: E402

SEVERITIES = {"critical", "warning", "info"}
NAME = re.compile(r"^Meshflow[A-Z][A-Za-z0-9]*$")
RUNBOOK_BASE = "file:///usr/share/doc/meshflow/runbooks.md#"
# The recording rule that names on-demand nodes; every critical rule must exclude them.
ON_DEMAND_HELPER = "meshflow:on_demand_node:info"


def load_rules(alerts_dir):
    alerts, records = [], []
    for path in sorted(glob.glob(os.path.join(alerts_dir, "*_rules.yml"))):
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        for group in doc["groups"]:
            for rule in group["rules"]:
                rule["_file"] = os.path.basename(path)
                (alerts if "alert" in rule else records).append(rule)
    return alerts, records


def runbook_sections(path):
    sections, current = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("## "):
                current = line[3:].strip()
                sections[current] = ""
            elif current:
                sections[current] += line
    return sections


def load_tests(tests_dir):
    cases = []
    for path in sorted(glob.glob(os.path.join(tests_dir, "*_test.yml"))):
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        for test in doc.get("tests", []):
            for case in test.get("alert_rule_test", []) or []:
                severities = {a["exp_labels"].get("severity") for a in case.get("exp_alerts") or []}
                cases.append((case["alertname"], severities, os.path.basename(path)))
    return cases


def main():
    alerts_dir, tests_dir = sys.argv[1], sys.argv[2]
    errors = []
    alerts, records = load_rules(alerts_dir)
    if not alerts:
        errors.append("no alerting rules found")
    known = promql_names.load_contract() | {r["record"] for r in records}

    for rule in records:
        for name in sorted(promql_names.metric_names(rule["expr"]) - known):
            errors.append(f"record {rule['record']}: reads {name}, not in the metric contract")

    names = set()
    variants = set()
    for rule in alerts:
        name = rule["alert"]
        where = f"{rule['_file']}: {name}"
        names.add(name)
        severity = rule.get("labels", {}).get("severity")
        variants.add((name, severity))
        if not NAME.match(name):
            errors.append(f"{where}: name is not Meshflow<CamelCase>")
        if severity not in SEVERITIES:
            errors.append(f"{where}: severity {severity!r} not one of {sorted(SEVERITIES)}")
        ann = rule.get("annotations", {})
        if not ann.get("summary"):
            errors.append(f"{where}: no summary")
        if "{{" not in ann.get("description", ""):
            errors.append(f"{where}: description is missing or not templated")
        if ann.get("runbook_url") != RUNBOOK_BASE + name.lower():
            errors.append(f"{where}: runbook_url should be {RUNBOOK_BASE + name.lower()}")
        if rule.get("labels", {}).get("on_demand") == "true" and severity == "critical":
            errors.append(f"{where}: an on-demand variant must not be critical")
        if severity == "critical" and ON_DEMAND_HELPER not in rule["expr"]:
            errors.append(f"{where}: critical but does not exclude {ON_DEMAND_HELPER}")
        for metric in sorted(promql_names.metric_names(rule["expr"]) - known):
            errors.append(f"{where}: reads {metric}, not in the metric contract")

    sections = runbook_sections(os.path.join(alerts_dir, "runbooks.md"))
    for name in sorted(names):
        body = sections.get(name)
        if body is None:
            errors.append(f"runbooks.md: no section '## {name}'")
            continue
        for part in ("**Meaning.**", "**How to confirm.**", "**What to do.**"):
            if part not in body:
                errors.append(f"runbooks.md: section {name} lacks {part}")
    for title in sorted(set(sections) - names):
        errors.append(f"runbooks.md: section '{title}' has no alert")

    cases = load_tests(tests_dir)
    for name, severity in sorted(variants):
        mine = [c for c in cases if c[0] == name]
        if not any(severity in sev for _, sev, _ in mine):
            errors.append(f"{name} ({severity}): no unit test in which it fires")
        if not any(severity not in sev for _, sev, _ in mine):
            errors.append(f"{name} ({severity}): no unit test in which it stays quiet")
    for name in sorted(names):
        if not any(c[0] == name and not c[1] for c in cases):
            errors.append(f"{name}: no unit test in which nothing fires")
    for name in sorted({c[0] for c in cases} - names):
        errors.append(f"tests name alert {name}, which does not exist")

    return verdict("check_alerts", errors,
                   f"{len(variants)} alert variants of {len(names)} alerts, "
                   f"{len(records)} recording rules, {len(cases)} test cases: OK")


if __name__ == "__main__":
    sys.exit(main())
