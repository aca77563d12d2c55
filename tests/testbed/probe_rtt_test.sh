#!/usr/bin/env bash
# The prober on the emulated overlay: configured round trips of 1, 48 and 80 ms are measured
# with a median error under 0.3 ms by every method (icmp, udp, tcp), over IPv4 and IPv6.
# Needs root. Uses its own test bed instance and removes it on any exit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/probe_lib.sh"
probe_up mfprobe-rtt

for n in p1 p48 p80; do start_peer "$n"; done
for n in p1 p48 p80; do wait_peer "$n"; done

args=()
for n in p1 p48 p80; do
  args+=(--peer "$n-v4=${NODE_V4[$n]}" --peer "$n-v6=${NODE_V6[$n]}")
done
late() { "$CTL" --socket "$SOCKET" show | sed -n 's/^overlay released=/released=/p'; }
late_before=$(late)
# 150 probes per peer and method, 20 ms apart: about 3 s.
ip netns exec "$(ns_of src)" timeout 60 "$PROBE" "${args[@]}" --method icmp,udp,tcp \
  --tcp-port 6443 --udp-port 9474 --interval 20ms --timeout 1s --count 150 >"$WORK/rtt.txt"

declare -A RTT=([p1]=0.001 [p48]=0.048 [p80]=0.080)
for n in p1 p48 p80; do
  for v in v4 v6; do
    for m in icmp udp tcp; do
      peer=$n-$v
      received=$(field "$WORK/rtt.txt" "$peer" "$m" received)
      median=$(field "$WORK/rtt.txt" "$peer" "$m" median_seconds)
      p99=$(field "$WORK/rtt.txt" "$peer" "$m" p99_seconds)
      fallbacks=$(field "$WORK/rtt.txt" "$peer" "$m" fallbacks)
      label="$m ${RTT[$n]}s $v"
      if [[ -z $received || $received -lt 145 ]]; then
        fail "$label: ${received:-no} replies of 150"
        grep "peer=$peer method=$m" "$WORK/rtt.txt" || true
        continue
      fi
      # The tolerance, 0.3 ms, from tests/bench/testbed_rtt_rootcause.sh (prober and ping on
      # the same link at the same time, and the emulator's release lateness): the prober's
      # medians sat 0.04-0.08 ms above the configured RTT, quiet or with 4 busy loops beside
      # it, and its means within 0.12 ms of ping's. Load shows only in the tail (means
      # +1.2-1.9 ms, ping's as much as the prober's): the emulator released 1.3 % of packets
      # more than 0.5 ms late, up to 98 ms, although its mover runs SCHED_FIFO. A median moves
      # 0.3 ms only when over half of one pair's probes hit such stalls, which the emulator's
      # counts printed below show. The bound is 4 times the largest median excess measured.
      if awk -v m="$median" -v w="${RTT[$n]}" 'BEGIN { d = m - w; if (d < 0) d = -d; exit !(d < 0.0003) }'
      then
        pass "$label: median $median s, p99 $p99 s, $received replies, $fallbacks fallbacks"
      else
        fail "$label: median $median s, want ${RTT[$n]} +- 0.0003 (p99 $p99 s, $received replies)"
        # The whole summary (mean, jitter, late, reordered), to tell a shifted median from a tail.
        grep "peer=$peer method=$m" "$WORK/rtt.txt" || true
      fi
      [[ $fallbacks == 0 ]] || fail "$label: $fallbacks RTTs without kernel timestamps"
    done
  done
done
# How late the emulator released packets in this run (SCHED_FIFO; a late release means the
# whole CPU was taken away, e.g. the host preempting this VM): a failure beside a large max
# was the machine, not the prober.
# The counts are cumulative: before and after the probe run, so the run's share is the difference.
echo "info: emulator before the probes: $late_before"
echo "info: emulator after the probes:  $(late)"
echo "info: load average $(cut -d' ' -f1-3 /proc/loadavg)"
finish
