#!/usr/bin/env bash
# The gateway scrapes on its own and remote-writes to real receivers started here:
# VictoriaMetrics (single node) and Prometheus with its remote-write receiver. Two exporters are
# scraped, one node is dead, one pushes. Checks that every node's series arrive in both with the
# node, job, instance and external cluster labels and the exporters' own values, that
# write_relabel_configs drops what it names, that `up` is synthesized per node, and that a
# pushing node that stops gets its series ended by staleness markers. Loopback only.
#   remote_write_e2e.sh PATH/TO/meshflow-exporter PATH/TO/meshflow-gateway
set -euo pipefail

exporter=$1
# shellcheck disable=SC2034  # used by start_gateway
gateway=$2
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

vm_port=$(free_port)
victoria-metrics -httpListenAddr "127.0.0.1:$vm_port" -storageDataPath "$work/vm" \
  -search.latencyOffset=0s -retentionPeriod=1d >"$work/victoria-metrics.log" 2>&1 &
pids+=($!)
prom_port=$(free_port)
printf 'global: {scrape_interval: 1h}\n' >"$work/prometheus.yml"
prometheus --config.file "$work/prometheus.yml" --storage.tsdb.path "$work/tsdb" \
  --web.listen-address "127.0.0.1:$prom_port" --web.enable-remote-write-receiver \
  >"$work/prometheus.log" 2>&1 &
pids+=($!)
wait_for 30 curl -sf "http://127.0.0.1:$vm_port/health" -o /dev/null ||
  fail "VictoriaMetrics did not start"
wait_for 30 curl -sf "http://127.0.0.1:$prom_port/-/ready" -o /dev/null ||
  fail "Prometheus did not start"

start_loopback_nodes
printf 'vm-bearer-token\n' >"$work/vm.token"
{
  loopback_targets
  cat <<YAML
scrape_interval: 1s
remote_write:
  - url: http://127.0.0.1:$vm_port/api/v1/write
    name: victoria-metrics
    bearer_token_file: vm.token
    headers: {X-Scope-OrgID: home-lab}
    external_labels: {cluster: home-lab}
    write_relabel_configs:
      - {source_labels: [__name__], regex: 'go_.*|process_virtual_memory_bytes', action: drop}
    queue_config: {batch_send_deadline: 200ms}
  - url: http://127.0.0.1:$prom_port/api/v1/write
    name: prometheus
    external_labels: {cluster: home-lab}
    queue_config: {batch_send_deadline: 200ms}
YAML
} >"$work/gateway.yml"
start_gateway gateway
# shellcheck disable=SC2154  # set by start_gateway
gw="127.0.0.1:$gw_port"
start_exporter laptop-agent 127.0.0.4 --push.url "http://$gw/push" \
  --push.token-file "$work/laptop.token" --push.interval 1s
pusher_pid=${pids[-1]}
pass "gateway on $gw writing to VictoriaMetrics :$vm_port and Prometheus :$prom_port"

for receiver in "victoria-metrics http://127.0.0.1:$vm_port" \
                "prometheus http://127.0.0.1:$prom_port"; do
  read -r name url <<<"$receiver"
  query() { prom_query "$url" "$1"; }
  up_of() { query "up{node=\"$1\",cluster=\"home-lab\",job=\"meshflow\",instance=\"$1\"}" |
              sed -n 's/.*=\([0-9]*\)$/\1/p'; }
  settled() {
    [[ $(up_of acer-agent) == 1 && $(up_of ct-serv-jp) == 1 && $(up_of laptop-agent) == 1 &&
       $(up_of gce-agent-tw) == 0 ]]
  }
  wait_for 60 settled || fail "$name: up per node: $(query up)"
  pass "$name: up per node: $(query up | tr '\n' ' ')"

  for n in acer-agent ct-serv-jp laptop-agent; do
    # Values that do not move: what the exporter serves is what the receiver holds.
    # shellcheck disable=SC2154  # acer_url and jp_url: set by start_loopback_nodes
    case $n in
      acer-agent) body=$(curl -sf "$acer_url") ;;
      ct-serv-jp) body=$(curl -sf "$jp_url") ;;
      laptop-agent) body=$(curl -sf "http://$gw/proxy?target=laptop-agent") ;;
    esac
    for metric in process_max_fds process_start_time_seconds; do
      want=$(awk -v m="$metric" '$1 == m {print $2}' <<<"$body")
      [[ -n $want ]] || fail "$n serves no $metric"
      got=$(query "$metric{node=\"$n\",cluster=\"home-lab\"}" | sed 's/.*=//')
      python3 -c "import sys; sys.exit(abs(float('$want') - float('${got:-nan}')) > 1e-6 * abs(float('$want')))" ||
        fail "$name: $metric of $n is '$got', the exporter says $want"
    done
    labels=$(query "meshflow_build_info{node=\"$n\"}")
    [[ $labels == *"cluster=home-lab"* && $labels == *"instance=$n"* &&
       $labels == *"job=meshflow"* && $labels == *"version="* ]] ||
      fail "$name: meshflow_build_info of $n has labels $labels"
    [[ $(query "scrape_samples_scraped{node=\"$n\"} > 0" | wc -l) == 1 ]] ||
      fail "$name: no scrape_samples_scraped for $n"
  done
  pass "$name: each node's values and labels as the exporters serve them"
done

[[ -z $(prom_query "http://127.0.0.1:$vm_port" 'count(process_virtual_memory_bytes)') ]] ||
  fail "write_relabel_configs did not drop process_virtual_memory_bytes for VictoriaMetrics"
[[ -n $(prom_query "http://127.0.0.1:$prom_port" 'count(process_virtual_memory_bytes)') ]] ||
  fail "process_virtual_memory_bytes missing at Prometheus, which has no relabelling"
pass "write_relabel_configs drop per endpoint"

# The pushing node stops: after its TTL (3 pushes of 1 s) the gateway sends up 0 and staleness
# markers, so its series end at once rather than 5 minutes later.
kill -TERM "$pusher_pid"
for receiver in "victoria-metrics http://127.0.0.1:$vm_port" \
                "prometheus http://127.0.0.1:$prom_port"; do
  read -r name url <<<"$receiver"
  gone() {
    [[ -z $(prom_query "$url" 'meshflow_build_info{node="laptop-agent"}') &&
       $(prom_query "$url" 'up{node="laptop-agent"}' | sed 's/.*=//') == 0 ]]
  }
  wait_for 20 gone || fail "$name: laptop-agent still has series after its TTL: \
$(prom_query "$url" 'meshflow_build_info{node="laptop-agent"}') up=$(prom_query "$url" 'up{node="laptop-agent"}')"
done
pass "a pushing node past its TTL: up 0 and its series ended by staleness markers in both"

curl -sf "http://$gw/metrics" >"$work/gw_metrics"
for r in victoria-metrics prometheus; do
  sent=$(awk -v r="$r" '$1 == "meshflow_remote_write_samples_sent_total{remote_name=\"" r "\"}" {print $2}' "$work/gw_metrics")
  failed=$(awk -v r="$r" '$1 == "meshflow_remote_write_samples_failed_total{remote_name=\"" r "\"}" {print $2}' "$work/gw_metrics")
  [[ ${sent:-0} != 0 && $failed == 0 ]] || fail "$r: sent=$sent failed=$failed"
  echo "  $r: samples sent $sent, failed $failed"
done
promtool check metrics <"$work/gw_metrics" || fail "promtool check metrics on the gateway"
pass "remote_write self metrics: every sample acknowledged, none refused"
