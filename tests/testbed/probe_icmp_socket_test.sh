#!/usr/bin/env bash
# Both ICMP paths of the prober, each in a namespace of its own on loopback, IPv4 and IPv6:
#   - net.ipv4.ping_group_range admits the group: an unprivileged ICMP datagram socket;
#   - it does not ("1 0", the kernel default): a raw socket (the test runs as root).
# Every echo is answered, with kernel timestamps. Needs root; removes its namespaces on any exit.
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$DIR/lib.sh"
PROBE=${MESHFLOW_PROBE:-$(find_built collectors/probe/meshflow-probe)} ||
  die "meshflow-probe not built; set MESHFLOW_BUILD_DIR"
[[ $(id -u) == 0 ]] || die "needs root (network namespaces)"
NS=(mfprobe-icmp-dgram mfprobe-icmp-raw)
WORK=$(mktemp -d)
cleanup() {
  local ns
  for ns in "${NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failures=0
check() {
  local ns=$1 range=$2 want=$3 out=$WORK/$1.txt
  ip netns add "$ns"
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv4.ping_group_range="$range"
  ip netns exec "$ns" timeout 30 "$PROBE" --peer v4=127.0.0.1 --peer v6=::1 --method icmp \
    --interval 10ms --timeout 500ms --count 50 >"$out"
  local mode v4 v6 fb4 fb6
  mode=$(sed -n 's/^prober icmp_socket=//p' "$out")
  v4=$(grep -o 'peer=v4 method=icmp sent=50 received=[0-9]*' "$out" | sed 's/.*=//')
  v6=$(grep -o 'peer=v6 method=icmp sent=50 received=[0-9]*' "$out" | sed 's/.*=//')
  fb4=$(grep 'peer=v4 method=icmp' "$out" | grep -o 'fallbacks=[0-9]*' | cut -d= -f2)
  fb6=$(grep 'peer=v6 method=icmp' "$out" | grep -o 'fallbacks=[0-9]*' | cut -d= -f2)
  if [[ $mode == "$want" && $v4 == 50 && $v6 == 50 && $fb4 == 0 && $fb6 == 0 ]]; then
    echo "ok:   ping_group_range \"$range\": $mode socket, 50/50 IPv4 and IPv6 echoes, kernel timestamps"
  else
    echo "FAIL: ping_group_range \"$range\": socket ${mode:-?} (want $want), received v4=${v4:-?} v6=${v6:-?}, fallbacks ${fb4:-?}/${fb6:-?}"
    cat "$out"
    failures=$((failures + 1))
  fi
}
check mfprobe-icmp-dgram "0 2147483647" datagram
check mfprobe-icmp-raw "1 0" raw
((failures == 0)) || exit 1
echo "all checks passed"
