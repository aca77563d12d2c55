#!/usr/bin/env python3
"""End to end on the network test bed: real exporters on every node, a real Prometheus
evaluating alerts/*_rules.yml, a real Alertmanager routing with alerts/alertmanager.yml to a
webhook receiver, all inside the control-plane node's namespace.

1. Every recording rule and every dashboard query is evaluated through Prometheus' HTTP API
   and must return data; what has none yet (degraded links, retransmissions) is checked again
   during the fault.
   meshflow-gateway runs beside Prometheus: one node is scraped through its /proxy, one node
   pushes to it, and one push with a wrong token is sent, so the gateway panels have data.
   Counters that only appear with their first event (probe errors) are reported as not
   exercised when no exporter has them at all.
2. A link is cut: MeshflowPeerUnreachable must reach the pager; the time from the cut to the
   page is printed. Loss is raised on another link: MeshflowOverlayPacketLoss must reach chat
   at warning.
3. Both are restored: both alerts must resolve (resolved notifications on the same receivers).

The rules run with their expressions unchanged, but every for: and keep_firing_for: is capped
(and 5m rate windows are shortened to 1m) so the test takes minutes, not half an hour; their
full durations are covered by the promtool unit tests. The page path uses the production
durations, which are already short: for: 30s over a 30s window, and a 10s group_wait.

Usage (root): testbed_e2e.py --build-dir DIR [--instance mfalerts]
Exit 77 (skipped) without root or without the binaries.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
TESTBED = os.path.join(REPO, "tests", "testbed")
PLACEHOLDER = "http://alert-webhook.example:8080"
PROM_PORT, AM_PORT, HOOK_PORT = 19090, 19093, 19095  # inside the node's own namespace
GATEWAY_PORT, PUSHER_PORT = 9475, 19474
PROM_NODE = "ct-serv-jp"  # where the reference cluster runs Prometheus
PROXIED = "desktop-agent"  # scraped through the gateway's /proxy
PUSHER = "laptop-agent"  # a second exporter there pushes its own metrics to the gateway
CUT = ("ct-serv-jp", "acer-agent")  # fixed nodes at both ends: must page
LOSSY = ("gce-agent-tw", "acer-agent")  # not the control-plane link: a plain loss warning
LOSS = "40%"
FOR_CAP, KEEP_FIRING_CAP = 30, 15  # seconds
# Series that exist only while something is wrong; checked during the fault instead.
DURING_FAULT = {"pair:meshflow_link:degraded"}
# Counters an exporter creates with the first event they count (a label names the reason).
EVENT_ONLY = {"meshflow_probe_errors_total"}
# Variable values for dashboard queries, as Grafana would fill them with "All".
VARIABLES = {"$__rate_interval": "1m", "$node": ".*", "$peer": ".*", "$role": ".*",
             "$method": ".*", "$kind": "overlay"}


def log(msg):
    print(f"testbed_e2e: {msg}", flush=True)


def duration_seconds(text):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    total = 0.0
    for value, unit in re.findall(r"(\d+)(ms|s|m|h|d)", text):
        total += int(value) * units[unit]
    return total


def scaled_rules(src, dst):
    """Copies a rule file with for:/keep_firing_for: capped and [5m] windows made [1m]."""
    with open(src, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    for group in doc["groups"]:
        group["interval"] = "5s"
        for rule in group["rules"]:
            rule["expr"] = rule["expr"].replace("[5m]", "[1m]")
            if "for" in rule and duration_seconds(rule["for"]) > FOR_CAP:
                rule["for"] = f"{FOR_CAP}s"
            if "keep_firing_for" in rule and duration_seconds(rule["keep_firing_for"]) > KEEP_FIRING_CAP:
                rule["keep_firing_for"] = f"{KEEP_FIRING_CAP}s"
    with open(dst, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return doc


class Testbed:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.run_dir = os.path.join(work, "testbed")
        self.env = dict(os.environ, MF_TESTBED_RUN_DIR=self.run_dir,
                        MESHFLOW_BUILD_DIR=args.build_dir)
        self.ctl_path = os.path.join(args.build_dir, "tests/testbed/meshflow-overlay-ctl")
        self.procs = []
        self.nodes = {}

    def up(self):
        cmd = [os.path.join(TESTBED, "up"), "--instance", self.args.instance, "--skip",
               "prometheus", "--require-exporter", "--traffic-duration", "900"]
        subprocess.run(cmd, env=self.env, check=True)
        with open(os.path.join(self.run_dir, "nodes"), encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if parts and parts[0] == "node":
                    fields = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
                    self.nodes[parts[1]] = fields["ipv4"]

    def down(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run([os.path.join(TESTBED, "down"), "--instance", self.args.instance],
                       env=self.env, check=False)

    def ns(self, node):
        return f"{self.args.instance}-{node}"

    def spawn(self, node, name, cmd):
        logf = open(os.path.join(self.work, f"{name}.log"), "w", encoding="utf-8")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(node)] + cmd,
                             stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def ctl(self, *words):
        subprocess.run([self.ctl_path, "--socket", os.path.join(self.run_dir, "overlay.sock")]
                       + list(words), check=True, stdout=subprocess.DEVNULL)

    def http(self, node, url, data=None):
        cmd = ["ip", "netns", "exec", self.ns(node), "curl", "-sf", "-m", "10", url]
        if data is not None:
            cmd += ["--data-urlencode", data]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            return None
        return json.loads(out.stdout)

    def query(self, expr):
        """Instant query; returns the result list, or raises with Prometheus' error."""
        resp = self.http(PROM_NODE, f"http://127.0.0.1:{PROM_PORT}/api/v1/query",
                         data="query=" + expr)
        if resp is None:
            # curl -f hides the body of a 400; ask again without it to get the error text.
            out = subprocess.run(
                ["ip", "netns", "exec", self.ns(PROM_NODE), "curl", "-s", "-m", "10",
                 f"http://127.0.0.1:{PROM_PORT}/api/v1/query", "--data-urlencode",
                 "query=" + expr], capture_output=True, text=True, check=False)
            raise ValueError(out.stdout.strip() or "no answer")
        return resp["data"]["result"]


