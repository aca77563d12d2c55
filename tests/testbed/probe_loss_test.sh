#!/usr/bin/env bash
# Loss as the prober reports it on the emulated overlay:
#   - 12 % loss configured on one direction is measured within +-3 points over 1,000 probes
#     (icmp and udp), and udp puts it on the right side: forward when requests are dropped,
#     return when replies are;
#   - a cut link gives 100 % loss within one deadline in the exporter's metrics, and probes are
#     received again once it is restored.
# Needs root. Uses its own test bed instance and removes it on any exit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/probe_lib.sh"
probe_up mfprobe-loss

start_peer ldst
wait_peer ldst
dst=${NODE_V4[ldst]}

# measure DIRECTION: 1,000 probes per method, 10 ms apart.
measure() {
  ip netns exec "$(ns_of lsrc)" timeout 60 "$PROBE" --peer "ldst=$dst" --method icmp,udp \
    --udp-port 9474 --interval 10ms --timeout 500ms --count 1000 >"$WORK/loss-$1.txt"
}
check_loss() {
  local dir=$1 m=$2 f=$WORK/loss-$1.txt sent lost fwd ret
  sent=$(field "$f" ldst "$m" sent)
  lost=$(field "$f" ldst "$m" lost)
  if [[ -z $sent || $sent -ne 1000 ]]; then
    fail "$dir loss $m: ${sent:-no} probes sent, want 1000"
    return
  fi
  if awk -v l="$lost" 'BEGIN { p = l / 10; exit !(p >= 9 && p <= 15) }'; then
    pass "$dir loss 12% $m: measured $((lost / 10)).$((lost % 10))% of 1000"
  else
    fail "$dir loss 12% $m: measured $lost of 1000 lost, want 90..150"
  fi
  [[ $m == udp ]] || return 0
  fwd=$(field "$f" ldst udp forward_lost)
  ret=$(field "$f" ldst udp return_lost)
  # The last few lost probes may have no later reply to attribute them by.
  if [[ $dir == forward ]]; then
    ((ret == 0 && fwd >= lost - 3)) &&
      pass "forward loss: forward_lost=$fwd return_lost=$ret of lost=$lost" ||
      fail "forward loss: forward_lost=$fwd return_lost=$ret of lost=$lost, want all forward"
  else
    ((fwd == 0 && ret >= lost - 3)) &&
      pass "return loss: forward_lost=$fwd return_lost=$ret of lost=$lost" ||
      fail "return loss: forward_lost=$fwd return_lost=$ret of lost=$lost, want all return"
  fi
}

ctl set lsrc ldst --one-way --loss 12%
measure forward
ctl set lsrc ldst --one-way --loss 0%
ctl set ldst lsrc --one-way --loss 12%
measure return
ctl set ldst lsrc --one-way --loss 0%
for dir in forward return; do
  check_loss "$dir" icmp
  check_loss "$dir" udp
done

# --- a cut link, through the exporter's metrics ---------------------------------------------
cat >"$WORK/exporter-lsrc.yaml" <<YAML
node_name: lsrc
probes:
  interval: 50ms
  timeout: 500ms
  methods: [icmp, udp]
  peers:
    - {name: ldst, address: $dst}
YAML
bg lsrc exporter-lsrc "$EXPORTER" --config.file "$WORK/exporter-lsrc.yaml" \
  --web.listen-address "${NODE_V4[lsrc]}:9474" "${ONLY_PROBE[@]}"
url=http://${NODE_V4[lsrc]}:9474/metrics
retry 100 ip netns exec "$(ns_of lsrc)" curl -sf -m 1 -o /dev/null "$url" || die "exporter on lsrc"
# counters FILE: "sent received lost in_flight" per method, from one scrape.
scrape() { ip netns exec "$(ns_of lsrc)" curl -sf -m 2 "$url" >"$WORK/$1.prom"; }
metric() {
  awk -v n="$2" -v m="$3" '$1 ~ "^"n"\\{" && $1 ~ "dst_node=\"ldst\"" && $1 ~ "method=\""m"\"" { print $2 }' \
    "$WORK/$1.prom"
}
sleep 1
scrape before
ctl cut lsrc ldst
# One deadline (500 ms) and a few intervals more: everything sent after the cut and older than
# the deadline must be lost, nothing received.
sleep 1.5
scrape cut
ctl restore lsrc ldst
sleep 1.5
scrape restored
for m in icmp udp; do
  for s in before cut restored; do
    declare "${s}_sent=$(metric $s meshflow_probe_sent_total $m)"
    declare "${s}_recv=$(metric $s meshflow_probe_received_total $m)"
    declare "${s}_lost=$(metric $s meshflow_probe_lost_total $m)"
    declare "${s}_infl=$(metric $s meshflow_probe_in_flight $m)"
  done
  d_sent=$((cut_sent - before_sent)) d_recv=$((cut_recv - before_recv))
  d_lost=$((cut_lost - before_lost))
  # Only a probe or two sent between the first scrape and the cut may still be answered; every
  # other probe is lost, or in flight if younger than one deadline (at most 500/50 + 1).
  if ((d_sent >= 20 && d_recv <= 2 && cut_infl <= 11 &&
    d_lost == d_sent - d_recv - (cut_infl - before_infl))); then
    pass "cut $m: $d_sent sent, $d_recv received, $d_lost lost, $cut_infl in flight (deadline 500 ms)"
  else
    fail "cut $m: $d_sent sent, $d_recv received, $d_lost lost, $cut_infl in flight"
  fi
  r_recv=$((restored_recv - cut_recv))
  r_lost=$((restored_lost - cut_lost))
  # Only probes sent during the cut may still be lost after the restore: those in flight at the
  # second scrape and the one or two sent while the restore command ran.
  if ((r_recv >= 15 && r_lost <= cut_infl + 2)); then
    pass "restored $m: $r_recv received, $r_lost lost (of $cut_infl in flight at the cut)"
  else
    fail "restored $m: $r_recv received, $r_lost lost, $cut_infl in flight at the cut"
  fi
  sum=$((restored_sent - restored_recv - restored_infl))
  ((sum == restored_lost)) && pass "$m: sent - received - in flight == lost ($sum)" ||
    fail "$m: sent - received - in flight = $sum but lost = $restored_lost"
done
finish
