#!/usr/bin/env bash
# Live flow accounting against tshark, in two network namespaces this script makes.
#
#   mfcap-srv-<pid>: redis-server and PostgreSQL on 10.231.0.1, end "mfcap-s<pid>" of a veth pair
#   mfcap-cli-<pid>: the clients (redis-benchmark, pgbench), meshflow-exporter and tshark, both
#                    capturing the other end "mfcap-c<pid>" (10.231.0.2)
#
# 1. Bytes and packets per role (redis, postgresql) and in total agree exactly with tshark's
#    capture of the same interface over the same window.
# 2. The interface is deleted (ip link del) and made again: the exporter shows it down, picks it
#    up again within seconds, and its counters carry on from where they were. The exporter runs
#    as it is deployed, switched to an unprivileged user (--runas nobody, CAP_NET_RAW kept), so
#    the re-open proves the capture thread still may open handles.
# 3. A reload with other interface patterns; a filter the kernel refuses is reported.
#
# Needs root; exits 77 (skipped) without it. Every process and namespace it makes is removed on
# exit, also after a failure. Usage: flow_live_test.sh PATH/TO/meshflow-exporter
set -euo pipefail

EXPORTER=${1:?usage: $0 PATH/TO/meshflow-exporter}
if [[ $(id -u) != 0 ]]; then
  echo "SKIP: needs root for network namespaces and capture"
  exit 77
fi
for tool in ip redis-server redis-cli redis-benchmark pgbench tshark curl runuser setpriv; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $PG_BIN/postgres ]] || { echo "SKIP: PostgreSQL server is not installed"; exit 77; }

ID=$$
NS_SRV=mfcap-srv-$ID
NS_CLI=mfcap-cli-$ID
VS=mfcap-s$ID
VC=mfcap-c$ID
SRV_IP=10.231.0.1
CLI_IP=10.231.0.2
PORT=9474
TMP=$(mktemp -d)
PIDS=()

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$NS_SRV" 2>/dev/null || true
  ip netns del "$NS_CLI" 2>/dev/null || true
  if [[ $rc != 0 ]]; then
    echo "--- exporter log (tail)"; tail -n 30 "$TMP/exporter.log" 2>/dev/null || true
    for log in tshark pgbench-init pgbench redis-benchmark pg; do
      [[ -s $TMP/$log.log ]] && { echo "--- $log log (tail)"; tail -n 15 "$TMP/$log.log"; }
    done
  fi
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT INT TERM

fail() { echo "FAIL: $*"; exit 1; }
in_cli() { ip netns exec "$NS_CLI" "$@"; }

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local limit=$1; shift
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

make_link() {
  ip -n "$NS_CLI" link add "$VC" type veth peer name "$VS" netns "$NS_SRV"
  ip -n "$NS_SRV" addr add "$SRV_IP/24" dev "$VS"
  ip -n "$NS_CLI" addr add "$CLI_IP/24" dev "$VC"
  ip -n "$NS_SRV" link set "$VS" up
  ip -n "$NS_CLI" link set "$VC" up
}

ip netns add "$NS_SRV"
ip netns add "$NS_CLI"
for ns in "$NS_SRV" "$NS_CLI"; do
  ip -n "$ns" link set lo up
  # No IPv6 autoconfiguration chatter (router solicitations, MLD) at random moments: the window
  # must hold only the traffic this test makes, so totals can be compared exactly.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
make_link

# --- servers, started directly with temporary data directories
# Started with `ip netns exec` directly (not through a shell function) so that $! is the server
# itself and the trap's kill reaches it.
ip netns exec "$NS_SRV" redis-server --bind "$SRV_IP" --port 6379 --save '' --appendonly no --dir "$TMP" \
  --protected-mode no --logfile "$TMP/redis.log" &
PIDS+=($!)
mkdir -p "$TMP/pg" "$TMP/pgsock"
chown postgres: "$TMP/pg" "$TMP/pgsock"
chmod 755 "$TMP"
runuser -u postgres -- "$PG_BIN/initdb" -D "$TMP/pg" -A trust -U postgres --no-sync >"$TMP/initdb.log"
echo "host all all $CLI_IP/32 trust" >>"$TMP/pg/pg_hba.conf"
ip netns exec "$NS_SRV" setpriv --reuid=postgres --regid=postgres --init-groups \
  "$PG_BIN/postgres" -D "$TMP/pg" -c listen_addresses="$SRV_IP" \
  -c port=5432 -c unix_socket_directories="$TMP/pgsock" -c fsync=off >"$TMP/pg.log" 2>&1 &
