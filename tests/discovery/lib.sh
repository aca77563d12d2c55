# shellcheck shell=bash
# Helpers shared by the discovery source tests, on top of tests/lib.sh. Sourced, never run.

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"  # use_work, fail

# start_check SOURCE ARGS...: runs the source checker ($check) as the coprocess CHECK; it polls
# the source once for every line it reads.
# shellcheck disable=SC2154  # $check is the caller's
start_check() {
  coproc CHECK { "$check" "$@"; }
}

# poll: asks the source once, sets $out to its answer ("ok N" and N peer lines, or the error) and
# prints it. Fails when no answer comes within 20 seconds.
poll() {
  echo poll >&"${CHECK[1]}"
  local head line
  read -r -t 20 head <&"${CHECK[0]}" || fail "no answer from the source"
  out="$head"
  if [[ $head == ok* ]]; then
    for _ in $(seq "${head#ok }"); do read -r -t 5 line <&"${CHECK[0]}"; out+=$'\n'"$line"; done
  fi
  echo "$out"
}
