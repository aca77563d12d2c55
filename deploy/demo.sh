#!/usr/bin/env bash
# meshflow demo: the reference hybrid K3s cluster (five nodes, tailscale-like overlay with the
# users' measured round-trip times, a home LAN with flannel VXLAN) in network namespaces on this
# machine, with its services and traffic, a meshflow exporter on every node and Prometheus
# scraping them every 5 s. Prints where to look; Ctrl-C (or --duration) tears it all down.
#
#   sudo deploy/demo.sh [--exporter PATH] [--topology FILE] [--duration SECONDS]
#                       [--host-net A.B.C.D/30]
#
# Needs root, a build (cmake --build <dir>; MESHFLOW_BUILD_DIR=<dir> if it is not under
# build/) and the packages from deploy/install-deps.sh --test.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TESTBED=$REPO/tests/testbed
DEMO_INSTANCE=mfdemo
TOPOLOGY=$TESTBED/topologies/reference.yaml
DURATION=3600
# A /30 for a veth from the host into the Prometheus node's namespace, so a browser on this
# machine can open Prometheus. Pick another with --host-net if it clashes with a local network.
HOST_NET=10.254.74.0/30
EXPORTER_OPT=()
while (($#)); do
  case $1 in
    --exporter) EXPORTER_OPT=(--exporter "$2"); shift 2 ;;
    --topology) TOPOLOGY=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --host-net) HOST_NET=$2; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "demo: needs root (network namespaces); try sudo" >&2; exit 1; }
[[ $DURATION =~ ^[0-9]+$ ]] || { echo "demo: --duration takes seconds" >&2; exit 2; }
[[ $HOST_NET =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.([0-9]+)/30$ ]] ||
  { echo "demo: --host-net takes an IPv4 /30 such as 10.254.74.0/30" >&2; exit 2; }
host_ip="${BASH_REMATCH[1]}.$((BASH_REMATCH[2] + 1))"
ns_ip="${BASH_REMATCH[1]}.$((BASH_REMATCH[2] + 2))"
VETH=mfdemo0

teardown() {
  trap - INT TERM EXIT
  [[ -n ${sleep_pid:-} ]] && kill "$sleep_pid" 2>/dev/null
  echo
  echo "demo: tearing down"
  ip link del "$VETH" 2>/dev/null || true
  "$TESTBED/down" --instance "$DEMO_INSTANCE" || true
}
trap teardown INT TERM EXIT

# Traffic runs as long as the demo.
"$TESTBED/up" --instance "$DEMO_INSTANCE" --topology "$TOPOLOGY" --traffic-duration "$DURATION" \
  --require-exporter "${EXPORTER_OPT[@]}"

source "$TESTBED/lib.sh"
set_instance "$DEMO_INSTANCE"
load_nodes
prom_node=$(cat "$RUN_DIR/prometheus-node")
prom_ns=$(ns_of "$prom_node")
ip link del "$VETH" 2>/dev/null || true
ip link add "$VETH" type veth peer name host0 netns "$prom_ns"
ip addr add "$host_ip/30" dev "$VETH"
ip link set "$VETH" up
ip -n "$prom_ns" addr add "$ns_ip/30" dev host0
ip -n "$prom_ns" link set host0 up

ctl=$(ctl_path)
cat <<MSG

  meshflow demo is up: ${#NODE_NAMES[@]} nodes, one network namespace each ($PREFIX<node>).

  Prometheus (on $prom_node), from this machine:   http://$ns_ip:9090/
    targets:  http://$ns_ip:9090/targets
    try:      up
              rate(meshflow_probe_rtt_seconds_sum[1m]) / rate(meshflow_probe_rtt_seconds_count[1m])

  An exporter's metrics (they listen on the overlay, inside the namespaces):
MSG
for n in "${NODE_NAMES[@]}"; do
  printf '    ip netns exec %-22s curl -s http://%s:9474/metrics\n' "$(ns_of "$n")" "${NODE_V4[$n]}"
done
cat <<MSG

  Change the network and watch the metrics follow:
    export MESHFLOW_OVERLAY_SOCKET=$SOCKET
    $ctl show
    $ctl set ct-serv-jp acer-agent --rtt 200ms --loss 5%
    $ctl cut gce-agent-tw acer-agent        ($ctl restore ... to undo)
    $ctl down laptop-agent                  (takes the node off the overlay; up to undo)

  A shell on a node:  ip netns exec $prom_ns bash
  Logs:               $RUN_DIR/logs/

  Ctrl-C tears everything down (or after ${DURATION}s).
MSG
# Bounded: returns after DURATION, or at once on Ctrl-C (the trap tears down).
sleep "$DURATION" &
sleep_pid=$!
wait "$sleep_pid"