PIDS+=($!)
wait_for 20 in_cli redis-cli -h "$SRV_IP" ping >/dev/null 2>&1 || fail "redis did not start"
wait_for 30 in_cli "$PG_BIN/pg_isready" -q -h "$SRV_IP" -p 5432 || fail "postgres did not start"
# The schema load is not part of the compared window.
timeout 60 ip netns exec "$NS_CLI" pgbench -i -s 1 -q -h "$SRV_IP" -U postgres postgres \
  >"$TMP/pgbench-init.log" 2>&1 || fail "pgbench -i failed"

# --- capture: the exporter and tshark on the same interface
# $1: the include pattern of the capture section.
write_config() {
  cat >"$TMP/meshflow.yml" <<EOF
node_name: client
nodes:
  - name: server
    addresses: [$SRV_IP/32]
  - name: client
    addresses: [$CLI_IP/32]
flows:
  capture:
    interfaces:
      include: ["$1"]
      exclude: []
    buffer_timeout: 50ms
    rescan_interval: 1s
    # As large as tshark's (-B 64): on a loaded test machine the capture thread can wait long
    # enough for a 2 MiB ring to fill during redis-benchmark's bursts, and a kernel drop makes
    # an exact comparison impossible.
    buffer_bytes: 67108864
EOF
}
write_config "^$VC\$"
ip netns exec "$NS_CLI" "$EXPORTER" --config.file "$TMP/meshflow.yml" --web.listen-address "127.0.0.1:$PORT" \
  --no-collector.probe --runas nobody >"$TMP/exporter.log" 2>&1 &
EXPORTER_PID=$!
PIDS+=($EXPORTER_PID)
ip netns exec "$NS_CLI" tshark -i "$VC" -s 128 -B 64 -w "$TMP/window.pcapng" >"$TMP/tshark.log" 2>&1 &
TSHARK_PID=$!
PIDS+=($TSHARK_PID)

scrape() { in_cli curl -sf --max-time 5 "http://127.0.0.1:$PORT/metrics"; }
# Sum of the samples of metric $1 whose labels contain every further argument.
metric() {
  local name=$1; shift
  scrape | awk -v name="$name" -v want="$*" '
    BEGIN { n = split(want, w, " ") }
    index($0, name "{") == 1 || $1 == name {
      for (i = 1; i <= n; i++) if (index($0, w[i]) == 0) next
      sum += $NF; found = 1
    }
    END { if (found) printf "%.0f\n", sum; else print "absent" }'
}
is_up() { [[ $(metric meshflow_capture_up "iface=\"$VC\"") == "$1" ]]; }

wait_for 20 is_up 1 || fail "exporter never captured $VC"
# "Capturing on" is printed before dumpcap opens the interface; "Capture started" once it has.
wait_for 20 grep -q "Capture started" "$TMP/tshark.log" || fail "tshark did not start"

# --- bounded traffic
timeout 60 ip netns exec "$NS_CLI" redis-benchmark -h "$SRV_IP" -p 6379 -n 20000 -c 10 -q \
  -t set,get >"$TMP/redis-benchmark.log" 2>&1 || fail "redis-benchmark failed"
timeout 60 ip netns exec "$NS_CLI" pgbench -h "$SRV_IP" -U postgres -n -t 200 -c 2 postgres \
  >"$TMP/pgbench.log" 2>&1 || fail "pgbench failed"
# Every packet has been handed over once a block timeout (50 ms) has passed; the last ACKs of
# closing connections are a few milliseconds behind the clients' exit.
sleep 1
SCRAPE=$(scrape) || fail "scrape failed"
echo "$SCRAPE" >"$TMP/window.prom"
if command -v promtool >/dev/null; then
  # One family per name: the capture families and the pipeline's must not collide.
  promtool check metrics <"$TMP/window.prom" >"$TMP/promtool.log" 2>&1 ||
    fail "promtool check metrics: $(cat "$TMP/promtool.log")"
  echo "ok   promtool check metrics on the live exposition"
