#!/usr/bin/env python3
"""alerts/alertmanager.yml in a real Alertmanager on 127.0.0.1: alerts are posted through its
API and the test reads what reached the pager and chat webhooks. Checks routing by severity,
on-demand nodes kept off the pager, grouping by node pair, and every inhibition rule.

Usage: alertmanager_test.py ALERTMANAGER_YML [ALERTMANAGER_BINARY]
"""

import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from verdict import verdict  # noqa: E402

PLACEHOLDER = "http://alert-webhook.example:8080"
DEADLINE_SECONDS = 90  # critical groups wait 10 s, warning and info 30 s and 60 s


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"alertmanager_test: {what} within {seconds} s: no")


def alert(name, severity, **labels):
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": name},
        "startsAt": now.isoformat(),
        "endsAt": (now + datetime.timedelta(minutes=10)).isoformat(),
        "generatorURL": "http://127.0.0.1/test",
    }


# Each alert gets a unique key label so the checks below can name it.
ALERTS = {
    # Routing.
    "page": alert("MeshflowPeerUnreachable", "critical", src_node="ct-serv-jp",
                  dst_node="acer-agent"),
    "chat": alert("MeshflowOverlayPacketLoss", "warning", src_node="ct-serv-jp",
                  dst_node="gce-agent-tw"),
    "info": alert("MeshflowCaptureDecodeErrors", "info", node="acer-agent", iface="ts0"),
    "on_demand": alert("MeshflowExporterDown", "critical", node="laptop-agent",
                       on_demand="true"),
    # A node that left silences its links and its exporter.
    "left": alert("MeshflowNodeLeftMesh", "critical", node="desktop-agent",
                  dst_node="desktop-agent"),
    "left_link": alert("MeshflowPeerUnreachable", "critical", src_node="ct-serv-jp",
                       dst_node="desktop-agent"),
    "left_exporter": alert("MeshflowExporterDown", "critical", node="desktop-agent"),
    # An exporter that is down silences its collectors, not another node's.
    "exporter": alert("MeshflowExporterDown", "critical", node="gce-agent-tw"),
    "collector": alert("MeshflowCollectorFailing", "warning", node="gce-agent-tw",
                       collector="flow"),
    "other_collector": alert("MeshflowCollectorFailing", "warning", node="acer-agent",
                             collector="probe"),
    # A dead link silences the loss alert of the same pair.
    "dead_link_loss": alert("MeshflowOverlayPacketLoss", "warning", src_node="ct-serv-jp",
                            dst_node="acer-agent"),
    # The control-plane alert silences the generic loss alert of its pair.
    "cp": alert("MeshflowControlPlaneLinkDegraded", "critical", src_node="gce-agent-tw",
                dst_node="ct-serv-jp", reason="loss"),
    "cp_loss": alert("MeshflowOverlayPacketLoss", "warning", src_node="gce-agent-tw",
                     dst_node="ct-serv-jp"),
}
for key, a in ALERTS.items():
    a["labels"]["test_key"] = key

PAGED = {"page", "left", "exporter", "cp"}
CHATTED = {"chat", "info", "on_demand", "other_collector"}
INHIBITED = {"left_link", "left_exporter", "collector", "dead_link_loss", "cp_loss"}


def main():
    config_in = sys.argv[1]
    binary = sys.argv[2] if len(sys.argv) > 2 else (
        shutil.which("prometheus-alertmanager") or shutil.which("alertmanager"))
    if not binary:
        raise SystemExit("alertmanager_test: no alertmanager binary")
    work = tempfile.mkdtemp(prefix="meshflow-am-")
    procs = []
    try:
        out = os.path.join(work, "notifications.jsonl")
        port_file = os.path.join(work, "webhook.port")
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(HERE, "webhook_receiver.py"), "--listen",
             "127.0.0.1:0", "--out", out, "--port-file", port_file]))
        wait_for("webhook receiver listening", lambda: os.path.exists(port_file), 10)
        with open(port_file, encoding="utf-8") as f:
            hook = f"http://127.0.0.1:{f.read().strip()}"
        with open(config_in, encoding="utf-8") as f:
            config = f.read()
        if PLACEHOLDER not in config:
            raise SystemExit(f"alertmanager_test: {PLACEHOLDER} not in {config_in}")
        config_path = os.path.join(work, "alertmanager.yml")
        with open(config_path, "w", encoding="utf-8") as f:
            f.write(config.replace(PLACEHOLDER, hook))

        am_port = free_port()
        am = f"http://127.0.0.1:{am_port}"
        procs.append(subprocess.Popen(
            [binary, f"--config.file={config_path}", f"--storage.path={work}/data",
             f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
             "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=open(f"{work}/am.log", "w")))
        wait_for("alertmanager ready",
                 lambda: urllib.request.urlopen(f"{am}/-/ready", timeout=2).status == 200, 30)

        req = urllib.request.Request(f"{am}/api/v2/alerts", method="POST",
                                     data=json.dumps(list(ALERTS.values())).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5)

        def received():
            got = {}
            if os.path.exists(out):
                with open(out, encoding="utf-8") as f:
                    for line in f:
                        n = json.loads(line)
                        for a in n["body"]["alerts"]:
                            got.setdefault(a["labels"]["test_key"], []).append(n)
            return got

        wait_for("every expected notification", lambda: PAGED | CHATTED <= set(received()),
                 DEADLINE_SECONDS)
        # Inhibited alerts would have been sent in the same group flushes; give the slowest
        # route (info, 60 s group_wait, already passed) one more second.
        time.sleep(1)
        got = received()
        errors = []
        for key in sorted(PAGED | CHATTED | INHIBITED):
            paths = {n["path"] for n in got.get(key, [])}
            want = {"/page"} if key in PAGED else {"/chat"} if key in CHATTED else set()
            if paths != want:
                errors.append(f"{key}: reached {sorted(paths) or 'nobody'}, want "
                              f"{sorted(want) or 'nobody (inhibited)'}")
        with urllib.request.urlopen(f"{am}/api/v2/alerts", timeout=5) as r:
            status = {a["labels"]["test_key"]: a["status"] for a in json.load(r)}
        for key in sorted(INHIBITED):
            if not status.get(key, {}).get("inhibitedBy"):
                errors.append(f"{key}: not inhibited ({status.get(key)})")
        for key in sorted(PAGED | CHATTED):
            if status.get(key, {}).get("inhibitedBy"):
                errors.append(f"{key}: inhibited by {status[key]['inhibitedBy']}")
        group = got["page"][0]["body"]["groupLabels"]
        if group != {"src_node": "ct-serv-jp", "dst_node": "acer-agent"}:
            errors.append(f"link alerts grouped by {group}, want the node pair")
        group = got["exporter"][0]["body"]["groupLabels"]
        if group != {"node": "gce-agent-tw"}:
            errors.append(f"node alerts grouped by {group}, want the node")
        return verdict("alertmanager_test", errors,
                       f"{len(PAGED)} paged, {len(CHATTED)} to chat, "
                       f"{len(INHIBITED)} inhibited, as expected")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
