#!/usr/bin/env bash
# The overlay emulator's own accuracy test, measured with ping:
#   - median RTT within 0.2 ms of the configured 1, 48 and 80 ms, over IPv4 and IPv6; for
#     300 ms (ping prints 1 ms steps there) the median within 0.5 ms and ping's minimum 0-0.2 ms
#     above 300 ms;
#   - loss over 2,000 probes within 2 percentage points of the configured 10 % and 12 %;
#   - TCP through a 4 Mbit/s rate limit is never faster than it;
#   - a cut link drops everything and a restored one carries again; same for a node taken off
#     the overlay and brought back.
# Needs root. Uses its own instance and removes it on any exit.
#   accuracy_test.sh   (binaries from MESHFLOW_OVERLAY_EMULATOR / MESHFLOW_OVERLAY_CTL or the
#                       first build directory)
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$DIR/lib.sh"
own_instance mfacc

"$DIR/up" --instance "$INSTANCE" --topology "$DIR/topologies/accuracy.yaml" --overlay tun \
  --skip services
load_nodes
CTL=$(ctl_path)
ctl() { "$CTL" --socket "$SOCKET" "$@"; }


# ping FROM TO-ADDRESS COUNT INTERVAL OUTFILE, bounded by count and by time. (Not ping -w:
# with a deadline ping keeps sending until COUNT replies have come back.)
probe() {
  local from=$1 to=$2 count=$3 interval=$4 out=$5
  timeout 60 ip netns exec "$(ns_of "$from")" ping -n -c "$count" -i "$interval" -W 2 "$to" \
    >"$out" 2>&1 || true
}
received() { sed -nE 's/.* ([0-9]+) received.*/\1/p' "$1"; }
transmitted() { sed -nE 's/^([0-9]+) packets transmitted.*/\1/p' "$1"; }
# ping prints 3 significant digits per probe (1 ms steps above 100 ms) but the average in
# microseconds; both are checked.
median() { grep -o 'time=[0-9.]*' "$1" | cut -d= -f2 | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
average() { sed -nE 's|^rtt min/avg/max/mdev = [0-9.]+/([0-9.]+)/.*|\1|p' "$1"; }
minimum() { sed -nE 's|^rtt min/avg/max/mdev = ([0-9.]+)/.*|\1|p' "$1"; }

# --- delay --------------------------------------------------------------------------------------
declare -A RTT=([d1]=1 [d48]=48 [d80]=80 [d300]=300)
for p in "${!RTT[@]}"; do
  probe "${p}a" "${NODE_V4[${p}b]}" 200 0.01 "$WORK/$p-v4" &
  probe "${p}a" "${NODE_V6[${p}b]}" 200 0.01 "$WORK/$p-v6" &
done
# --- loss (concurrently: other pairs) ----------------------------------------------------------
probe l10a "${NODE_V4[l10b]}" 2000 0.002 "$WORK/l10-v4" &
probe l12a "${NODE_V6[l12b]}" 2000 0.002 "$WORK/l12-v6" &
wait

for p in d1 d48 d80 d300; do
  want=${RTT[$p]}
  for v in v4 v6; do
    f=$WORK/$p-$v
    med=$(median "$f")
    avg=$(average "$f")
    low=$(minimum "$f")
    n=$(received "$f")
    if [[ -z $med || -z $avg || ${n:-0} -lt 190 ]]; then
      fail "rtt $want ms $v: only ${n:-0}/200 replies"; cat "$f" | tail -n 3; continue
    fi
    # Above 100 ms ping prints 1 ms steps, so the median is checked to half a step and the
    # sub-millisecond accuracy on ping's minimum (printed in microseconds). Not on the mean: a
    # single probe caught in a stall of the machine moves a 200-probe mean by 0.5 ms (this test
    # read 300.59 / 300.46 ms at load 5 beside medians of 300 ms, with the emulator's SCHED_FIFO
    # mover releasing 111 of 13,547 packets over 1 ms late and the latest 99 ms late).
    if awk -v m="$med" -v l="$low" -v w="$want" 'BEGIN {
          d = m - w; if (d < 0) d = -d;
          tol = (w >= 100) ? 0.5 : 0.2;
          exit !(d <= tol && (w < 100 || (l >= w && l - w <= 0.2))) }'; then
      pass "rtt $want ms $v: median $med ms, minimum $low ms, mean $avg ms over $n probes"
    else
      fail "rtt $want ms $v: median $med ms, minimum $low ms, mean $avg ms (want the median" \
        "within 0.2 ms of $want, 0.5 ms from 100 ms on, and then the minimum 0-0.2 ms above it)"
    fi
  done
