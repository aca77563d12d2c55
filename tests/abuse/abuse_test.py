#!/usr/bin/env python3
"""The abuse suite: both daemons attacked the way a client on the overlay could, on loopback.

Prints one `figure:` line per measurement and fails when a limit the README states does not hold.
Bounded: every scenario has its own time limit; the whole suite takes about two minutes.
The attacker connects from 127.0.0.2, the scraper from 127.0.0.1.

usage: abuse_test.py EXPORTER GATEWAY [SCENARIO...]
"""

import gzip
import http.client
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

EXPORTER, GATEWAY = sys.argv[1], sys.argv[2]
ONLY = set(sys.argv[3:])
ATTACKER = "127.0.0.2"
FAILURES = []
WORK = tempfile.mkdtemp(prefix="meshflow-abuse-")


def figure(name, value, unit="", limit=None, ok=None):
    text = f"figure: {name} = {value}{(' ' + unit) if unit else ''}"
    if limit is not None:
        text += f" (limit {limit})"
    if ok is not None:
        text += "" if ok else "  FAIL"
        if not ok:
            FAILURES.append(name)
    print(text, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_http(url, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return True
        except Exception:
            time.sleep(0.1)
    return False


class Daemon:
    def __init__(self, argv, url):
        self.log = open(os.path.join(WORK, os.path.basename(argv[0]) + f"-{time.time_ns()}.log"), "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_http(url):
            self.stop()
            raise RuntimeError(f"{argv[0]} did not start")

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start_exporter(port, extra=(), config=None):
    argv = [EXPORTER, "--web.listen-address", f":{port}", "--no-collector.flow"]
    if config:
        argv += ["--config.file", config]
    else:
        argv += ["--no-collector.probe"]
    return Daemon(argv + list(extra), f"http://127.0.0.1:{port}/-/healthy")


def start_gateway(port, config_text):
    path = os.path.join(WORK, f"gateway-{port}.yaml")
    with open(path, "w") as f:
        f.write(config_text)
    return Daemon([GATEWAY, "--web.listen-address", f":{port}", "--config.file", path],
                  f"http://127.0.0.1:{port}/-/healthy")


def attacker_socket(port):
    s = socket.socket()
    s.bind((ATTACKER, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def timed_get(url, timeout=30):
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except Exception:
        status = 0
    return time.monotonic() - start, status


def p99(values):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def attack(port, sends):
    """One attacker connection per item of sends, each sent that; the sockets that connected."""
    socks = []
    for data in sends:
        try:
            s = attacker_socket(port)
            s.sendall(data)
            socks.append(s)
        except OSError:
            pass
    return socks


# --- Stalls: 200 idle keep-alive and 200 slow-header connections from one address ----------

def hold_connections(port, idle=200, slow=200):
    keep_alive = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
    held_idle = attack(port, [keep_alive] * idle)
    held_slow = attack(port, [b"GET /metrics HTTP/1.1\r\n"] * slow)
    held = held_idle + held_slow
    stop = threading.Event()

    def trickle():
        # One header byte per second on every slow connection, as a slowloris would.
        while not stop.wait(1.0):
            for s in held_slow:
                try:
                    s.sendall(b"X")
                except OSError:
                    pass

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    return held, stop


def scenario_stalls():
    for name in ("exporter", "gateway"):
        port = free_port()
        d = start_exporter(port) if name == "exporter" else start_gateway(port, "{}\n")
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            held, stop = hold_connections(port)
            time.sleep(0.5)
            latencies = []
            statuses = []
            deadline = time.monotonic() + 20
            while len(latencies) < 40 and time.monotonic() < deadline:
                took, status = timed_get(url, timeout=10)
                latencies.append(took)
                statuses.append(status)
                time.sleep(0.1)
            stop.set()
            for s in held:
                s.close()
            ok = sum(1 for s in statuses if s == 200)
            figure(f"stall_{name}_scrape_p99_seconds", round(p99(latencies), 3), "s", "< 1",
                   p99(latencies) < 1 and ok == len(statuses))
            figure(f"stall_{name}_scrapes_ok", f"{ok}/{len(statuses)}")
        finally:
            d.stop()


# --- Nothing allocated before auth ------------------------------------------------------------

def rss_growth_mb(pid, port, heads):
    """How many MB the process at pid grows while one connection per request head announces an
    8 MiB body and sends 64 KiB of it."""
    before = rss_bytes(pid)
    socks = attack(port, [f"{head}Content-Length: {8 << 20}\r\n\r\n".encode() + b"a" * 65536
                          for head in heads])
    time.sleep(1.0)
    after = rss_bytes(pid)
    for s in socks:
        s.close()
    return (after - before) / 1e6


def scenario_body_before_auth():
    token_path = os.path.join(WORK, "token")
    with open(token_path, "w") as f:
        f.write("s3cret-token-0123456789\n")
    port = free_port()
    g = start_gateway(port, f"targets: {{push: [{{node: n1, token_file: {token_path}}}]}}\n")
    try:
        grown = rss_growth_mb(g.pid, port, [
            "POST /push?node=n1 HTTP/1.1\r\nHost: x\r\n" +
            ("Authorization: Bearer wrong\r\n" if i % 2 else "") for i in range(120)])
        figure("gateway_rss_growth_120x8MiB_announced_MB", round(grown, 1), "MB", "< 50", grown < 50)
    finally:
        g.stop()
    port = free_port()
    e = start_exporter(port)
    try:
        grown = rss_growth_mb(e.pid, port, ["POST /metrics HTTP/1.1\r\nHost: x\r\n"] * 120)
        figure("exporter_rss_growth_120x8MiB_announced_MB", round(grown, 1), "MB", "< 50",
               grown < 50)
    finally:
        e.stop()


# --- Pushes that federate safely --------------------------------------------------------------

SEED = """# HELP node_load1 Load.
# TYPE node_load1 gauge
node_load1 0.5
# TYPE rtt_seconds histogram
rtt_seconds_bucket{peer="a",le="0.1"} 1
rtt_seconds_bucket{peer="a",le="+Inf"} 2
rtt_seconds_sum{peer="a"} 0.3
rtt_seconds_count{peer="a"} 2
# HELP req_total Requests.
# TYPE req_total counter
req_total{code="200",path="/x"} 10
req_total{code="500",path="/x"} 1
# TYPE lat summary
lat{quantile="0.5"} 1
lat_sum 3
lat_count 4
up_thing{a="b\\\\c",d="e\\"f",g="h\\ni"} 1 1700000000000
"""

ALPHABET = ["\n", " ", "\t", "{", "}", "=", '"', ",", "\\", "#", "_", "a", "0", "1", ".", "e",
            "+", "-", "Inf", "NaN", "le", "quantile", "__name__", "node", "\x00", "\xff", "é",
            "# TYPE ", " counter", " gauge", " histogram", " summary", "_bucket", "_sum",
            "_count", "# HELP "]


def mutate(text, rng):
    # Half the mutations keep the shape and change names, values and labels: those pushes are
    # accepted and reach /federate; the others break the syntax and test the refusals.
    if rng.random() < 0.5:
        lines = text.split("\n")
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(lines))
            if lines[i].startswith("#") or not lines[i]:
                continue
            choice = rng.random()
            if choice < 0.3:
                lines[i] = lines[i].rsplit(" ", 1)[0] + " " + rng.choice(
                    ["0", "-1.5e3", "NaN", "+Inf", "-Inf", "1e308", str(rng.random())])
            elif choice < 0.6:
                lines.append(f'{rng.choice(["a", "rtt_seconds_count", "lat_sum", "x_total", "node_load1"])}'
                             f'{{k="{rng.randrange(50)}"}} {rng.randrange(9)}')
            else:
                lines[i] = lines[i].replace('"a"', '"' + rng.choice(["b", "é", "\\\\", ""]) + '"', 1)
        return "\n".join(lines)
    data = list(text)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        pos = rng.randrange(len(data) + 1)
        if op < 0.4:
            data[pos:pos] = list(rng.choice(ALPHABET))
        elif op < 0.7 and data:
            del data[pos:pos + rng.randint(1, 3)]
        elif data:
            # Duplicate a line: duplicate series and second TYPE lines.
            lines = "".join(data).split("\n")
            i = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
            data = list("\n".join(lines))
    return "".join(data)


def push(port, node, token, body, chunked=False, conn=None):
    keep = conn is not None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/plain; version=0.0.4"}
    payload = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body
    if chunked:
        conn.request("POST", f"/push?node={node}", body=iter([payload[:7], payload[7:]]),
                     headers=headers, encode_chunked=True)
    else:
        conn.request("POST", f"/push?node={node}", body=payload, headers=headers)
    r = conn.getresponse()
    text = r.read().decode(errors="replace")
    if not keep:
        conn.close()
    return r.status, text


def promtool_errors(body):
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    # 1: the text does not parse; 3: only lint advice (a counter without _total, no HELP), which
    # pushed data may well deserve and which Prometheus does not refuse.
    return r.returncode == 1, r.stderr.decode(errors="replace")


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def scenario_pushes():
    nodes = [f"n{i}" for i in range(8)]
    tokens = {}
    lines = ["targets:", "  push:"]
    for n in nodes:
        tokens[n] = f"token-of-{n}-0123456789"
        path = os.path.join(WORK, f"token-{n}")
        with open(path, "w") as f:
            f.write(tokens[n])
        lines.append(f"    - {{node: {n}, token_file: {path}}}")
    lines.append("push: {ttl: 1h}")
    port = free_port()
    g = start_gateway(port, "\n".join(lines) + "\n")
    base = f"http://127.0.0.1:{port}"
    try:
        status, _ = push(port, "n0", tokens["n0"], 'x{__name__="y"} 1\n')
        figure("push___name___label_status", status, "", "400", status == 400)
        status, _ = push(port, "n0", tokens["n0"], "x 1\nx 2\n")
        figure("push_duplicate_series_status", status, "", "400", status == 400)
        status, _ = push(port, "n0", tokens["n0"], "# TYPE shared counter\nshared 1\n")
        status2, _ = push(port, "n1", tokens["n1"], "# TYPE shared gauge\nshared 1\n")
        figure("push_conflicting_type_status", status2, "", "409", status == 200 and status2 == 409)
        status, _ = push(port, "n2", tokens["n2"], "chunked_metric 42\nother 1\n", chunked=True)
        _, body = get(f"{base}/proxy?target=n2")
        whole = b"chunked_metric 42" in body and b"other 1" in body
        figure("push_chunked_stored_whole", whole, "", "true", status == 200 and whole)

        rng = random.Random(17)
        accepted = 0
        attempts = 0
        checked = 0
        failed = 0
        first_failure = ""
        deadline = time.monotonic() + 100
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while accepted < int(os.environ.get("ABUSE_PUSHES", "10000")) and time.monotonic() < deadline:
            attempts += 1
            node = nodes[rng.randrange(len(nodes))]
            body = mutate(SEED, rng)
            try:
                status, _ = push(port, node, tokens[node], body, conn=conn)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            if status != 200:
                continue
            accepted += 1
            if accepted % 200 == 0:
                for url in (f"{base}/federate?match[]=%7B__name__%3D~%22.%2B%22%7D",
                            f"{base}/proxy?target={node}"):
                    st, out = get(url)
                    checked += 1
                    bad, why = promtool_errors(out) if st == 200 else (True, f"HTTP {st}")
                    if bad:
                        failed += 1
                        if not first_failure and os.environ.get("ABUSE_KEEP_FAILURE"):
                            with open(os.environ["ABUSE_KEEP_FAILURE"], "wb") as f:
                                f.write(out)
                        first_failure = first_failure or f"{url}: {why.strip()[:200]}"
        figure("fuzz_pushes_accepted", f"{accepted}/{attempts}", "", ">= 10000",
               accepted >= 10000)
        figure("fuzz_promtool_failures", f"{failed}/{checked}", "checks", "0", failed == 0)
        if first_failure:
            print("  first failure:", first_failure)
    finally:
        g.stop()


# --- Cost per request ------------------------------------------------------------------------

def scenario_federate_cost():
    nodes = [f"n{i}" for i in range(20)]
    lines = ["targets:", "  push:"]
    for n in nodes:
        path = os.path.join(WORK, f"ftoken-{n}")
        with open(path, "w") as f:
            f.write(f"tok-{n}-0123456789")
        lines.append(f"    - {{node: {n}, token_file: {path}}}")
    lines.append("push: {ttl: 1h, max_body_bytes: 8388608}")
    lines.append("memory: {budget_bytes: 2147483648}")
    port = free_port()
    g = start_gateway(port, "\n".join(lines) + "\n")
    try:
        stored = 0
        for i, n in enumerate(nodes):
            body = "".join(f'm{j % 50}{{i="{j}"}} {j}\n' for j in range(50000))
            status, text = push(port, n, f"tok-{n}-0123456789", gzip.compress(body.encode()) if False else body)
            if status == 200:
                stored += 50000
            else:
                print("  push refused:", status, text.strip())
        figure("federate_stored_samples", stored)
        selectors = "&".join(
            "match[]=" + urllib.parse.quote(f'{{__name__=~"m.*{k}.*x|.*",i=~".*{k}.*9"}}')
            for k in range(32))
        cpu_before = cpu_seconds(g.pid)
        start = time.monotonic()
        status, body = get(f"http://127.0.0.1:{port}/federate?{selectors}")
        wall = time.monotonic() - start
        cpu = cpu_seconds(g.pid) - cpu_before
        figure("federate_worst_case_cpu_seconds", round(cpu, 3), "s", "< 1", cpu < 1)
        figure("federate_worst_case_status", status, "", f"wall {wall:.2f}s")
        many = "&".join(f"match[]=m{k}" for k in range(500))
        cpu_before = cpu_seconds(g.pid)
        status, _ = get(f"http://127.0.0.1:{port}/federate?{many}")
        cpu = cpu_seconds(g.pid) - cpu_before
        figure("federate_500_selectors_status", status, "", "400 or 414", status in (400, 414))
        figure("federate_500_selectors_cpu_seconds", round(cpu, 3), "s", "< 1", cpu < 1)
        figure("gateway_rss_with_1M_samples_MB", round(rss_bytes(g.pid) / 1e6, 1), "MB")
    finally:
        g.stop()


def scenario_proxy_flood():
    exporter_port = free_port()
    e = start_exporter(exporter_port)
    port = free_port()
    g = start_gateway(port, "targets:\n  static:\n"
                      f"    - {{node: victim, url: 'http://127.0.0.1:{exporter_port}/metrics'}}\n")
    stop = threading.Event()
    flood_count = [0]

    def flood():
        while not stop.is_set():
            try:
                s = socket.socket()
                s.bind((ATTACKER, 0))
                s.settimeout(10)
                s.connect(("127.0.0.1", port))
                s.sendall(b"GET /proxy?target=victim HTTP/1.0\r\n\r\n")
                while s.recv(65536):
                    pass
                s.close()
                flood_count[0] += 1
            except OSError:
                pass

    try:
        threads = [threading.Thread(target=flood, daemon=True) for _ in range(16)]
        for t in threads:
            t.start()
        statuses = []
        up_wrong = 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/proxy?target=victim",
                                         headers={"X-Prometheus-Scrape-Timeout-Seconds": "5"})
            try:
                with urllib.request.urlopen(req, timeout=6) as r:
                    r.read()
                    statuses.append(r.status)
            except urllib.error.HTTPError as err:
                statuses.append(err.code)
            except Exception:
                statuses.append(0)
            _, metrics = get(f"http://127.0.0.1:{port}/metrics")
            if b'meshflow_gateway_target_up{node="victim",source="static"} 1' not in metrics:
                up_wrong += 1
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(15)
        ok = sum(1 for s in statuses if s == 200) / max(1, len(statuses))
        figure("proxy_flood_prometheus_200_ratio", round(ok, 4), "", ">= 0.99", ok >= 0.99)
        figure("proxy_flood_target_up_wrong", f"{up_wrong}/{len(statuses)}", "", "0", up_wrong == 0)
        figure("proxy_flood_requests_by_16_clients", flood_count[0])
        _, metrics = get(f"http://127.0.0.1:{port}/metrics")
        for line in metrics.decode().splitlines():
            if line.startswith("meshflow_gateway_scrapes_shared_total"):
                figure("proxy_flood_scrapes_shared", line.split()[-1])
    finally:
        stop.set()
        g.stop()
        e.stop()


def scenario_reflector():
    port = free_port()
    rport = free_port()
    config = os.path.join(WORK, "reflector.yaml")
    with open(config, "w") as f:
        f.write("probes:\n  methods: [udp]\n  reflector: {enabled: true, listen_address: 127.0.0.1, "
                f"port: {rport}, max_replies_per_source_per_second: 50, "
                "max_replies_per_second: 200}\n")
    e = start_exporter(port, config=config)
    try:
        # A valid request, learnt from the probe codec's fixed layout: a reflector answers only
        # well-formed requests, so take one from the corpus the fuzzer keeps.
        corpus = os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "probe_codec")
        request = None
        for name in sorted(os.listdir(corpus)) if os.path.isdir(corpus) else []:
            data = open(os.path.join(corpus, name), "rb").read()
            if len(data) == 48 and name.startswith("request"):
                request = data
                break
        if request is None:
            figure("reflector_test", "skipped: no request in the probe codec corpus")
            return
        socks = []
        for i in range(4096):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((f"127.1.{i >> 8}.{i & 255}", 0))
            s.setblocking(False)
            socks.append(s)
        replies = 0
        start = time.monotonic()
        sent = 0
        while time.monotonic() - start < 3:
            for s in socks:
                s.sendto(request, ("127.0.0.1", rport))
                sent += 1
                try:
                    while s.recv(64):
                        replies += 1
                except BlockingIOError:
                    pass
        elapsed = time.monotonic() - start
        time.sleep(0.2)
        for s in socks:
            try:
                while s.recv(64):
                    replies += 1
            except BlockingIOError:
                pass
            s.close()
        rate = replies / elapsed
        # The cap is a token bucket of one second's worth: 200 at once, then 200 per second.
        # Replies read in the 0.2 s drain after the window may have been sent in it.
        allowed = (200 * (elapsed + 0.2) + 200) / elapsed
        figure("reflector_replies_per_second_4096_sources", round(rate), "/s",
               f"<= {allowed:.0f} over {elapsed:.1f} s (200/s and a 200 burst)", rate <= allowed)
        figure("reflector_requests_sent", sent)
    finally:
        e.stop()


def scenario_memory_budget():
    n_nodes = 5000
    lines = ["targets:", "  push:"]
    token_dir = os.path.join(WORK, "tokens")
    os.makedirs(token_dir, exist_ok=True)
    for i in range(n_nodes):
        path = os.path.join(token_dir, f"t{i}")
        with open(path, "w") as f:
            f.write(f"token-{i:05d}-abcdefghij")
        lines.append(f"    - {{node: node{i}, token_file: {path}}}")
    budget = 128 << 20
    lines.append("push: {ttl: 1h}")
    lines.append(f"memory: {{budget_bytes: {budget}}}")
    port = free_port()
    g = start_gateway(port, "\n".join(lines) + "\n")
    try:
        body = "".join(
            f'meshflow_flow_bytes_total{{iface="tailscale0",role="r{j % 20}",src_node="a",'
            f'dst_node="b{j}"}} {j}\n' for j in range(350))
        figure("memory_push_body_bytes", len(body))
        baseline = rss_bytes(g.pid)
        counts = {}
        peak = 0
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(n_nodes):
            conn.request("POST", f"/push?node=node{i}", body=body,
                         headers={"Authorization": f"Bearer token-{i:05d}-abcdefghij"})
            r = conn.getresponse()
            r.read()
            counts[r.status] = counts.get(r.status, 0) + 1
            if i % 500 == 0:
                peak = max(peak, rss_bytes(g.pid))
        conn.close()
        peak = max(peak, rss_bytes(g.pid))
        figure("memory_5000_nodes_statuses", dict(sorted(counts.items())))
        figure("memory_5000_nodes_rss_MB", round(peak / 1e6, 1), "MB",
               f"< budget {budget / 1e6:.0f} MB", peak < budget)
        figure("memory_rss_baseline_MB", round(baseline / 1e6, 1), "MB")
        _, metrics = get(f"http://127.0.0.1:{port}/metrics")
        for line in metrics.decode().splitlines():
            if line.startswith("meshflow_gateway_memory_") or 'reason="memory_budget"' in line:
                print("  ", line)
    finally:
        g.stop()


def scenario_small():
    port = free_port()
    e = start_exporter(port)
    try:
        s = socket.create_connection(("127.0.0.1", port))
        headers = "".join(f"X-H{i}: v\r\n" for i in range(70))
        s.sendall(f"GET /metrics HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        status = s.recv(64).split(b" ")[1]
        s.close()
        figure("too_many_headers_status", status.decode(), "", "431", status == b"431")
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /metrics%00.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        status = s.recv(64).split(b" ")[1]
        s.close()
        figure("nul_in_path_status", status.decode(), "", "400", status == b"400")
    finally:
        e.stop()
    port = free_port()
    g = start_gateway(port, "targets:\n  static:\n    - {node: dead, url: 'http://127.0.0.1:1/metrics'}\n")
    try:
        status, body = get(f"http://127.0.0.1:{port}/proxy?target=dead")
        hidden = b"127.0.0.1:1" not in body
        figure("502_hides_upstream_without_credentials", hidden, "", "true", hidden and status == 502)
        before = open(g.log.name).read().count("push rejected")
        for _ in range(2000):
            push(port, "dead", "wrong", "x 1\n")
        lines = open(g.log.name).read().count("push rejected") - before
        figure("push_rejection_log_lines_for_2000_attempts", lines, "", "<= 1", lines <= 1)
    finally:
        g.stop()


SCENARIOS = [
    ("small", scenario_small),
    ("body_before_auth", scenario_body_before_auth),
    ("pushes", scenario_pushes),
    ("proxy_flood", scenario_proxy_flood),
    ("federate_cost", scenario_federate_cost),
    ("memory_budget", scenario_memory_budget),
    ("reflector", scenario_reflector),
    ("stalls", scenario_stalls),
]


def main():
    # 400 held connections and 4,096 UDP sockets: raise the descriptor limit as far as allowed
    # (the daemons started below inherit it).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 16384 if hard == resource.RLIM_INFINITY else min(hard, 16384)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if shutil.which("promtool") is None:
        print("promtool not found (deploy/install-deps.sh --test installs it)")
        return 1
    started = time.monotonic()
    try:
        for name, fn in SCENARIOS:
            if ONLY and name not in ONLY:
                continue
            t = time.monotonic()
            print(f"== {name}", flush=True)
            try:
                fn()
            except Exception as e:  # a scenario that breaks is a failure, the others still run
                figure(f"{name}_error", repr(e), ok=False)
            print(f"   ({time.monotonic() - t:.1f} s)", flush=True)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"abuse suite: {time.monotonic() - started:.0f} s, "
          f"{'FAILED: ' + ', '.join(FAILURES) if FAILURES else 'all limits hold'}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
