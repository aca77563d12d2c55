#!/usr/bin/env python3
"""Generates meshflow's Grafana dashboards (the *.json files next to this script).

One script so that every panel is built the same way: the data source is always the
${datasource} variable (no uid is written anywhere), rates always use $__rate_interval, and
queries read the recording rules of alerts/recording_rules.yml where one exists, so a
dashboard shows exactly what the alerts judge.

    dashboards/generate.py            rewrite the JSON files
    dashboards/generate.py --check    exit 1 if a committed file differs from the output
    dashboards/generate.py --job-regex RE --out DIR
                                      a site's dashboards, for scrape jobs matching RE (the
                                      default, meshflow.*, is what the committed files use;
                                      alerts/render.py takes the same option for the rules)
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24

# Label selectors for the template variables. src_node is the node that measured or sent,
# dst_node the peer; "node" on exporter series is the target label the scrape config adds.
PAIR = 'src_node=~"$node", dst_node=~"$peer"'
PROBE = PAIR + ', method=~"$method"'
FLOW = PAIR + ', role=~"$role", kind="$kind"'
DEFAULT_JOB_REGEX = "meshflow.*"
JOB_REGEX = DEFAULT_JOB_REGEX  # set by --job-regex before the dashboards are built
SELF = 'job=~"meshflow.*", node=~"$node"'


# --- template variables ----------------------------------------------------------------------

def datasource_variable():
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        # Import replaces ${DS_PROMETHEUS} with the data source chosen for __inputs.
        "current": {"text": "${DS_PROMETHEUS}", "value": "${DS_PROMETHEUS}"},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def query_variable(name, label, query, multi=True):
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": query,
        "current": {"text": ["All"], "value": ["$__all"]} if multi else {},
        "multi": multi,
        "includeAll": multi,
        "refresh": 2,
        "sort": 1,
        "hide": 0,
        "regex": "",
        "options": [],
    }


def custom_variable(name, label, values, default):
    return {
        "name": name,
        "label": label,
        "type": "custom",
        "query": ",".join(values),
        "current": {"text": default, "value": default},
        "options": [{"text": v, "value": v, "selected": v == default} for v in values],
        "multi": False,
        "includeAll": False,
        "hide": 0,
    }


def kind_variable():
    # Bytes are summed within one interface kind so a packet crossing veth, cni0 and the
    # overlay is counted once.
    var = custom_variable("kind", "Interface kind", ["overlay", "underlay", "pod"], "overlay")
    var["description"] = "Count bytes seen on interfaces of this kind only"
    return var


# --- panels --------------------------------------------------------------------------------

def target(expr, legend="", ref="A", fmt="time_series", instant=False):
    t = {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "format": fmt,
        "refId": ref,
    }
    return t


def targets(*queries):
    """queries: (expr, legend) pairs or target dicts; refIds are assigned A, B, C..."""
    out = []
    for i, q in enumerate(queries):
        t = q if isinstance(q, dict) else target(*q)
        t["refId"] = chr(ord("A") + i)
        out.append(t)
    return out


def field_defaults(unit, extra=None):
    d = {"unit": unit, "color": {"mode": "palette-classic"}, "mappings": [],
         "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]}}
    d.update(extra or {})
    return d


def panel(kind, title, description, size, queries, defaults, options, overrides=None,
          transformations=None):
    """A data panel: what every panel carries, in Grafana's order; size is (width, height)."""
    p = {"type": kind, "title": title, "description": description, "datasource": DS,
         "targets": targets(*queries)}
    if transformations:
        p["transformations"] = transformations
    p["fieldConfig"] = {"defaults": defaults, "overrides": overrides or []}
    p["options"] = options
    p["_size"] = size
    return p


LAST_VALUE = {"calcs": ["lastNotNull"], "fields": "", "values": False}


