#!/usr/bin/env bash
# Installs what meshflow needs, builds a Release binary and runs meshflow-exporter in the
# foreground on deploy/meshflow.yml, whose discovery finds the peers (WireGuard, Tailscale).
# Ctrl-C stops it.
#   deploy/quickstart.sh [extra exporter flags, e.g. --config.file my.yml]
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
deploy/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DMESHFLOW_BUILD_TESTS=OFF \
  -DMESHFLOW_BUILD_BENCH=OFF >/dev/null
cmake --build build/release -j "$(nproc)" --target meshflow-exporter

listen=${MESHFLOW_LISTEN:-:9474}
port=${listen##*:}
echo
echo "meshflow-exporter is starting; its metrics page: http://localhost:${port}/metrics"
echo
config=()
[[ " $* " == *" --config.file"* ]] || config=(--config.file "$top/deploy/meshflow.yml")
exec build/release/exporter/meshflow-exporter --web.listen-address "$listen" "${config[@]}" "$@"
