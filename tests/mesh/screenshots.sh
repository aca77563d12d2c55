#!/usr/bin/env bash
# Regenerates docs/mesh-*.png: builds the fixture gateway and runs the browser test with docs/ as
# its output directory.   tests/mesh/screenshots.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/plain}
cmake --build "$build" --target mesh_fixture_server
"$root/tests/mesh/mesh_page_test.sh" "$build/tests/mesh/mesh_fixture_server" "$root/docs"