def timeseries(title, description, queries, unit, stack=False, overrides=None, min_zero=True):
    custom = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 10 if stack else 0,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }
    defaults = field_defaults(unit, {"custom": custom})
    if min_zero:
        defaults["min"] = 0
    return panel("timeseries", title, description, (12, 8), queries, defaults, {
        "legend": {"showLegend": True, "displayMode": "table", "placement": "right",
                   "calcs": ["lastNotNull", "max"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }, overrides=overrides)


def matrix(title, description, expr, unit, thresholds):
    """A node-pair matrix: rows are the measuring node, columns the peer."""
    steps = [{"color": "green", "value": None}] + [
        {"color": color, "value": value} for value, color in thresholds]
    defaults = field_defaults(unit, {
        "custom": {"align": "center", "cellOptions": {"type": "color-background"},
                   "inspect": False},
        "thresholds": {"mode": "absolute", "steps": steps},
        "color": {"mode": "thresholds"},
        "decimals": 1,
    })
    return panel(
        "table", title, description, (8, 8), [target(expr, fmt="table", instant=True)], defaults,
        {"showHeader": True, "cellHeight": "sm", "frameIndex": 0},
        overrides=[{
            "matcher": {"id": "byName", "options": "src_node\\dst_node"},
            "properties": [{"id": "displayName", "value": "from \\ to"},
                           {"id": "custom.cellOptions", "value": {"type": "auto"}}],
        }],
        transformations=[{
            "id": "groupingToMatrix",
            "options": {"rowField": "src_node", "columnField": "dst_node",
                        "valueField": "Value", "emptyValue": "null"},
        }])


def table(title, description, expr, unit, sort_by="Value"):
    return panel(
        "table", title, description, (12, 8), [target(expr, fmt="table", instant=True)],
        field_defaults(unit, {"custom": {
            "align": "auto", "cellOptions": {"type": "auto"}, "inspect": False}}),
        {"showHeader": True, "cellHeight": "sm", "frameIndex": 0,
         "sortBy": [{"displayName": "value", "desc": True}]},
        transformations=[{"id": "organize", "options": {
            "excludeByName": {"Time": True}, "renameByName": {"Value": "value"}}}])


def heatmap(title, description, expr):
    return panel(
        "heatmap", title, description, (12, 8), [target(expr, legend="{{le}}", fmt="heatmap")],
        {"custom": {"hideFrom": {"legend": False, "tooltip": False, "viz": False}}}, {
            "calculate": False,
            "cellGap": 1,
            "showValue": "auto",
            "color": {"mode": "scheme", "scheme": "Oranges", "scale": "exponential",
                      "exponent": 0.5, "fill": "dark-orange", "steps": 64, "reverse": False},
            "yAxis": {"axisPlacement": "left", "unit": "s", "reverse": False},
            "rowsFrame": {"layout": "auto"},
            "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
            "legend": {"show": True},
            "exemplars": {"color": "rgba(255,0,255,0.7)"},
            "filterValues": {"le": 1e-9},
        })


def stat(title, description, queries, unit, mappings=None, thresholds=None):
    steps = [{"color": "green", "value": None}] + [
        {"color": c, "value": v} for v, c in (thresholds or [])]
    defaults = field_defaults(unit, {"mappings": mappings or [],
                                     "thresholds": {"mode": "absolute", "steps": steps},
                                     "color": {"mode": "thresholds"}})
    return panel("stat", title, description, (12, 6), queries, defaults, {
        "reduceOptions": LAST_VALUE,
        "colorMode": "background",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": "value_and_name",
        "wideLayout": True,
        "showPercentChange": False,
        "percentChangeColorMode": "standard",
    })


def bargauge(title, description, expr, legend, unit):
    return panel(
        "bargauge", title, description, (12, 8), [target(expr, legend=legend, instant=True)],
        field_defaults(unit, {"color": {"mode": "continuous-BlYlRd"}, "min": 0}), {
            "reduceOptions": LAST_VALUE,
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "auto",
            "sizing": "auto",
            "minVizHeight": 16,
            "minVizWidth": 8,
            "maxVizHeight": 300,
            "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom",
                       "calcs": []},
        })


def node_graph(title, description, nodes_expr, edges_expr, unit):
    # The node graph takes a frame with an id field (nodes) and one with id, source and target
    # (edges); the organize step gives the Prometheus table columns those names.
    return panel(
        "nodeGraph", title, description, (24, 12),
        [target(nodes_expr, fmt="table", instant=True),
         target(edges_expr, fmt="table", instant=True)],
        {"unit": unit}, {"nodes": {"mainStatUnit": unit}, "edges": {"mainStatUnit": unit}},
        transformations=[{"id": "organize", "options": {
            "excludeByName": {"Time": True},
            "renameByName": {"Value #A": "mainstat", "Value #B": "mainstat",
                             "src_node": "source", "dst_node": "target"}}}])


def repeat_per(variable, panel):
    """One copy of the panel per selected value of the variable, side by side."""
    panel.update({"repeat": variable, "repeatDirection": "h", "maxPerRow": 2})
    return panel


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_size": (24, 1)}


def negative_y(ref):
    return {"matcher": {"id": "byFrameRefID", "options": ref},
            "properties": [{"id": "custom.transform", "value": "negative-Y"}]}


# --- layout and dashboard ------------------------------------------------------------------

def layout(panels):
    """Places panels left to right, wrapping at the grid width; rows start a new line."""
    x = y = line_height = 0
    out = []
    for i, p in enumerate(panels, start=1):
        w, h = p.pop("_size")
        if p["type"] == "row" or x + w > GRID_WIDTH:
            x, y, line_height = 0, y + line_height, 0
        p["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        p["id"] = i
        x += w
        line_height = max(line_height, h)
        if p["type"] == "row":
            x, y, line_height = 0, y + h, 0
        out.append(p)
    return out


def dashboard(uid, title, description, variables, panels):
    panel_types = sorted({p["type"] for p in panels if p["type"] != "row"})
    return {
        "__inputs": [{
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes the meshflow exporters and evaluates "
                           "alerts/recording_rules.yml",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        ] + [{"type": "panel", "id": t, "name": t, "version": ""} for t in panel_types],
        "annotations": {"list": [{
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        }]},
        "description": description,
        "editable": True,
        "graphTooltip": 1,
        "links": [{"title": "meshflow", "type": "dashboards", "tags": ["meshflow"],
                   "asDropdown": True, "includeVars": True, "keepTime": True,
                   "icon": "external link", "targetBlank": False, "tooltip": "",
                   "url": ""}],
        "panels": layout(panels),
        "refresh": "30s",
        "schemaVersion": 39,
        "tags": ["meshflow"],
        "templating": {"list": [datasource_variable()] + variables},
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
    }


# --- the three dashboards ------------------------------------------------------------------

def overlay_mesh():
    variables = [
        query_variable("node", "Node", "label_values(meshflow_probe_sent_total, src_node)"),
        query_variable("peer", "Peer",
                       'label_values(meshflow_probe_sent_total{src_node=~"$node"}, dst_node)'),
        query_variable("method", "Method", "label_values(meshflow_probe_sent_total, method)"),
    ]
    rtt_thresholds = [(0.05, "yellow"), (0.15, "orange"), (0.3, "red")]
    panels = [
        row("Matrix: rows measure, columns answer"),
        matrix("RTT median", "Median probe RTT over 5 minutes, averaged over the selected "
               "methods (pair:meshflow_probe_rtt_seconds:quantile5m).",
               'avg by (src_node, dst_node) (pair:meshflow_probe_rtt_seconds:quantile5m'
               '{quantile="0.5", ' + PROBE + '})', "s", rtt_thresholds),
        matrix("RTT p95", "95th percentile probe RTT over 5 minutes.",
               'avg by (src_node, dst_node) (pair:meshflow_probe_rtt_seconds:quantile5m'
               '{quantile="0.95", ' + PROBE + '})', "s", rtt_thresholds),
        matrix("Loss", "Share of probes lost over 5 minutes; the lowest of the selected "
               "methods, as MeshflowOverlayPacketLoss judges it.",
               "min by (src_node, dst_node) (pair:meshflow_probe_loss:ratio_rate5m{"
               + PROBE + "})", "percentunit", [(0.01, "yellow"), (0.05, "orange"),
                                               (0.5, "red")]),
        row("Over time"),
        timeseries("RTT median and p95", "Per pair and method, from the recording rules.", [
            ('pair:meshflow_probe_rtt_seconds:quantile5m{quantile="0.5", ' + PROBE + "}",
             "{{src_node}} → {{dst_node}} {{method}} p50"),
            ('pair:meshflow_probe_rtt_seconds:quantile5m{quantile="0.95", ' + PROBE + "}",
             "{{src_node}} → {{dst_node}} {{method}} p95"),
        ], "s"),
        timeseries("RTT against baseline", "Current median over the median of the last day; "
                   "MeshflowRTTAboveBaseline fires above 2.", [
                       ("pair:meshflow_probe_rtt_seconds:ratio_to_baseline{" + PROBE + "}",
                        "{{src_node}} → {{dst_node}} {{method}}"),
                   ], "none"),
        repeat_per("peer", heatmap(
            "RTT distribution $node → $peer",
            "Probe RTT histogram over time, one panel per peer; pick one node for one pair "
            "(meshflow_probe_rtt_seconds, 50 µs to 10 s buckets).",
            "sum by (le) (rate(meshflow_probe_rtt_seconds_bucket{" + PROBE
            + "}[$__rate_interval]))")),
        timeseries("Loss", "Share of probes lost, 1 minute window.", [
            ("pair:meshflow_probe_loss:ratio_rate1m{" + PROBE + "}",
             "{{src_node}} → {{dst_node}} {{method}}"),
        ], "percentunit"),
        timeseries("Forward vs return loss (udp)",
                   "The udp reflector reports what it received, splitting loss into the way "
                   "out (up) and the way back (down).", [
                       ("pair:meshflow_probe_forward_loss:ratio_rate5m{" + PAIR + "}",
                        "{{src_node}} → {{dst_node}} forward"),
                       ("pair:meshflow_probe_return_loss:ratio_rate5m{" + PAIR + "}",
                        "{{src_node}} → {{dst_node}} return"),
                   ], "percentunit", overrides=[negative_y("B")], min_zero=False),
        timeseries("Jitter", "RFC 3550 inter-arrival jitter per pair and method.", [
            ("max by (src_node, dst_node, method) (meshflow_probe_jitter_seconds{" + PROBE
             + "})", "{{src_node}} → {{dst_node}} {{method}}"),
        ], "s"),
        row("Probe methods"),
        timeseries("Median RTT by method", "The same pairs measured by each method: ICMP, "
                   "meshflow's udp probe and TCP connect should agree within a few hundred µs.", [
                       ('avg by (method) (pair:meshflow_probe_rtt_seconds:quantile5m'
                        '{quantile="0.5", ' + PROBE + "})", "{{method}}"),
                   ], "s"),
        timeseries("Loss by method", "Loss that only one method sees points at that method "
                   "(ICMP rate limiting, a firewalled port), not the link.", [
                       ("avg by (method) (pair:meshflow_probe_loss:ratio_rate5m{" + PROBE + "})",
                        "{{method}}"),
                   ], "percentunit"),
        timeseries("Late, duplicate and reordered replies", "Replies after the deadline count "
                   "as late, not received.", [
                       ("sum by (method) (rate(meshflow_probe_late_total{" + PROBE
                        + "}[$__rate_interval]))", "late {{method}}"),
                       ("sum by (method) (rate(meshflow_probe_duplicates_total{" + PROBE
                        + "}[$__rate_interval]))", "duplicate {{method}}"),
                       ("sum by (method) (rate(meshflow_probe_reordered_total{" + PROBE
                        + "}[$__rate_interval]))", "reordered {{method}}"),
                   ], "pps"),
        timeseries("Probe errors and timestamp fallbacks", "Send errors by reason, and probes "
                   "timed with the monotonic clock because the kernel gave no timestamp.", [
                       ("sum by (method, reason) (rate(meshflow_probe_errors_total{" + PROBE
                        + "}[$__rate_interval]))", "{{method}} {{reason}}"),
                       ('sum by (method) (rate(meshflow_probe_timestamp_fallbacks_total{'
                        'method=~"$method"}[$__rate_interval]))', "fallback {{method}}"),
                   ], "pps"),
    ]
    return dashboard("meshflow-overlay-mesh", "meshflow / Overlay mesh",
                     "Round-trip time, loss and jitter between every pair of nodes, from "
                     "meshflow's active probes.", variables, panels)


def role_flows():
    variables = [
        query_variable("node", "Node", "label_values(meshflow_flow_bytes_total, src_node)"),
        query_variable("peer", "Peer", "label_values(meshflow_flow_bytes_total, dst_node)"),
        query_variable("role", "Role", "label_values(meshflow_flow_bytes_total, role)"),
        kind_variable(),
    ]
    bytes_rate = "pair:meshflow_flow_bytes:rate1m{" + FLOW + "}"
    reverse = ('pair:meshflow_flow_bytes:rate1m{src_node=~"$peer", dst_node=~"$node", '
               'role=~"$role", kind="$kind"}')
    panels = [
        row("Traffic"),
        timeseries("Bytes per second by role", "Every byte counted once: summed within the "
                   "selected interface kind and taken from the end that saw most of it.", [
                       ("sum by (role) (" + bytes_rate + ")", "{{role}}"),
                   ], "Bps", stack=True),
        timeseries("Bytes per second by node pair", "", [
            ("sum by (src_node, dst_node) (" + bytes_rate + ")",
             "{{src_node}} → {{dst_node}}"),
        ], "Bps", stack=True),
        timeseries("Per role between $node and $peer",
                   "Up: from the selected nodes to the selected peers (requests when the "
                   "nodes are the clients). Down: the way back (responses).", [
                       ("sum by (role) (" + bytes_rate + ")", "{{role}} out"),
                       ("sum by (role) (" + reverse + ")", "{{role}} back"),
                   ], "Bps", overrides=[negative_y("B")], min_zero=False),
        table("Bytes per second per pair and role", "Both directions of every pair, now.",
              "sum by (src_node, dst_node, role) (" + bytes_rate + ")", "Bps"),
        timeseries("Connection rate", "TCP connection attempts (SYN without ACK) per second; "
                   "src is the client.", [
                       ("sum by (src_node, dst_node, role) (pair:meshflow_flow_connections:rate1m{"
                        + FLOW + "})", "{{role}} {{src_node}} → {{dst_node}}"),
                   ], "cps"),
        bargauge("Top talkers", "The ten busiest pair and role combinations now.",
                 "topk(10, sum by (src_node, dst_node, role) (" + bytes_rate + "))",
                 "{{role}} {{src_node}} → {{dst_node}}", "Bps"),
        node_graph("Cluster traffic", "Nodes with their total traffic in and out; edges with "
                   "bytes per second from source to target, for the selected roles and kind.",
                   "sum by (id) (label_replace(" + bytes_rate
                   + ', "id", "$1", "src_node", "(.+)") or label_replace(' + bytes_rate
                   + ', "id", "$1", "dst_node", "(.+)"))',
                   'label_join(sum by (src_node, dst_node) (' + bytes_rate
                   + '), "id", " → ", "src_node", "dst_node")', "Bps"),
        row("Passive TCP health"),
        timeseries("TCP RTT per role (median)", "From real connections: handshake RTT, and "
                   "ongoing RTT from TCP timestamps. src is the client.", [
                       ('pair:meshflow_tcp_rtt_seconds:quantile5m{quantile="0.5", '
                        + PAIR + ', role=~"$role"}',
                        "{{role}} {{src_node}} → {{dst_node}} {{kind}}"),
                   ], "s"),
        timeseries("TCP RTT per role (p95)", "", [
            ('pair:meshflow_tcp_rtt_seconds:quantile5m{quantile="0.95", ' + PAIR
             + ', role=~"$role"}', "{{role}} {{src_node}} → {{dst_node}} {{kind}}"),
        ], "s"),
        timeseries("Retransmitted bytes per role", "Data segments whose sequence range was "
                   "already seen in that direction; src is the sender.", [
                       ("sum by (role) (pair:meshflow_tcp_retransmitted_bytes:rate1m{" + FLOW
                        + "})", "{{role}}"),
                   ], "Bps"),
        timeseries("Retransmission ratio per role", "Retransmitted bytes over all bytes of the "
                   "role.", [
                       ("sum by (role) (pair:meshflow_tcp_retransmitted_bytes:rate1m{" + FLOW
                        + "}) / sum by (role) (" + bytes_rate + " > 0)", "{{role}}"),
                   ], "percentunit"),
    ]
    return dashboard("meshflow-role-flows", "meshflow / Role flows",
                     "Which roles move how many bytes between which nodes, and how their TCP "
                     "connections fare, from captured packets.", variables, panels)


def health():
    variables = [
        query_variable("node", "Node", 'label_values(up{job=~' + json.dumps(JOB_REGEX) + '}, node)'),
    ]
    up_mapping = [{"type": "value", "options": {
        "0": {"text": "down", "color": "red", "index": 0},
        "1": {"text": "up", "color": "green", "index": 1}}}]
    panels = [
        row("Exporters"),
        stat("Exporter up", "Prometheus' scrape of each exporter.",
             [("up{" + SELF + "}", "{{node}}")], "none", up_mapping, [(1, "green")]),
        stat("Capture up", "Packet capture per interface.",
             [("meshflow_capture_up{" + SELF + "}", "{{node}} {{iface}}")], "none",
             up_mapping, [(1, "green")]),
        timeseries("Collector duration", "Time each collector takes per scrape.", [
            ("meshflow_collector_duration_seconds{" + SELF + "}", "{{node}} {{collector}}"),
        ], "s"),
        timeseries("Collector success", "0 when the collector failed on the last scrape; the "
                   "scrape itself still succeeds.", [
                       ("meshflow_collector_success{" + SELF + "}", "{{node}} {{collector}}"),
                   ], "none"),
        table("Config and build", "Last reload result and build of every exporter.",
              "max by (node, version, revision) (meshflow_build_info{" + SELF + "}) "
              "* on (node) group_left () max by (node) "
              "(meshflow_config_last_reload_successful{" + SELF + "})", "none"),
        timeseries("Scrape duration", "How long Prometheus takes to scrape each exporter; "
                   "over the 5 s interval means missed scrapes.", [
                       ("scrape_duration_seconds{" + SELF + "}", "{{node}}"),
                   ], "s"),
        row("Capture"),
        timeseries("Captured packets", "", [
            ("sum by (node, iface) (rate(meshflow_capture_packets_total{" + SELF
             + "}[$__rate_interval]))", "{{node}} {{iface}}"),
        ], "pps"),
        timeseries("Dropped packets", "kernel: the capture ring overflowed; interface: the NIC "
                   "dropped them.", [
                       ("sum by (node, iface, where) (rate(meshflow_capture_dropped_packets_total{"
                        + SELF + "}[$__rate_interval]))", "{{node}} {{iface}} {{where}}"),
                   ], "pps"),
        timeseries("Decode errors", "Packets that could not be decoded, by reason.", [
            ("sum by (node, iface, reason) (rate(meshflow_capture_decode_errors_total{" + SELF
             + "}[$__rate_interval]))", "{{node}} {{iface}} {{reason}}"),
        ], "pps"),
        timeseries("Encapsulation overhead", "Outer headers of decapsulated VXLAN, counted "
                   "apart from the inner traffic.", [
                       ("sum by (node, iface, encap) (rate(meshflow_encap_overhead_bytes_total{"
                        + SELF + "}[$__rate_interval]))", "{{node}} {{iface}} {{encap}}"),
                   ], "Bps"),
        row("Bounds"),
        timeseries("Flow series against the bound", "flows.max_series: past it new flows fold "
                   "into the overflow series.", [
                       ("meshflow_flow_series{" + SELF + "}", "{{node}} series"),
                       ("meshflow_flow_series_limit{" + SELF + "}", "{{node}} limit"),
                   ], "none"),
        timeseries("Overflowing flows and evictions", "", [
            ("rate(meshflow_flow_series_overflow_total{" + SELF + "}[$__rate_interval])",
             "{{node}} folded into overflow"),
            ("rate(meshflow_tcp_connection_table_evictions_total{" + SELF
             + "}[$__rate_interval])", "{{node}} TCP table evictions"),
        ], "ops"),
        timeseries("TCP connection table", "Connections tracked for passive RTT.", [
            ("meshflow_tcp_connection_table_entries{" + SELF + "}", "{{node}}"),
        ], "none"),
        row("Resources"),
        timeseries("CPU", "Share of one core used by each exporter.", [
            ("rate(process_cpu_seconds_total{" + SELF + "}[$__rate_interval])", "{{node}}"),
        ], "percentunit"),
        timeseries("Resident memory", "", [
            ("process_resident_memory_bytes{" + SELF + "}", "{{node}}"),
        ], "bytes"),
        timeseries("Open file descriptors", "", [
            ("process_open_fds{" + SELF + "}", "{{node}} open"),
            ("process_max_fds{" + SELF + "}", "{{node}} limit"),
        ], "none"),
        timeseries("Uptime", "", [
            ("time() - process_start_time_seconds{" + SELF + "}", "{{node}}"),
        ], "s"),
        row("Gateway"),
        stat("Gateway targets up", "Nodes the gateway reaches, by how (scrape or push).",
             [('meshflow_gateway_target_up{node=~"$node"}', "{{node}} {{source}}")], "none",
             up_mapping, [(1, "green")]),
        timeseries("Gateway scrape duration and push age", "", [
            ('meshflow_gateway_scrape_duration_seconds{node=~"$node"}', "{{node}} scrape"),
            ('time() - meshflow_gateway_last_push_timestamp_seconds{node=~"$node"}',
             "{{node}} since last push"),
        ], "s"),
        timeseries("Rejected pushes", "By reason: malformed, oversized, bad token, wrong node.",
                   [("sum by (reason) (rate(meshflow_gateway_push_rejected_total"
                     "[$__rate_interval]))", "{{reason}}")], "ops"),
    ]
    return dashboard("meshflow-health", "meshflow / Health",
                     "Is meshflow itself measuring: exporters, capture, bounds, resources.",
                     variables, panels)


DASHBOARDS = {
    "overlay-mesh.json": overlay_mesh,
    "role-flows.json": role_flows,
    "meshflow-health.json": health,
}


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main():
    global JOB_REGEX, SELF
    parser = argparse.ArgumentParser(description="Generates meshflow's Grafana dashboards.")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a committed file differs from the output")
    parser.add_argument("--job-regex", default=DEFAULT_JOB_REGEX,
                        help="the scrape jobs of meshflow exporters (default: %(default)s)")
    parser.add_argument("--out", default=HERE, help="folder to write to (default: this one)")
    args = parser.parse_args()
    if args.check and (args.job_regex != DEFAULT_JOB_REGEX or args.out != HERE):
        parser.error("--check takes no other option")
    JOB_REGEX = args.job_regex
    SELF = "job=~" + json.dumps(JOB_REGEX) + ', node=~"$node"'
    check = args.check
    os.makedirs(args.out, exist_ok=True)
    stale = []
    for name, build in DASHBOARDS.items():
        path = os.path.join(args.out, name)
        text = render(build)
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() != text:
                        stale.append(name)
            except FileNotFoundError:
                stale.append(name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if stale:
        print("generate.py: out of date, run dashboards/generate.py: " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
