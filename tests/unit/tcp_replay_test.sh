#!/usr/bin/env bash
# Passive TCP through the daemon's offline mode: meshflow-exporter --replay on the generated
# fixture must print the RTT histograms, retransmission counters and connection table gauge
# that generate.py built into the packets (expected.json), and pass `promtool check metrics`.
#   tcp_replay_test.sh EXPORTER FIXTURE_DIR
set -euo pipefail
exporter=$1
dir=$2
out=$(mktemp)
trap 'rm -f "$out"' EXIT

"$exporter" --config.file "$dir/config.yaml" --replay "$dir/tcp_passive.pcap" >"$out"
if command -v promtool >/dev/null; then
  lint=$(promtool check metrics <"$out" 2>&1) || { echo "promtool: $lint"; exit 1; }
fi
/usr/bin/python3 - "$out" "$dir/expected.json" <<'PY'
import collections, json, re, sys

text = open(sys.argv[1]).read()
want = json.load(open(sys.argv[2]))["tcp_passive.pcap"]["tcp"]
got = {}
for line in text.splitlines():
    m = re.match(r'^(meshflow_tcp_\w+)(\{[^}]*\})? (\S+)$', line)
    if m:
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        got[(m.group(1), tuple(sorted(labels.items())))] = float(m.group(3))

failures = []
def expect(name, labels, value, tolerance=0.0):
    key = (name, tuple(sorted(labels.items())))
    have = got.get(key)
    if have is None or abs(have - value) > tolerance:
        failures.append(f"{name}{labels}: got {have}, want {value}")

rtt = collections.defaultdict(list)
for kind in ("handshake", "timestamp"):
    for s in want[f"{kind}_rtt_seconds"]:
        rtt[(s["role"], s["src"], s["dst"], kind)].append(s["value"])
series = [k for k in got if k[0] == "meshflow_tcp_rtt_seconds_count"]
if len(series) != len(rtt):
    failures.append(f"{len(series)} rtt series, want {len(rtt)}")
for (role, src, dst, kind), values in rtt.items():
    labels = {"role": role, "src_node": src, "dst_node": dst, "kind": kind}
    expect("meshflow_tcp_rtt_seconds_count", labels, len(values))
    expect("meshflow_tcp_rtt_seconds_sum", labels, sum(values), 1e-6)
for r in want["retransmissions"]:
    labels = {"iface": "tcp_passive", "role": r["role"], "src_node": r["src"],
              "dst_node": r["dst"]}
    expect("meshflow_tcp_retransmitted_packets_total", labels, r["packets"])
    expect("meshflow_tcp_retransmitted_bytes_total", labels, r["bytes"])
expect("meshflow_tcp_connection_table_entries", {}, want["connection_table_entries"])
for line in failures:
    print("FAIL:", line)
if failures:
    sys.exit(1)
print(f"ok: {len(rtt)} rtt series, {len(want['retransmissions'])} retransmission series")
PY