def wait_until(what, check, seconds, interval=2.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise RuntimeError(f"{what}: not within {seconds:.0f} s")


def dashboard_queries():
    out = []
    for name in sorted(os.listdir(os.path.join(REPO, "dashboards"))):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(REPO, "dashboards", name), encoding="utf-8") as f:
            d = json.load(f)
        panels = []
        for p in d["panels"]:
            panels.append(p)
            panels.extend(p.get("panels", []))
        for var in d["templating"]["list"]:
            m = re.match(r"label_values\((.*),\s*\w+\)$", str(var.get("query", "")))
            if m:
                out.append((f"{name} variable {var['name']}", fill(m.group(1))))
        for p in panels:
            for t in p.get("targets", []):
                out.append((f"{name} panel {p['title']!r} {t['refId']}", fill(t["expr"])))
    return out


def fill(expr):
    for k, v in VARIABLES.items():
        expr = expr.replace(k, v)
    return expr


def notifications(path):
    got = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                n = json.loads(line)
                for a in n["body"]["alerts"]:
                    got.append((n["received"], n["path"], a["status"], a["labels"]))
    return got


def find(path, receiver, status, alertname, **labels):
    for received, where, st, lab in notifications(path):
        if (where == receiver and st == status and lab.get("alertname") == alertname
                and all(lab.get(k) == v for k, v in labels.items())):
            return received
    return None


