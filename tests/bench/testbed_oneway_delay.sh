#!/usr/bin/env bash
# Where a probe's round trip over the emulated overlay gets its extra time: tshark on the
# sending node's and on the receiving node's overlay device (TUN mode, the probe topology) time
# every probe packet as it leaves one namespace and as it enters the other; the difference
# minus the configured one-way delay is what the emulator adds (reading the packet late,
# releasing it late, the kernel's own path), per protocol and direction. meshflow-probe runs
# icmp, udp and tcp to p48 and p80 at the same time, 20 ms apart, as testbed_probe_rtt_test does.
# Needs root.
#   tests/bench/testbed_oneway_delay.sh BUILD_DIR
set -euo pipefail
export MESHFLOW_BUILD_DIR=${1:?usage: $0 BUILD_DIR}
source "$(cd "$(dirname "$0")/../testbed" && pwd)/probe_lib.sh"
MESHFLOW_TESTBED_OVERLAY=tun probe_up mfbow

for n in p1 p48 p80; do start_peer "$n"; done
for n in p1 p48 p80; do wait_peer "$n"; done
TSHARK_PIDS=()
for n in src p1 p48 p80; do
  bg "$n" "tshark-$n" tshark -i ts0 -n -l -f 'icmp or udp port 9474 or tcp port 6443' \
    -T fields -E separator=' ' -e frame.time_epoch -e ip.src -e ip.dst -e ip.proto -e ip.id \
    -e tcp.flags.syn -e tcp.flags.ack -a duration:40
  TSHARK_PIDS+=("${PROBE_PIDS[-1]}")
done
# tshark takes seconds to start on a loaded machine: wait until every one captures.
for n in src p1 p48 p80; do
  retry 300 grep -q "^Capturing on" "$WORK/tshark-$n.log" || die "tshark on $n did not start"
done
sleep 1
args=()
for n in p1 p48 p80; do args+=(--peer "$n=${NODE_V4[$n]}"); done
ip netns exec "$(ns_of src)" timeout 60 "$PROBE" "${args[@]}" --method icmp,udp,tcp \
  --tcp-port 6443 --udp-port 9474 --interval 20ms --timeout 1s --count 150 >"$WORK/rtt.txt"
wait "${TSHARK_PIDS[@]}" || true
grep -E '^summary .*peer=p(48|80) ' "$WORK/rtt.txt" | tr ' ' '\n' |
  grep -E '^(peer|method|median_seconds|mean_seconds)=' | paste - - - - | column -t
# Pairs every packet seen leaving one namespace with the same packet (addresses, protocol,
# IP ID) entering the other, and prints (arrival - departure - configured one-way delay).
python3 - "$WORK" "${NODE_V4[src]}" "${NODE_V4[p1]}" "${NODE_V4[p48]}" "${NODE_V4[p80]}" <<'PY'
import sys, statistics, collections
work, src, p1, p48, p80 = sys.argv[1:]
addr = {src: "src", p1: "p1", p48: "p48", p80: "p80"}
delay = {"p1": 0.5, "p48": 24.0, "p80": 40.0}
def load(node):
    rows = []
    for line in open(f"{work}/tshark-{node}.log"):
        f = line.split()
        if len(f) < 5 or not f[0][0].isdigit(): continue
        rows.append((float(f[0]), f[1], f[2], f[3], f[4], f[5] if len(f) > 5 else "", f[6] if len(f) > 6 else ""))
    return rows
seen = {n: load(n) for n in ("src", "p1", "p48", "p80")}
proto = {"1": "icmp", "17": "udp", "6": "tcp"}
out = collections.defaultdict(list)
for peer in ("p1", "p48", "p80"):
    for a, b in (("src", peer), (peer, "src")):
        first = {}
        for t, s, d, p, i, syn, ack in seen[a]:
            if addr.get(s) == a and addr.get(d) == b: first.setdefault((s, d, p, i), t)
        for t, s, d, p, i, syn, ack in seen[b]:
            k = (s, d, p, i)
            if k in first:
                what = proto.get(p, p)
                if what == "tcp": what += " syn" if syn == "1" and ack == "0" else " synack" if syn == "1" else " other"
                out[(peer, "request" if a == "src" else "reply", what)].append((t - first.pop(k)) * 1e3 - delay[peer])
print("excess one-way delay over the configured one, ms (emulator + kernel path):")
for k in sorted(out):
    v = sorted(out[k])
    if len(v) < 5: continue
    print(f"  {k[0]:4} {k[1]:8} {k[2]:10} n={len(v):4} median {statistics.median(v):7.3f}"
          f" mean {statistics.mean(v):7.3f} p90 {v[int(len(v) * 0.9)]:7.3f} max {v[-1]:7.3f}")
PY
"$CTL" --socket "$SOCKET" show | grep '^overlay released'
