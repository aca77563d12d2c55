# shellcheck shell=bash
# Sourced by the live capture benchmarks: a network namespace $NS with a veth pair, $TX sending
# into $RX, where an exporter listening on 127.0.0.1:$PORT inside the namespace captures. IPv6 is
# off so that the kernel adds no packets of its own to what is counted.
in_ns() { ip netns exec "$NS" "$@"; }

veth_ns_up() {
  ip netns add "$NS"
  ip -n "$NS" link add "$TX" type veth peer name "$RX"
  in_ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$NS" link set lo up
  ip -n "$NS" link set "$TX" up
  ip -n "$NS" link set "$RX" up
}

scrape() { in_ns curl -sf --max-time 5 "http://127.0.0.1:$PORT/metrics"; }

# metric NAME [LABEL_TEXT]: the sum of NAME's samples whose line contains LABEL_TEXT.
metric() {
  local name=$1 want=${2:-}
  scrape | awk -v name="$name" -v want="$want" '
    (index($0, name "{") == 1 || $1 == name) && index($0, want) { sum += $NF }
    END { printf "%.0f\n", sum }'
}