fi
# SIGTERM, not SIGINT: a background job of a script starts with SIGINT ignored.
kill -TERM "$TSHARK_PID"
wait "$TSHARK_PID" || true
if grep -q "dropped" "$TMP/tshark.log"; then
  fail "tshark dropped packets, a comparison would mean nothing: $(grep dropped "$TMP/tshark.log")"
fi

from_window() {
  local name=$1; shift
  awk -v name="$name" -v want="$*" '
    BEGIN { n = split(want, w, " ") }
    index($0, name "{") == 1 {
      for (i = 1; i <= n; i++) if (index($0, w[i]) == 0) next
      sum += $NF
    }
    END { printf "%.0f\n", sum }' "$TMP/window.prom"
}
# IP bytes as tshark reads them: the IPv4 total length of every IP packet.
tshark_sum() {
  tshark -r "$TMP/window.pcapng" -Y "$1" -T fields -e ip.len 2>/dev/null |
    awk -F, '{ sum += $1; n++ } END { printf "%.0f %.0f\n", sum, n }'
}

status=0
check() {
  local what=$1 ours=$2 theirs=$3 peer=${4:-tshark}
  if [[ $ours == "$theirs" ]]; then
    printf 'ok   %-28s meshflow %-12s %s %s\n' "$what" "$ours" "$peer" "$theirs"
  else
    printf 'FAIL %-28s meshflow %-12s %s %s\n' "$what" "$ours" "$peer" "$theirs"
    status=1
  fi
}
IFACE="iface=\"$VC\""
for role in redis:6379 postgresql:5432; do
  name=${role%%:*} port=${role##*:}
  read -r t_bytes t_packets < <(tshark_sum "ip and tcp.port == $port")
  check "$name bytes" "$(from_window meshflow_flow_bytes_total "$IFACE" "role=\"$name\"")" "$t_bytes"
  check "$name packets" "$(from_window meshflow_flow_packets_total "$IFACE" "role=\"$name\"")" "$t_packets"
done
read -r t_bytes t_packets < <(tshark_sum "ip")
check "all IP bytes" "$(from_window meshflow_flow_bytes_total "$IFACE")" "$t_bytes"
check "all IP packets" "$(from_window meshflow_flow_packets_total "$IFACE")" "$t_packets"
check "redis client->server bytes" \
  "$(from_window meshflow_flow_bytes_total "$IFACE" 'role="redis"' 'src_node="client"' 'dst_node="server"')" \
  "$(tshark_sum "ip and tcp.dstport == 6379" | cut -d' ' -f1)"
check "kernel drops" "$(from_window meshflow_capture_dropped_packets_total "$IFACE" 'where="kernel"')" 0 expected
check "filter in kernel" "$(from_window meshflow_capture_filter_in_kernel "$IFACE")" 1 expected
[[ $(from_window meshflow_capture_ring_bytes "$IFACE") -gt 0 ]] || { echo "FAIL ring size not read back"; status=1; }
((status == 0)) || fail "meshflow and tshark disagree"

# --- the interface vanishes and comes back
redis_before=$(metric meshflow_flow_bytes_total "$IFACE" 'role="redis"')
packets_before=$(metric meshflow_capture_packets_total "$IFACE")
ip -n "$NS_CLI" link del "$VC"
wait_for 10 is_up 0 || fail "$VC deleted but still shown up"
echo "ok   deleted interface shown with meshflow_capture_up 0"
make_link
start=$(date +%s%N)
wait_for 10 is_up 1 || fail "$VC re-created but not captured again within 10 s"
echo "ok   re-created interface captured again within $((($(date +%s%N) - start) / 1000000)) ms"
[[ $(metric meshflow_flow_bytes_total "$IFACE" 'role="redis"') == "$redis_before" ]] ||
  fail "redis bytes changed across the re-creation without traffic"
(($(metric meshflow_capture_packets_total "$IFACE") >= packets_before)) ||
  fail "capture packet counter went backwards"
wait_for 20 in_cli redis-cli -h "$SRV_IP" ping >/dev/null 2>&1 || fail "redis unreachable after re-creation"
timeout 30 ip netns exec "$NS_CLI" redis-benchmark -h "$SRV_IP" -p 6379 -n 2000 -c 2 -q -t get \
  >/dev/null 2>&1 || fail "redis-benchmark after re-creation failed"