done

for spec in l10:v4:10 l12:v6:12; do
  IFS=: read -r p v want <<<"$spec"
  f=$WORK/$p-$v
  sent=$(transmitted "$f")
  got=$(received "$f")
  if [[ -z $sent || $sent -ne 2000 ]]; then
    fail "loss $want% $v: ${sent:-0} probes sent, want 2000"
    continue
  fi
  loss=$(awk -v s="$sent" -v r="$got" 'BEGIN { printf "%.2f", 100 * (s - r) / s }')
  if awk -v l="$loss" -v w="$want" 'BEGIN { d = l - w; if (d < 0) d = -d; exit !(d <= 2) }'; then
    pass "loss $want% $v: measured $loss% over $sent probes"
  else
    fail "loss $want% $v: measured $loss% over $sent probes (want $want +- 2)"
  fi
done

# --- rate limit ----------------------------------------------------------------------------------
# TCP through a 4 Mbit/s token bucket: never faster than the rate (plus one bucket of burst,
# which 1.5 MB makes negligible). The lower bound is loose: a loaded machine only slows TCP.
if command -v iperf3 >/dev/null; then
  timeout 60 ip netns exec "$(ns_of r4b)" iperf3 -s -1 -B "${NODE_V4[r4b]}" >/dev/null 2>&1 &
  server=$!
  sleep 0.5
  mbps=$(timeout 60 ip netns exec "$(ns_of r4a)" iperf3 -c "${NODE_V4[r4b]}" -n 1500K -J 2>/dev/null |
    python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))' ||
    echo 0)
  wait "$server" 2>/dev/null || true
  if awk -v m="$mbps" 'BEGIN { exit !(m >= 2 && m <= 4.2) }'; then
    pass "rate limit 4 Mbit/s: TCP received at $mbps Mbit/s"
  else
    fail "rate limit 4 Mbit/s: TCP received at $mbps Mbit/s (want 2..4.2)"
  fi
else
  fail "iperf3 missing (deploy/install-deps.sh --test)"
fi

# --- cut / restore, down / up --------------------------------------------------------------------
# expect_replies LABEL MIN MAX: 100 probes each way family on the d1 pair.
expect_replies() {
  local label=$1 min=$2 max=$3 v
  probe d1a "${NODE_V4[d1b]}" 100 0.01 "$WORK/cut-v4" &
  probe d1a "${NODE_V6[d1b]}" 100 0.01 "$WORK/cut-v6" &
  wait
  for v in v4 v6; do
    local n
    n=$(received "$WORK/cut-$v")
    n=${n:-0}
    if ((n >= min && n <= max)); then
      pass "$label $v: $n/100 replies"
    else
      fail "$label $v: $n/100 replies (want $min..$max)"
    fi
  done
}
before=$(ctl show | sed -nE 's/^link d1a d1b .* dropped_link_down=([0-9]+).*/\1/p')
ctl cut d1a d1b >/dev/null
expect_replies "cut link" 0 0
after=$(ctl show | sed -nE 's/^link d1a d1b .* dropped_link_down=([0-9]+).*/\1/p')
if ((after - before == 200)); then
  pass "cut link: the emulator counted $((after - before)) drops"
else
  fail "cut link: the emulator counted $((after - before)) drops, want 200"
fi
ctl restore d1a d1b >/dev/null
expect_replies "restored link" 100 100
ctl down d1b >/dev/null
expect_replies "node off the overlay" 0 0
ctl up d1b >/dev/null
expect_replies "node back on the overlay" 100 100
# A one-way cut: requests get through, replies do not.
ctl cut d1b d1a --one-way >/dev/null
expect_replies "one-way cut of the reply path" 0 0
ctl restore d1b d1a >/dev/null
expect_replies "one-way cut restored" 100 100

# Clients that hang up before the reply, or send garbage, must not take the emulator down.
python3 - "$SOCKET" <<'PY'
import socket, sys
for payload in (b"show\n", b"x" * 5000, b"", b"set d1a d1b --loss\n"):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.send(payload)
    s.close()
PY
if ctl show >/dev/null; then pass "control socket survives clients that hang up"; else fail "emulator gone after a client hung up"; fi

# For the record: the emulator's own release error over the whole run.
ctl show | sed -n 's/^overlay released=/info: packets released /p'

finish
