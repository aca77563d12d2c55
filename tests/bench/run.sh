#!/usr/bin/env bash
# Runs every benchmark and prints its figures beside the peers measured in the same run.
# Benchmarks are not tests: nothing here passes or fails on speed. Needs a build with
# MESHFLOW_BUILD_BENCH=ON (the default); builds one if missing.
#   tests/bench/run.sh [BUILD_DIR] [NAME...]    NAME: a script here without .sh, e.g. serving
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build/bench}
shift || true
if [[ ! -d "$build" ]]; then
  "$top/deploy/install-deps.sh" --test
  cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DMESHFLOW_BUILD_BENCH=ON >/dev/null
fi
cmake --build "$build" -j "$(nproc)"
here=$(dirname "$0")
if (($#)); then
  names=("$@")
else
  names=()
  for s in "$here"/*.sh; do names+=("$(basename "$s" .sh)"); done
fi
for name in "${names[@]}"; do
  [[ "$name" == run ]] && continue
  echo
  echo "######## $name"
  "$here/$name.sh" "$build"
done