def log_rule_cost(bed):
    """Prints how long each rule group took at its last evaluation, from Prometheus itself."""
    out = subprocess.run(["ip", "netns", "exec", bed.ns(PROM_NODE), "curl", "-s", "-m", "5",
                          f"http://127.0.0.1:{PROM_PORT}/metrics"],
                         capture_output=True, text=True, check=False).stdout
    costs = re.findall(r'prometheus_rule_group_last_duration_seconds\{rule_group="[^"]*;'
                       r'([^"]+)"\} (\S+)', out)
    if costs:
        log("rule group evaluation on %d nodes: %s" % (len(bed.nodes), ", ".join(
            f"{group} {float(seconds) * 1000:.1f} ms" for group, seconds in costs)))


def start_gateway(bed, work, gateway):
    """meshflow-gateway in the Prometheus node's namespace, with a static target (the proxied
    node) and a push node whose second, push-only exporter runs on PUSHER."""
    token = os.path.join(work, "push.token")
    with open(token, "w", encoding="utf-8") as f:
        f.write("e2e-push-token-0123456789abcdef\n")
    os.chmod(token, 0o600)
    config = {"targets": {
        "static": [{"node": PROXIED,
                    "url": f"http://{bed.nodes[PROXIED]}:9474/metrics"}],
        "push": [{"node": PUSHER, "token_file": token}]}}
    with open(os.path.join(work, "gateway.yml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f)
    bed.spawn(PROM_NODE, "gateway", [
        os.path.join(bed.args.build_dir, "gateway/meshflow-gateway"),
        "--config.file", os.path.join(work, "gateway.yml"), "--web.listen-address", gateway])
    wait_until("gateway ready", lambda: bed.http(PROM_NODE, f"http://{gateway}/targets"), 30, 1)
    pusher_config = os.path.join(work, "pusher.yml")
    with open(pusher_config, "w", encoding="utf-8") as f:
        f.write(f"node_name: {PUSHER}\n")
    bed.spawn(PUSHER, "pusher", [
        os.path.join(bed.args.build_dir, "exporter/meshflow-exporter"),
        "--config.file", pusher_config, "--no-collector.flow", "--no-collector.probe",
        "--web.listen-address", f"127.0.0.1:{PUSHER_PORT}",
        "--push.url", f"http://{gateway}/push", "--push.token-file", token,
        "--push.interval", "5s"])
    # One push with a wrong token, as a misconfigured node would send: it must be refused.
    out = subprocess.run(
        ["ip", "netns", "exec", bed.ns(PUSHER), "curl", "-s", "-o", "/dev/null", "-w",
         "%{http_code}", "-m", "5", "-X", "POST", "-H", "Authorization: Bearer wrong",
         "--data-binary", "up 1\n", f"http://{gateway}/push?node={PUSHER}"],
        capture_output=True, text=True, check=False)
    if out.stdout.strip() in ("200", "202", "204"):
        raise RuntimeError(f"the gateway accepted a push with a wrong token ({out.stdout})")
    log(f"gateway at {gateway}: {PROXIED} scraped through /proxy, {PUSHER} pushes; "
        f"a wrong token got HTTP {out.stdout.strip()}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--instance", default="mfalerts")
    parser.add_argument("--keep", action="store_true", help="leave the work directory")
    args = parser.parse_args()
    if os.geteuid() != 0:
        log("skipped: needs root for network namespaces")
        return 77
    binaries = ["exporter/meshflow-exporter", "gateway/meshflow-gateway",
                "tests/testbed/meshflow-overlay-emulator", "tests/testbed/meshflow-overlay-ctl"]
    missing = [b for b in binaries if not os.access(os.path.join(args.build_dir, b), os.X_OK)]
    tools = [t for t in ("prometheus", "promtool") if not shutil.which(t)]
    am_bin = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if missing or tools or not am_bin:
        log(f"skipped: missing {missing + tools + ([] if am_bin else ['alertmanager'])}")
        return 77

    # A fixed work directory per instance: when a run is killed (a ctest timeout sends
    # SIGKILL), the next one finds the test bed's state there and takes it down first.
    work = os.path.join(tempfile.gettempdir(), f"meshflow-e2e.{args.instance}")
    bed = Testbed(args, work)
    if os.path.isdir(bed.run_dir):
        log("taking down what a previous run left behind")
        bed.down()
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.chmod(work, 0o755)  # the test bed's PostgreSQL runs as user postgres below it
    signal.signal(signal.SIGTERM, lambda *unused: sys.exit(143))
    errors = []
    try:
        bed.up()
        log(f"test bed up: {', '.join(sorted(bed.nodes))}")

        rules = []
        for name in ("recording_rules.yml", "alerting_rules.yml"):
            dst = os.path.join(work, name)
            rules.append(scaled_rules(os.path.join(REPO, "alerts", name), dst))
        records = sorted({r["record"] for doc in rules for g in doc["groups"]
                          for r in g["rules"] if "record" in r})

        gateway = f"{bed.nodes[PROM_NODE]}:{GATEWAY_PORT}"
        start_gateway(bed, work, gateway)
        hook_out = os.path.join(work, "notifications.jsonl")
        with open(os.path.join(REPO, "alerts", "alertmanager.yml"), encoding="utf-8") as f:
            am_config = f.read().replace(PLACEHOLDER, f"http://127.0.0.1:{HOOK_PORT}")
        # Resolved notifications go out at the next group_interval tick (5m for warnings);
        # shortened like the rules' durations. group_wait stays as shipped.
        am_config = re.sub(r"group_interval: \w+", "group_interval: 20s", am_config)
        with open(os.path.join(work, "alertmanager.yml"), "w", encoding="utf-8") as f:
            f.write(am_config)
        prom_config = {
            "global": {"scrape_interval": "5s", "evaluation_interval": "5s",
                       "scrape_timeout": "4s"},
            "rule_files": [os.path.join(work, "recording_rules.yml"),
                           os.path.join(work, "alerting_rules.yml")],
            "alerting": {"alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{AM_PORT}"]}]}]},
            "scrape_configs": [
                {"job_name": "meshflow", "static_configs": [
                    {"targets": [f"{ip}:9474"], "labels": {"node": n}}
                    for n, ip in sorted(bed.nodes.items()) if n != PROXIED] + [
                    {"targets": [gateway], "labels": {
                        "node": PROXIED, "__metrics_path__": "/proxy",
                        "__param_target": PROXIED}}]},
                # The gateway's own metrics carry a node label per target; this job adds none.
                {"job_name": "meshflow-gateway", "static_configs": [{"targets": [gateway]}]},
            ],
        }
        with open(os.path.join(work, "prometheus.yml"), "w", encoding="utf-8") as f:
            yaml.safe_dump(prom_config, f)
        subprocess.run(["promtool", "check", "config", os.path.join(work, "prometheus.yml")],
                       check=True, stdout=subprocess.DEVNULL)

        bed.spawn(PROM_NODE, "webhook", [sys.executable, os.path.join(HERE, "webhook_receiver.py"),
                                         "--listen", f"127.0.0.1:{HOOK_PORT}", "--out", hook_out])
        bed.spawn(PROM_NODE, "alertmanager", [
            am_bin, f"--config.file={work}/alertmanager.yml", f"--storage.path={work}/am",
            f"--web.listen-address=127.0.0.1:{AM_PORT}", "--cluster.listen-address="])
        bed.spawn(PROM_NODE, "prometheus", [
            "prometheus", f"--config.file={work}/prometheus.yml",
            f"--storage.tsdb.path={work}/prom", f"--web.listen-address=127.0.0.1:{PROM_PORT}"])
        wait_until("prometheus ready", lambda: bed.http(
            PROM_NODE, f"http://127.0.0.1:{PROM_PORT}/api/v1/status/buildinfo"), 60, 1)
        wait_until("every exporter scraped", lambda: len(
            bed.query('up{job="meshflow"} == 1')) == len(bed.nodes), 90)
        log("prometheus scrapes every exporter; waiting for rates and rules to fill")

        # 1. Every recording rule and dashboard query returns data.
        queries = [(f"record {r}", r) for r in records if r not in DURING_FAULT]
        queries += dashboard_queries()
        pending = dict(queries)
        failures = {}
        deadline = time.monotonic() + 150
        time.sleep(60)
        # Rate windows are full after a minute; stop once three rounds in a row bring nothing
        # new, since what is still missing then is for the fault phase to show.
        unchanged = 0
        while pending and time.monotonic() < deadline and unchanged < 3:
            before = len(pending)
            for what, expr in list(pending.items()):
                try:
                    if bed.query(expr):
                        del pending[what]
                        failures.pop(what, None)
                    else:
                        failures[what] = "no data"
                except ValueError as e:
                    failures[what] = f"error {e}"
            unchanged = unchanged + 1 if len(pending) == before else 0
            if pending:
                time.sleep(10)
        log(f"{len(queries) - len(pending)} of {len(queries)} recording rules and dashboard "
            f"queries returned data; {len(pending)} to check again during the fault")
        log_rule_cost(bed)

        # 2. Faults.
        fault = time.time()
        bed.ctl("cut", *CUT)
        bed.ctl("set", *LOSSY, "--loss", LOSS)
        log(f"cut {CUT[0]} <-> {CUT[1]}, {LOSS} loss on {LOSSY[0]} <-> {LOSSY[1]}")
        try:
            paged = wait_until("MeshflowPeerUnreachable paged", lambda: find(
                hook_out, "/page", "firing", "MeshflowPeerUnreachable", severity="critical",
                src_node=CUT[0], dst_node=CUT[1]), 240)
            log(f"fault to page: {paged - fault:.1f} s (MeshflowPeerUnreachable "
                f"{CUT[0]} -> {CUT[1]} at the pager)")
        except RuntimeError as e:
            errors.append(str(e))
        try:
            warned = wait_until("MeshflowOverlayPacketLoss at warning in chat", lambda: find(
                hook_out, "/chat", "firing", "MeshflowOverlayPacketLoss", severity="warning",
                src_node=LOSSY[0], dst_node=LOSSY[1]), 240)
            log(f"loss to chat: {warned - fault:.1f} s (MeshflowOverlayPacketLoss warning "
                f"{LOSSY[0]} -> {LOSSY[1]})")
        except RuntimeError as e:
            errors.append(str(e))
        # What only a fault produces (degraded links, retransmissions over the lossy link) is
        # there now; the rest is missing from the exporters.
        pending.update({f"record {r}": r for r in DURING_FAULT})
        for what, expr in sorted(pending.items()):
            try:
                if bed.query(expr):
                    log(f"data during the fault: {what}")
                    continue
                failure = "no data, not even during the fault"
            except ValueError as e:
                failure = f"error {e}"
            names = re.findall(r"[a-z_:]+_total\b", expr)
            if (failure.startswith("no data") and names and set(names) <= EVENT_ONLY
                    and not any(bed.query(f'count({{__name__="{n}"}})') for n in names)):
                log(f"not exercised (no {', '.join(names)} event on any node): {what}")
                continue
            errors.append(f"{what}: {failure}: {expr}")

        # 3. Restore; both resolve.
        restored = time.time()
        bed.ctl("restore", *CUT)
        bed.ctl("set", *LOSSY, "--loss", "0%")
        log("restored both links")
        for receiver, name, pair in (("/page", "MeshflowPeerUnreachable", CUT),
                                     ("/chat", "MeshflowOverlayPacketLoss", LOSSY)):
            try:
                at = wait_until(f"{name} resolved", lambda: find(
                    hook_out, receiver, "resolved", name, src_node=pair[0],
                    dst_node=pair[1]), 300)
                log(f"restore to resolved: {at - restored:.1f} s ({name})")
            except RuntimeError as e:
                errors.append(str(e))
    finally:
        bed.down()
        if args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    for e in errors:
        print("testbed_e2e: FAIL:", e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