sleep 1
redis_after=$(metric meshflow_flow_bytes_total "$IFACE" 'role="redis"')
((redis_after > redis_before)) || fail "no redis bytes counted after re-creation"
echo "ok   counters carried on: redis bytes $redis_before -> $redis_after"

# --- a reload with other interface patterns: they take effect, counters survive
VD=mfcap-d$ID
ip -n "$NS_CLI" link add "$VD" type veth peer name "mfcap-e$ID"
ip -n "$NS_CLI" link set "$VD" up
ip -n "$NS_CLI" link set "mfcap-e$ID" up
sleep 0.5
[[ $(metric meshflow_capture_up "iface=\"$VD\"") == absent ]] || fail "$VD captured before it was selected"
write_config "^($VD|mfcap-x)\$"
kill -HUP "$EXPORTER_PID"
wait_for 10 is_up 0 || fail "$VC still captured after the reload deselected it"
vd_up() { [[ $(metric meshflow_capture_up "iface=\"$VD\"") == 1 ]]; }
wait_for 10 vd_up || fail "$VD not captured after the reload selected it"
[[ $(metric meshflow_flow_bytes_total "$IFACE" 'role="redis"') == "$redis_after" ]] ||
  fail "redis bytes of $VC changed across the reload"
echo "ok   reload: $VD captured, $VC released, its counters kept"

# --- VLAN-tagged frames (one tag, QinQ) pass the kernel filter and count; tagged ARP does not
if /usr/bin/python3 "$(dirname "$0")/make_vlan_frames.py" "$TMP/vlan.pcap" 2>/dev/null; then
  VDF="iface=\"$VD\""
  ip netns exec "$NS_CLI" tcpreplay -q -i "mfcap-e$ID" "$TMP/vlan.pcap" >/dev/null 2>&1 ||
    fail "tcpreplay of the tagged frames failed"
  vlan_counted() {
    [[ $(metric meshflow_flow_packets_total "$VDF" 'role="redis"') == 5 &&
      $(metric meshflow_flow_packets_total "$VDF" 'role="postgresql"') == 3 &&
      $(metric meshflow_flow_packets_total "$VDF" 'role="dns"') == 4 ]]
  }
  wait_for 5 vlan_counted || fail "tagged frames not counted: $(scrape | grep "^meshflow_flow_packets_total{$VDF")"
  sleep 1.1  # the next pcap_stats read
  [[ $(metric meshflow_capture_packets_total "$VDF") == 12 ]] ||
    fail "the filter let $(metric meshflow_capture_packets_total "$VDF") of 12 IP frames plus 2 tagged ARP through"
  echo "ok   802.1Q and QinQ frames counted by role, tagged ARP kept out by the kernel filter"
else
  echo "skip VLAN check: python3-scapy is not installed"
fi

# --- the kernel refuses the filter: libpcap filters in userland, meshflow says so, still counts
# net.core.optmem_max (the bound on a socket filter's size) is per namespace since Linux 6.9; on
# older kernels a namespace has no such file and this part is skipped.
if ip netns exec "$NS_CLI" sysctl -qw net.core.optmem_max=128 2>/dev/null; then
  write_config "^($VD|$VC)\$"
  kill -HUP "$EXPORTER_PID"
  wait_for 10 is_up 1 || fail "$VC not captured again after the reload"
  [[ $(metric meshflow_capture_filter_in_kernel "$IFACE") == 0 ]] ||
    fail "the kernel refused the filter (optmem_max 128) but meshflow_capture_filter_in_kernel is not 0"
  timeout 30 ip netns exec "$NS_CLI" redis-benchmark -h "$SRV_IP" -p 6379 -n 1000 -c 1 -q -t get \
    >/dev/null 2>&1 || fail "redis-benchmark with the userland filter failed"
  sleep 1
  (($(metric meshflow_flow_bytes_total "$IFACE" 'role="redis"') > redis_after)) ||
    fail "nothing counted with the filter in userland"
  echo "ok   filter refused by the kernel: meshflow_capture_filter_in_kernel 0, still counting"
else
  echo "skip userland filter check: net.core.optmem_max is not per namespace on this kernel"
fi
echo "PASS"
