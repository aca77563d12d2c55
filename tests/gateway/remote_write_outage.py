#!/usr/bin/env python3
"""The outage test: a known sequence of samples flows through the gateway (pushed with explicit
timestamps, so every expected (timestamp, value) pair is known) to VictoriaMetrics. The receiver
is stopped for --outage seconds and the gateway is SIGKILLed and restarted half-way through.
Afterwards VictoriaMetrics' raw export must hold every pair the gateway accepted; duplicates are
counted and reported. Loopback only.

  remote_write_outage.py PATH/TO/meshflow-gateway [--outage SECONDS]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

TOKEN = "outage-pusher-token-0123456789abcdef"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_for(what, check, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"FAIL: {what} not within {seconds} s")


def metric(body, name):
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", body, re.M)
    return float(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gateway")
    ap.add_argument("--outage", type=float, default=20.0)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="rw-outage-")
    procs = {}
    logs = {}

    def start(name, argv):
        logs[name] = open(os.path.join(work, name + ".log"), "ab")
        procs[name] = subprocess.Popen(argv, stdout=logs[name], stderr=subprocess.STDOUT)

    def fail(msg):
        for name in logs:
            logs[name].flush()
            print(f"--- {name}.log:", file=sys.stderr)
            with open(os.path.join(work, name + ".log"), errors="replace") as f:
                print("".join(f.readlines()[-15:]), file=sys.stderr)
        raise SystemExit("FAIL: " + msg)

    vm_port, gw_port = free_port(), free_port()
    vm_url = f"http://127.0.0.1:{vm_port}"
    gw_url = f"http://127.0.0.1:{gw_port}"
    vm_argv = ["victoria-metrics", f"-httpListenAddr=127.0.0.1:{vm_port}",
               f"-storageDataPath={work}/vm", "-search.latencyOffset=0s", "-retentionPeriod=1d"]
    with open(os.path.join(work, "pusher.token"), "w") as f:
        f.write(TOKEN + "\n")
    with open(os.path.join(work, "gateway.yml"), "w") as f:
        f.write(f"""targets:
  push:
    - {{node: sequence, token_file: pusher.token}}
push: {{ttl: 1h}}
scrape_interval: 1s
remote_write:
  - url: {vm_url}/api/v1/write
    name: vm
    remote_timeout: 2s
    queue_config: {{path: queue, batch_send_deadline: 200ms, min_backoff: 50ms,
                   max_backoff: 1s, max_samples_per_send: 500}}
""")
    gw_argv = [args.gateway, f"--web.listen-address=127.0.0.1:{gw_port}",
               f"--config.file={work}/gateway.yml"]
    accepted = []
    stop = threading.Event()

    def pusher():
        # One sample every 100 ms with its own timestamp; the pair counts once the gateway took it.
        i = 0
        while not stop.is_set():
            i += 1
            ts = int(time.time() * 1000)
            body = f"# TYPE outage_sequence gauge\noutage_sequence {i} {ts}\n".encode()
            req = urllib.request.Request(f"{gw_url}/push?node=sequence", data=body, method="POST",
                                         headers={"Authorization": "Bearer " + TOKEN,
                                                  "Content-Type": "text/plain; version=0.0.4"})
            try:
                with urllib.request.urlopen(req, timeout=2) as r:
                    if r.status == 200:
                        accepted.append((ts, float(i)))
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)

    try:
        start("victoria-metrics", vm_argv)
        wait_for("VictoriaMetrics", lambda: get(vm_url + "/health") is not None, 30)
        start("gateway", gw_argv)
        wait_for("the gateway", lambda: get(gw_url + "/-/ready") is not None, 30)
        t = threading.Thread(target=pusher, daemon=True)
        t.start()
        time.sleep(3)

        procs["victoria-metrics"].send_signal(signal.SIGTERM)
        procs["victoria-metrics"].wait(30)
        down_at = time.monotonic()
        print(f"ok: receiver down, {len(accepted)} samples accepted so far", flush=True)
        time.sleep(args.outage / 2)
        gw_metrics = get(gw_url + "/metrics")
        pending = metric(gw_metrics, 'meshflow_remote_write_samples_pending{remote_name="vm"}')
        disk = metric(gw_metrics, 'meshflow_remote_write_disk_bytes{remote_name="vm"}')
        procs["gateway"].send_signal(signal.SIGKILL)
        procs["gateway"].wait(10)
        print(f"ok: gateway SIGKILLed with {pending:.0f} samples pending, {disk:.0f} bytes on disk",
              flush=True)
        start("gateway", gw_argv)
        wait_for("the restarted gateway", lambda: get(gw_url + "/-/ready") is not None, 30)
        time.sleep(max(0.0, args.outage - (time.monotonic() - down_at)))
        start("victoria-metrics", vm_argv)
        outage = time.monotonic() - down_at
        wait_for("VictoriaMetrics back", lambda: get(vm_url + "/health") is not None, 30)
        print(f"ok: receiver back after {outage:.1f} s", flush=True)
        time.sleep(2)
        stop.set()
        t.join()

        def drained():
            m = get(gw_url + "/metrics")
            return metric(m, 'meshflow_remote_write_samples_pending{remote_name="vm"}') == 0
        wait_for("the queue to drain", drained, 120)
        gw_metrics = get(gw_url + "/metrics")
        # VictoriaMetrics makes new samples searchable after a flush of at most a second or so.
        try:
            get(vm_url + "/internal/force_flush")
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(2)
        export = get(vm_url + "/api/v1/export?" + urllib.parse.urlencode(
            {"match[]": 'outage_sequence{node="sequence"}'}), timeout=30)
        got = []
        for line in export.splitlines():
            if line.strip():
                series = json.loads(line)
                got += list(zip(series["timestamps"], series["values"]))
        expected = set(accepted)
        have = set((ts, float(v)) for ts, v in got)
        missing = sorted(expected - have)
        duplicates = len(got) - len(set(got))
        print(f"  accepted {len(accepted)} samples, exported {len(got)}, "
              f"distinct {len(set(got))}, missing {len(missing)}, duplicates {duplicates}")
        for name in ("sent_total", "retried_total", "failed_total"):
            print(f"  meshflow_remote_write_samples_{name}: " + str(metric(
                gw_metrics, f'meshflow_remote_write_samples_{name}{{remote_name="vm"}}')))
        dropped = metric(gw_metrics,
                         'meshflow_remote_write_samples_dropped_total{remote_name="vm",reason="queue_full"}')
        print(f"  dropped (queue bounds): {dropped}")
        if missing:
            fail(f"{len(missing)} accepted samples missing from VictoriaMetrics, first {missing[:5]}")
        if len(accepted) < 2 * args.outage:
            fail(f"only {len(accepted)} samples accepted: the pusher did not run")
        print(f"ok: every one of {len(accepted)} accepted samples arrived across a {outage:.0f} s "
              f"outage and a SIGKILL of the gateway; {duplicates} duplicates")
    finally:
        stop.set()
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
