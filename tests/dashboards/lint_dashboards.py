#!/usr/bin/env python3
"""Lints the Grafana dashboards in dashboards/ beyond what Grafana's schema says.

- importable: an __inputs entry for a Prometheus data source, a `datasource` variable, and no
  data source uid written anywhere: every panel and query uses ${datasource};
- template variables node and peer (and role where flows are shown);
- every range in a query is [$__rate_interval];
- every metric a query or variable reads is in the metric contract or is a recording rule of
  alerts/recording_rules.yml, and every query parses (promtool check rules on a rule file made
  of the queries, variables filled in);
- the panels the dashboards promise exist (titles below).

Usage: lint_dashboards.py DASHBOARDS_DIR RECORDING_RULES_YML [PROMTOOL]
"""

import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "alerts"))
import promql_names  # noqa: E402

DATASOURCE = "${datasource}"
# Per dashboard file: template variables it must have, and panel titles (prefixes) it must show.
REQUIRED = {
    "overlay-mesh.json": {
        "variables": ["node", "peer"],
        "panels": ["RTT median", "RTT p95", "Loss", "Jitter", "RTT distribution",
                   "Forward vs return loss", "Median RTT by method", "Loss by method"],
    },
    "role-flows.json": {
        "variables": ["node", "peer", "role"],
        "panels": ["Bytes per second by role", "Bytes per second by node pair",
                   "Per role between", "Connection rate", "TCP RTT per role",
                   "Retransmitted bytes per role", "Top talkers", "Cluster traffic"],
    },
    "meshflow-health.json": {
        "variables": ["node"],
        "panels": ["Capture up", "Dropped packets", "Decode errors", "Collector duration",
                   "Flow series against the bound", "CPU", "Resident memory"],
    },
}
RANGE = re.compile(r"\[([^\[\]]*)\]")
LABEL_VALUES = re.compile(r"label_values\((.*),\s*\w+\)\s*$")


def walk(node, path=""):
    """Yields (path, key, value) for every dict entry in a JSON tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield path, k, v
            yield from walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}/{i}")


def is_variable(value):
    return isinstance(value, str) and value.startswith("$")


def lint(path, known, exprs):
    errors = []
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        d = json.load(f)

    inputs = d.get("__inputs", [])
    if not any(i.get("type") == "datasource" and i.get("pluginId") == "prometheus"
               for i in inputs):
        errors.append("no Prometheus data source in __inputs")
    variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
    ds_var = variables.get("datasource")
    if not ds_var or ds_var.get("type") != "datasource" or ds_var.get("query") != "prometheus":
        errors.append("no `datasource` variable of type datasource for prometheus")
    for var in REQUIRED.get(name, {}).get("variables", []):
        if var not in variables:
            errors.append(f"no template variable {var}")

    for where, key, value in walk(d):
        if key == "datasource" and isinstance(value, dict):
            uid = value.get("uid")
            builtin = value.get("type") == "grafana" and where.startswith("/annotations")
            if uid is not None and not is_variable(uid) and not builtin:
                errors.append(f"{where}: hard-coded data source uid {uid!r}")
        if key == "datasource" and isinstance(value, str) and not is_variable(value):
            errors.append(f"{where}: data source by name {value!r}")

    for var in variables.values():
        if var.get("type") == "query":
            if (var.get("datasource") or {}).get("uid") != DATASOURCE:
                errors.append(f"variable {var['name']}: data source is not {DATASOURCE}")
            m = LABEL_VALUES.match(var.get("query", ""))
            if not m:
                errors.append(f"variable {var['name']}: query is not label_values(...)")
            else:
                exprs.append((f"{name} variable {var['name']}", m.group(1)))

    panels = []
    for p in d.get("panels", []):
        panels.append(p)
        panels.extend(p.get("panels", []) if p.get("type") == "row" else [])
    titles = [p.get("title", "") for p in panels]
    ids = [p.get("id") for p in panels]
    if len(set(ids)) != len(ids):
        errors.append("panel ids are not unique")
    for title in REQUIRED.get(name, {}).get("panels", []):
        if not any(t.startswith(title) for t in titles):
            errors.append(f"no panel titled {title!r}")

    for p in panels:
        if p.get("type") == "row":
            continue
        where = f"panel {p.get('id')} {p.get('title')!r}"
        grid = p.get("gridPos", {})
        if grid.get("x", 0) + grid.get("w", 0) > 24:
            errors.append(f"{where}: wider than the grid")
        if (p.get("datasource") or {}).get("uid") != DATASOURCE:
            errors.append(f"{where}: panel data source is not {DATASOURCE}")
        if not p.get("targets"):
            errors.append(f"{where}: no queries")
        for t in p.get("targets", []):
            expr = t.get("expr", "")
            twhere = f"{where} query {t.get('refId')}"
            if (t.get("datasource") or {}).get("uid") != DATASOURCE:
                errors.append(f"{twhere}: data source is not {DATASOURCE}")
            for r in RANGE.findall(expr):
                if r != "$__rate_interval":
                    errors.append(f"{twhere}: range [{r}] should be [$__rate_interval]")
            exprs.append((f"{name} {twhere}", expr))
            for metric in sorted(promql_names.metric_names(expr) - known):
                errors.append(f"{twhere}: reads {metric}, not in the metric contract "
                              "or the recording rules")
    return [f"{name}: {e}" for e in errors], len(panels)


def parse_with_promtool(promtool, exprs):
    """promtool parses each query as a recording rule; returns its complaints."""
    rules = [{"record": f"dashboard_query_{i}",
              "expr": expr.replace("$__rate_interval", "1m")}
             for i, (_, expr) in enumerate(exprs)]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, f)
        path = f.name
    try:
        out = subprocess.run([promtool, "check", "rules", path], capture_output=True,
                             text=True, check=False)
    finally:
        os.unlink(path)
    if out.returncode == 0:
        return []
    errors = []
    for line in (out.stdout + out.stderr).splitlines():
        m = re.search(r"rule (\d+),", line)
        errors.append(f"{exprs[int(m.group(1)) - 1][0]}: {line.strip()}" if m else line)
    return errors


def main():
    dashboards_dir, recording_rules = sys.argv[1], sys.argv[2]
    promtool = sys.argv[3] if len(sys.argv) > 3 else "promtool"
    with open(recording_rules, encoding="utf-8") as f:
        records = {r["record"] for g in yaml.safe_load(f)["groups"] for r in g["rules"]
                   if "record" in r}
    known = promql_names.load_contract() | records
    errors, exprs, panels = [], [], 0
    files = sorted(f for f in os.listdir(dashboards_dir) if f.endswith(".json"))
    for name in sorted(set(REQUIRED) - set(files)):
        errors.append(f"{name}: missing")
    for name in files:
        e, n = lint(os.path.join(dashboards_dir, name), known, exprs)
        errors += e
        panels += n
    errors += parse_with_promtool(promtool, exprs)
    for e in errors:
        print("lint_dashboards:", e, file=sys.stderr)
    if errors:
        return 1
    print(f"lint_dashboards: {len(files)} dashboards, {panels} panels, {len(exprs)} queries OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
