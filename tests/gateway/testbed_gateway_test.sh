#!/usr/bin/env bash
# The gateway on the network test bed (reference.yaml): it runs in acer-agent's namespace,
# Prometheus in ct-serv-jp's knows only the gateway (http_sd /targets, /proxy). Four nodes are
# scraped across the overlay, laptop-agent pushes. Taking laptop-agent off the overlay turns
# its `up` to 0 within TTL + one scrape, and back when it returns; a scraped node taken off
# turns to 0 too. Bad pushes over the overlay are refused.
# Needs root; exits 77 (skipped) without the binaries.
#   MESHFLOW_EXPORTER=... MESHFLOW_GATEWAY=... MESHFLOW_OVERLAY_EMULATOR=... \
#   MESHFLOW_OVERLAY_CTL=... testbed_gateway_test.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TESTBED=$HERE/../testbed
source "$TESTBED/lib.sh"
set_instance mfgw
EXPORTER=${MESHFLOW_EXPORTER:-$(find_built exporter/meshflow-exporter || true)}
GATEWAY=${MESHFLOW_GATEWAY:-$(find_built gateway/meshflow-gateway || true)}
CTL=${MESHFLOW_OVERLAY_CTL:-$(find_built tests/testbed/meshflow-overlay-ctl || true)}
for b in "$EXPORTER" "$GATEWAY" "$CTL"; do
  if [[ -z $b || ! -x $b ]]; then
    echo "SKIP: need meshflow-exporter, meshflow-gateway and meshflow-overlay-ctl"
    exit 77
  fi
done
work=$(mktemp -d)
cleanup() {
  "$TESTBED/down" --instance "$INSTANCE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

source "$HERE/lib.sh"
on() { local node=$1; shift; ip netns exec "$(ns_of "$node")" "$@"; }
ctl() { "$CTL" --socket "$SOCKET" "$@"; }

# The bare overlay: the gateway test brings its own exporters and Prometheus.
"$TESTBED/up" --instance "$INSTANCE" --skip services >"$work/up.log" 2>&1 || fail "testbed up"
load_nodes
ACER4=${NODE_V4[acer-agent]}
CT4=${NODE_V4[ct-serv-jp]}
gw="$ACER4:9475"

start_exporter() {  # start_exporter NODE [extra flags...]
  local node=$1; shift
  printf 'node_name: %s\n' "$node" >"$work/$node.yml"
  on "$node" "$EXPORTER" --web.listen-address "${NODE_V4[$node]}:9474" \
    --config.file "$work/$node.yml" --no-collector.flow --no-collector.probe "$@" \
    >"$work/$node.log" 2>&1 &
}
for n in ct-serv-jp gce-agent-tw acer-agent desktop-agent; do start_exporter "$n"; done

head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$work/laptop.token"
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$work/desktop.token"
{
  echo "targets:"
  echo "  static:"
  for n in ct-serv-jp gce-agent-tw acer-agent desktop-agent; do
    echo "    - {node: $n, url: 'http://${NODE_V4[$n]}:9474/metrics'}"
  done
  echo "  push:"
  echo "    - {node: laptop-agent, token_file: laptop.token}"
} >"$work/gateway.yml"
on acer-agent "$GATEWAY" --web.listen-address "$gw" --config.file "$work/gateway.yml" \
  >"$work/gateway.log" 2>&1 &
wait_for 10 on acer-agent curl -sf -o /dev/null "http://$gw/-/healthy" || fail "gateway not up"

start_exporter laptop-agent --push.url "http://$gw/push" \
  --push.token-file "$work/laptop.token" --push.interval 2s

cat >"$work/prometheus.yml" <<YAML
global: {scrape_interval: 2s, scrape_timeout: 2s}
scrape_configs:
  - job_name: meshflow
    http_sd_configs:
      - {url: 'http://$gw/targets', refresh_interval: 2s}
YAML
on ct-serv-jp prometheus --config.file "$work/prometheus.yml" \
  --storage.tsdb.path "$work/tsdb" --web.listen-address "$CT4:9090" \
  >"$work/prometheus.log" 2>&1 &

query() { prom_query "http://$CT4:9090" "$1" ip netns exec "$(ns_of ct-serv-jp)"; }
up_of() { query "up{node=\"$1\"}" | sed -n 's/.*=\([0-9]*\)$/\1/p'; }
all_up() {
  for n in ct-serv-jp gce-agent-tw acer-agent laptop-agent desktop-agent; do
    [[ $(up_of "$n") == 1 ]] || return 1
  done
}
wait_for 60 all_up || fail "not every node up through the gateway: $(query up)"
[[ $(query 'count by (instance) (up)') == "instance=$gw=5" ]] ||
  fail "Prometheus scrapes something else than the gateway: $(query 'count by (instance) (up)')"
pass "Prometheus in ct-serv-jp sees all 5 nodes up, only through the gateway in acer-agent"
[[ $(query 'count(meshflow_build_info)') == "=5" ]] || fail "not every node's own metrics"
pass "each node's own metrics arrive (4 scraped across the overlay, 1 pushed)"

# Pushes over the overlay with a wrong token or for another node's name change nothing.
push_status() {  # push_status NODE TOKEN
  on laptop-agent curl -s -o /dev/null -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $2" --data-binary 'evil_metric 1' "http://$gw/push?node=$1"
}
[[ $(push_status laptop-agent not-the-token-not-the-token) == 401 ]] || fail "wrong token"
[[ $(push_status acer-agent "$(cat "$work/laptop.token")") == 404 ]] ||
  fail "push for a scraped node's name"
# Read whole, then searched: `curl | grep -q` under pipefail fails when grep stops at the first
# match and curl, still writing, gets EPIPE.
proxied=$(on acer-agent curl -s "http://$gw/proxy?target=laptop-agent" || true)
grep -q '^meshflow_build_info' <<<"$proxied" || fail "laptop-agent's last good push lost"
pass "wrong-token and other-node pushes refused"

# Bound: TTL of 3 pushes (6 s) + one scrape interval (2 s) + that scrape's timeout (2 s)
# + 2 s for the query to see the new sample on a loaded machine.
ctl down laptop-agent >/dev/null
t0=$SECONDS
laptop_down() { [[ $(up_of laptop-agent) == 0 ]]; }
wait_for 12 laptop_down || fail "laptop-agent still up $((SECONDS - t0)) s off the overlay"
took=$((SECONDS - t0))
((took >= 3)) || fail "laptop-agent down after ${took}s, before its TTL"
[[ $(up_of acer-agent) == 1 ]] || fail "other nodes affected"
pass "laptop-agent off the overlay: up=0 after ${took}s (TTL 6 s + scrape 2 s)"
ctl up laptop-agent >/dev/null
laptop_up() { [[ $(up_of laptop-agent) == 1 ]]; }
wait_for 12 laptop_up || fail "laptop-agent not back"
pass "laptop-agent back on the overlay: up=1"

ctl down desktop-agent >/dev/null
desktop_down() { [[ $(up_of desktop-agent) == 0 ]]; }
wait_for 10 desktop_down || fail "scraped desktop-agent still up off the overlay"
[[ $(up_of gce-agent-tw) == 1 ]] || fail "a dead node delayed another"
ctl up desktop-agent >/dev/null
desktop_up() { [[ $(up_of desktop-agent) == 1 ]]; }
wait_for 12 desktop_up || fail "desktop-agent not back"
pass "scraped desktop-agent off the overlay: up=0 (others stay 1), and back"
