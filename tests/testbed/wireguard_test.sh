#!/usr/bin/env bash
# The WireGuard test bed comes up and goes down cleanly, twice in a row, on the reference cluster
# (five nodes, 1-80 ms) and on the wan pair (250 ms, 12 % loss each way), and leaves nothing
# behind: no namespace, no process, no UAPI socket in /var/run/wireguard. Bad input fails with a
# clear message and builds nothing: a topology naming an unknown node, a missing wireguard-go,
# a second up of a running instance with another topology or overlay, and an up while another
# up of the same instance runs. Needs root; about 60 s.
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$DIR/lib.sh"
own_instance mfwg

on() {
  local node=$1
  shift
  timeout 20 ip netns exec "$(ns_of "$node")" "$@"
}

# Nothing of this instance is left: namespaces, run directory, processes, UAPI sockets.
nothing_left() {
  local what=$1 left=""
  left+=$(ip netns list | awk '{print $1}' | grep -- "^$INSTANCE-" | tr '\n' ' ' || true)
  [[ -e $RUN_DIR ]] && left+="run dir $RUN_DIR "
  left+=$(ls /var/run/wireguard 2>/dev/null | grep -- "-$WG_TAG.sock$" | tr '\n' ' ' || true)
  left+=$(pgrep -af "wireguard-go -f wg[0-9]+-$WG_TAG\$" | tr '\n' ' ' || true)
  left+=$(pgrep -af "meshflow-overlay-emulator .*--netns-prefix $INSTANCE-" | tr '\n' ' ' || true)
  if [[ -z $left ]]; then pass "$what: nothing left behind"; else fail "$what: left behind: $left"; fi
}

# expect_fail LABEL PATTERN CMD...: CMD fails and says PATTERN.
expect_fail() {
  local label=$1 pattern=$2 out
  shift 2
  if out=$("$@" 2>&1); then
    fail "$label: succeeded"
  elif grep -qE -- "$pattern" <<<"$out"; then
    pass "$label: $(grep -E -- "$pattern" <<<"$out" | head -n 1)"
  else
    fail "$label: no message matching '$pattern' in: $(tail -n 5 <<<"$out")"
  fi
}

# --- bad input ---------------------------------------------------------------------------------
sed 's/between: \[laptop-agent, acer-agent\]/between: [laptop-agent, nosuch-agent]/' \
  "$DIR/topologies/reference.yaml" >"$WORK/unknown-node.yaml"
expect_fail "a topology naming an unknown node" "unknown-node.yaml:[0-9]+:[0-9]+: .*node" \
  "$DIR/up" --instance "$INSTANCE" --topology "$WORK/unknown-node.yaml" --skip services
nothing_left "after the unknown node"
expect_fail "a missing wireguard-go" "wireguard-go not found" \
  "$DIR/up" --instance "$INSTANCE" --wireguard-go "$WORK/no-such-wireguard-go" --skip services
nothing_left "after the missing wireguard-go"

