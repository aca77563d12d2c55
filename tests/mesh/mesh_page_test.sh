#!/usr/bin/env bash
# Starts a gateway fed with the reference cluster's pushes (mesh_fixture_server), opens /mesh in
# Debian's chromium, headless, and checks the matrix, a link's history and the role view
# (mesh_page_test.mjs). Screenshots, light and dark, go to OUT_DIR.
#   mesh_page_test.sh FIXTURE_SERVER OUT_DIR [test|bench] [fixture args...]
set -euo pipefail
fixture=${1:?usage: mesh_page_test.sh FIXTURE_SERVER OUT_DIR [test|bench] [fixture args...]}
out=${2:?usage: mesh_page_test.sh FIXTURE_SERVER OUT_DIR [test|bench] [fixture args...]}
mode=${3:-test}
shift $(( $# < 3 ? $# : 3 ))
here=$(cd "$(dirname "$0")" && pwd)
command -v chromium >/dev/null || { echo "mesh_page_test: chromium is not installed (deploy/install-deps.sh --test)" >&2; exit 1; }
mkdir -p "$out"
work=$(mktemp -d)
server_pid=
cleanup() {
  local status=$?
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

cp "$here/package.json" "$here/package-lock.json" "$here/mesh_page_test.mjs" "$work/"
(cd "$work" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

# The server serves until its stdin closes: a fifo we hold open.
mkfifo "$work/stdin"
"$fixture" "$@" <"$work/stdin" >"$work/server.log" 2>&1 &
server_pid=$!
exec 3>"$work/stdin"
# A 60-node fixture pushes for a minute or two on a busy machine before it listens.
for _ in $(seq 1 3000); do
  grep -q '^listening on ' "$work/server.log" && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
address=$(sed -n 's/^listening on //p' "$work/server.log" | head -1)
[[ -n $address ]] || { echo "mesh_page_test: fixture server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
grep -v '^listening on ' "$work/server.log" || true
node "$work/mesh_page_test.mjs" "http://$address" "$out" "$mode"
