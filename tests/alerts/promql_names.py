"""Metric names referenced by a PromQL expression, without a full parser.

Strings, label matchers, ranges, grouping clauses, numbers and Grafana variables are removed;
what is left that is an identifier, not a keyword and not called like a function, is a metric
name. That is enough for the expressions in this repository, and it errs on the side of
reporting too much, which makes a linter fail rather than pass silently.
"""

import os
import re

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARS = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_TOKEN = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "atan2",
}


def metric_names(expr):
    text = _STRINGS.sub(" ", expr)
    text = _GRAFANA_VARS.sub("1m", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _TOKEN.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def load_contract(path=None):
    path = path or os.path.join(os.path.dirname(__file__), "metric_contract.txt")
    names = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.add(line)
    return names