# --- the reference cluster, twice --------------------------------------------------------------
# Up, a handshake and a ping on every link from ct-serv-jp, the 80 ms pair's round trip, down.
reference_round() {
  local round=$1 out med n
  if ! out=$("$DIR/up" --instance "$INSTANCE" --skip services 2>&1); then
    fail "round $round: up: $(tail -n 5 <<<"$out")"
    return
  fi
  load_nodes
  pass "round $round: up ($(grep -o 'wireguard up:.*' <<<"$out"))"
  local wg_ct
  wg_ct=$(wg_ifname ct-serv-jp)
  if on ct-serv-jp ip link show "$wg_ct" | grep -q 'link/none.*' &&
    on ct-serv-jp ip link show "$wg_ct" | grep -q 'mtu 1420'; then
    pass "round $round: $wg_ct is a raw-IP device (link/none), MTU 1420"
  else
    fail "round $round: $wg_ct: $(on ct-serv-jp ip link show "$wg_ct" 2>&1 | head -n 2)"
  fi
  for n in "${NODE_NAMES[@]}"; do
    [[ $n == ct-serv-jp ]] && continue
    if on ct-serv-jp ping -n -c 3 -i 0.2 -W 3 "${NODE_V4[$n]}" >/dev/null; then
      pass "round $round: ct-serv-jp -> $n over WireGuard"
    else
      fail "round $round: no reply ct-serv-jp -> $n"
    fi
  done
  local handshakes
  handshakes=$(wg show "$wg_ct" latest-handshakes | awk '$2 > 0' | wc -l)
  if ((handshakes == ${#NODE_NAMES[@]} - 1)); then
    pass "round $round: $wg_ct has a handshake with all $handshakes peers"
  else
    fail "round $round: $wg_ct has handshakes with $handshakes of $((${#NODE_NAMES[@]} - 1)) peers"
  fi
  # The emulator saw the tunnel on the underlay, not the overlay's own packets.
  local state
  state=$("$(ctl_path)" --socket "$SOCKET" show)
  if grep -q '^link ct-serv-jp acer-agent .* packets=[1-9]' <<<"$state"; then
    pass "round $round: the emulator carried ct-serv-jp -> acer-agent on the underlay"
  else
    fail "round $round: no packets on the emulator's ct-serv-jp -> acer-agent link"
  fi
  # The underlay (what the emulator shapes) and the overlay (through wireguard-go at both ends)
  # at the same time: the underlay carries the configured RTT; the overlay adds wireguard-go's
  # userspace round trip, which depends on the machine's load (0.8-1 ms in the median at load
  # 6-7, 6-20 ms with 4 busy loops beside it: tests/bench/testbed_rtt_rootcause.sh), so it is
  # printed and bounded loosely, not compared to the configured figure.
  local under_med wg_extra
  median_of() { grep -o 'time=[0-9.]*' | cut -d= -f2 | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
  on ct-serv-jp ping -n -c 20 -i 0.05 -W 2 "${NODE_UNDERLAY[acer-agent]}" >"$WORK/under.txt" &
  local under_pid=$!
  med=$(on ct-serv-jp ping -n -c 20 -i 0.05 -W 2 "${NODE_V4[acer-agent]}" | median_of)
  wait "$under_pid" || true
  under_med=$(median_of <"$WORK/under.txt")
  # ping cuts times above 10 ms to 0.1 ms: 80.0-80.4 is the configured 80 ms.
  if awk -v m="$under_med" 'BEGIN { exit !(m >= 80 && m <= 80.4) }'; then
    pass "round $round: ct-serv-jp <-> acer-agent underlay median $under_med ms (80 ms configured)"
  else
    fail "round $round: ct-serv-jp <-> acer-agent underlay median '$under_med' ms (80 ms configured)"
  fi
  wg_extra=$(awk -v o="$med" -v u="$under_med" 'BEGIN { printf "%.1f", o - u }')
  if awk -v o="$med" -v u="$under_med" 'BEGIN { exit !(o >= u && o - u <= 25) }'; then
    pass "round $round: over WireGuard median $med ms, wireguard-go's share $wg_extra ms" \
      "(load average $(cut -d' ' -f1 /proc/loadavg))"
  else
    fail "round $round: over WireGuard median '$med' ms, underlay '$under_med' ms at the same time"
  fi
  if ((round == 1)); then
    expect_fail "a second up with another topology" "already runs" \
      "$DIR/up" --instance "$INSTANCE" --topology "$DIR/topologies/wan.yaml" --skip services
    expect_fail "a second up with the TUN overlay" "already runs with --overlay wireguard" \
      "$DIR/up" --instance "$INSTANCE" --overlay tun --skip services
    # Another up or down of the instance in progress (the lock holds a live pid: this shell's).
    echo $$ >"${TMPDIR:-/tmp}/meshflow-testbed.$INSTANCE.lock"
    expect_fail "an up while another up of the instance runs" "another up or down" \
      "$DIR/up" --instance "$INSTANCE" --skip services
    rm -f "${TMPDIR:-/tmp}/meshflow-testbed.$INSTANCE.lock"
    if "$DIR/status" --instance "$INSTANCE" >/dev/null; then
      pass "the running test bed survived the refused ups"
    else
      fail "the running test bed is broken after the refused ups"
    fi
  fi
  if out=$("$DIR/down" --instance "$INSTANCE" 2>&1); then pass "round $round: down"; else fail "round $round: down: $out"; fi
  nothing_left "round $round"
}
reference_round 1
reference_round 2

# --- the wan pair: 250 ms, 12 % loss each way, twice ---------------------------------------------
for round in 1 2; do
  if ! out=$("$DIR/up" --instance "$INSTANCE" --topology "$DIR/topologies/wan.yaml" --skip services 2>&1); then
    fail "wan round $round: up: $(tail -n 5 <<<"$out")"
    continue
  fi
  load_nodes
  # Measure the tunnel, not its first handshake: packets sent before the handshake completes
  # wait in wireguard-go's queue, and an initiation lost to the 12 % is retried only after 5 s,
  # so their round trips would be seconds. Ping until the handshake is done (at most 40 s).
  wg_cp=$(wg_ifname cloud-cp)
  for _ in $(seq 40); do
    wg show "$wg_cp" latest-handshakes 2>/dev/null | awk '$2 > 0 {found=1} END {exit !found}' &&
      break
    ip netns exec "$(ns_of cloud-cp)" ping -n -c 1 -W 1 "${NODE_V4[home-worker]}" >/dev/null || true
  done
  pings=$(ip netns exec "$(ns_of cloud-cp)" timeout 60 ping -n -c 60 -i 0.2 -W 1 \
    "${NODE_V4[home-worker]}" || true)
  replies=$(grep -o 'time=[0-9.]*' <<<"$pings" | cut -d= -f2 | sort -g || true)
  # The bound is loose: on a loaded 2-core machine wireguard-go's userspace round trip adds
  # tens of ms at times; the point is a tunnel that handshakes and carries through 12 % loss.
  count=$(grep -c . <<<"$replies" || true)
  med=$(awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}' <<<"$replies")
  if ((count > 0)) && awk -v m="$med" 'BEGIN { exit !(m >= 250 && m <= 350) }'; then
    pass "wan round $round: $count of 60 replies, median $med ms (250 ms, 12 % loss each way)"
  else
    fail "wan round $round: $count replies, median '$med' ms"
  fi
  if out=$("$DIR/down" --instance "$INSTANCE" 2>&1); then pass "wan round $round: down"; else fail "wan round $round: down: $out"; fi
  nothing_left "wan round $round"
done

finish
