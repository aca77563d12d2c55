#!/usr/bin/env bash
# Routing of alerts/alertmanager.yml, checked with `amtool config routes test`: each case is a
# label set and the receiver it must reach.
set -euo pipefail
config=${1:?usage: routes_test.sh ALERTMANAGER_YML}

amtool check-config "$config" >/dev/null

failures=0
cases=0
expect() {
  local receiver=$1
  shift
  cases=$((cases + 1))
  if ! out=$(amtool config routes test --config.file="$config" --verify.receivers="$receiver" "$@" 2>&1); then
    echo "routes_test: $* -> got '$(echo "$out" | head -1)', want '$receiver'" >&2
    failures=$((failures + 1))
  fi
}

# Critical pages, per pair or per node.
expect pager alertname=MeshflowPeerUnreachable severity=critical src_node=ct-serv-jp dst_node=acer-agent
expect pager alertname=MeshflowNodeLeftMesh severity=critical node=acer-agent dst_node=acer-agent
expect pager alertname=MeshflowExporterDown severity=critical node=ct-serv-jp instance=10.0.0.1:9474
expect pager alertname=MeshflowControlPlaneLinkDegraded severity=critical src_node=acer-agent dst_node=ct-serv-jp reason=loss
# Warnings and info go to chat.
expect chat alertname=MeshflowOverlayPacketLoss severity=warning src_node=ct-serv-jp dst_node=acer-agent
expect chat alertname=MeshflowRTTAboveBaseline severity=warning src_node=ct-serv-jp dst_node=acer-agent method=icmp
expect chat alertname=MeshflowCaptureDecodeErrors severity=info node=acer-agent iface=tailscale0
# On-demand nodes never page, even if a rule called them critical.
expect chat alertname=MeshflowNodeLeftMesh severity=info on_demand=true node=laptop-agent
expect chat alertname=MeshflowPeerUnreachable severity=critical on_demand=true src_node=acer-agent dst_node=laptop-agent
# Anything without a known severity still reaches a human.
expect chat alertname=SomethingElse

if ((failures > 0)); then
  echo "routes_test: $failures of $cases cases failed" >&2
  exit 1
fi
echo "routes_test: $cases routing cases OK"
