#!/usr/bin/env bash
# The mesh view at 60 nodes: /api/v1/mesh's answer time (beside /targets from the same server)
# and the /mesh page's render time in headless chromium (beside a bare navigation). The fixture
# gateway also prints the in-process cost of one query and its JSON.
#   tests/bench/mesh_view.sh BUILD_DIR [NODES]
set -euo pipefail
build=${1:?usage: mesh_view.sh BUILD_DIR [NODES]}
nodes=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$here/../mesh/mesh_page_test.sh" "$build/tests/mesh/mesh_fixture_server" "$out" bench \
  --nodes "$nodes" --rounds 31
