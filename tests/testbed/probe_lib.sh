# Shared by the prober's test bed tests and its benchmark. Sourced, never run.
# Brings up the probe topology under one instance, finds the binaries, starts processes inside
# the nodes' namespaces and removes everything again on any exit.
PROBE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$PROBE_DIR/lib.sh"

PROBE_PIDS=()
probe_cleanup() {
  local p
  for p in "${PROBE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PROBE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  "$PROBE_DIR/down" --instance "$INSTANCE" >/dev/null 2>&1 || true
  [[ -n ${WORK:-} ]] && rm -rf -- "$WORK"
}

# probe_up INSTANCE: the overlay of probe_topology.yaml, no services; sets PROBE, EXPORTER, CTL.
probe_up() {
  set_instance "$1"
  WORK=$(mktemp -d)
  trap probe_cleanup EXIT
  trap 'exit 130' INT TERM  # so the EXIT trap runs on a signal too
  PROBE=${MESHFLOW_PROBE:-$(find_built collectors/probe/meshflow-probe)} ||
    die "meshflow-probe not built; set MESHFLOW_BUILD_DIR"
  EXPORTER=${MESHFLOW_EXPORTER:-$(find_built exporter/meshflow-exporter)} ||
    die "meshflow-exporter not built; set MESHFLOW_BUILD_DIR"
  "$PROBE_DIR/up" --instance "$INSTANCE" --topology "$PROBE_DIR/probe_topology.yaml" \
    --overlay "${MESHFLOW_TESTBED_OVERLAY:-tun}" --skip services >/dev/null
  load_nodes
  CTL=${MESHFLOW_OVERLAY_CTL:-$(dirname "$(readlink -f "/proc/$(pid_of emulator)/exe")")/meshflow-overlay-ctl}
  # Only the probe collector in these exporters: the flow collector is not under test here.
  ONLY_PROBE=()
  "$EXPORTER" --help 2>&1 | grep -q -- '--no-collector.flow' && ONLY_PROBE=(--no-collector.flow)
  return 0
}
ctl() { "$CTL" --socket "$SOCKET" "$@" >/dev/null; }

# bg NODE LOGNAME CMD...: a process in NODE's namespace, bounded by a 10 minute timeout,
# killed on exit.
bg() {
  local node=$1 log=$2
  shift 2
  ip netns exec "$(ns_of "$node")" timeout 600 "$@" </dev/null >"$WORK/$log.log" 2>&1 &
  PROBE_PIDS+=($!)
}

# A peer: the real exporter (its UDP reflector on 9474) and a dual-stack TCP listener on 6443
# standing in for the K3s API (the exporter's own HTTP server has no IPv6 in Debian's civetweb).
start_peer() {
  local node=$1
  # Probes come every 10 ms in these tests, above the default per-source reply rate (50/s).
  printf 'node_name: %s\nprobes: {reflector: {max_replies_per_source_per_second: 1000}}\n' \
    "$node" >"$WORK/exporter-$node.yaml"
  bg "$node" "exporter-$node" "$EXPORTER" --config.file "$WORK/exporter-$node.yaml" \
    --web.listen-address "${NODE_V4[$node]}:9474" "${ONLY_PROBE[@]}"
  bg "$node" "listener-$node" python3 -c '
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 6443))
s.listen(4096)
while True:
    c, _ = s.accept()
    c.close()
'
}
wait_peer() {
  local node=$1
  retry 100 ip netns exec "$(ns_of "$node")" curl -sf -m 1 -o /dev/null \
    "http://${NODE_V4[$node]}:9474/metrics" || die "exporter on $node did not start"
  retry 100 ip netns exec "$(ns_of "$node")" bash -c 'exec 3<>/dev/tcp/127.0.0.1/6443' ||
    die "listener on $node did not start"
}

# field FILE PEER METHOD NAME: one value of meshflow-probe's summary line.
field() {
  awk -v p="$2" -v m="$3" -v f="$4" '$1 == "summary" {
      ok = 0; v = "";
      for (i = 2; i <= NF; i++) { split($i, kv, "=");
        if (kv[1] == "peer" && kv[2] == p) ok++;
        if (kv[1] == "method" && kv[2] == m) ok++;
        if (kv[1] == f) v = kv[2] }
      if (ok == 2) print v }' "$1"
}
