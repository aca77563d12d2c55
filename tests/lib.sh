# shellcheck shell=bash
# Helpers shared by the shell tests. Sourced, never run.

# use_work [SIGNAL]: $work, a fresh temporary directory, and $pids, the background processes to
# stop. On exit each of $pids gets SIGNAL (TERM unless named) and is waited for, then $work is
# removed (kept, and named, when KEEP is set).
# shellcheck disable=SC2120  # SIGNAL is optional
use_work() {
  # shellcheck disable=SC2034  # the caller's
  work=$(mktemp -d) pids=()
  _use_work_signal=${1:-TERM}
  trap _use_work_cleanup EXIT
}
_use_work_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "-$_use_work_signal" "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ -n ${KEEP:-} ]]; then echo "kept $work"; else rm -rf "$work"; fi
}

# fail MESSAGE: says what failed with the last lines of every $work/*.log, and exits 1.
fail() {
  echo "FAIL: $*" >&2
  local f
  for f in "$work"/*.log; do
    [[ -f $f ]] || continue
    echo "--- $f:" >&2
    tail -n 15 "$f" >&2
  done
  exit 1
}
pass() { echo "ok: $*"; }

# wait_for SECONDS COMMAND...: runs COMMAND every 100 ms until it succeeds or time is up.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
bound_port() {  # bound_port LOG HOST: the port the daemon logged for HOST
  grep -o "listening on $2:[0-9]*" "$1" | head -1 | cut -d: -f2
}
