# shellcheck shell=bash
# Sourced by the benchmarks that price one feature: runs a command with the feature off and on,
# alternating, so drift in a shared machine's speed (other tenants, frequency) falls on both
# alike. Sets off_cpu and on_cpu (the fastest run of each, user + sys seconds) and pair_cost (the
# median over the pairs of 1 - off / on, in per cent), and prints the spread.
#   on_off_runs PAIRS OUT_FILE OFF_COMMAND... -- ON_COMMAND...   (stdout of each run to OUT_FILE)
on_off_runs() {
  local pairs=$1 out=$2 off_command=() on_command=() t
  shift 2
  while [[ $1 != -- ]]; do off_command+=("$1"); shift; done
  shift
  on_command=("$@")
  local TIMEFORMAT="%U %S" offs=() ons=() i
  for ((i = 0; i < pairs; i++)); do
    t=$({ time "${off_command[@]}" >"$out" 2>/dev/null; } 2>&1)
    offs+=("$(awk '{ print $1 + $2 }' <<<"$t")")
    t=$({ time "${on_command[@]}" >"$out" 2>/dev/null; } 2>&1)
    ons+=("$(awk '{ print $1 + $2 }' <<<"$t")")
  done
  # shellcheck disable=SC2034 # off_cpu, on_cpu and pair_cost are for the caller
  read -r off_cpu on_cpu pair_cost spread < <(awk -v offs="${offs[*]}" -v ons="${ons[*]}" 'BEGIN {
    n = split(offs, a, " "); split(ons, b, " ")
    bo = a[1]; bn = b[1]
    for (i = 1; i <= n; i++) {
      if (a[i] < bo) bo = a[i]
      if (b[i] < bn) bn = b[i]
      c[i] = 100 * (1 - a[i] / b[i])
    }
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (c[j] < c[i]) { x = c[i]; c[i] = c[j]; c[j] = x }
    median = n % 2 ? c[(n + 1) / 2] : (c[n / 2] + c[n / 2 + 1]) / 2
    printf "%s %s %.1f %.0f-%.0f\n", bo, bn, median, c[1], c[n] }')
  echo "($pairs alternating off/on pairs; cost per pair from $spread %, median $pair_cost %)"
}

# Puts a capture in the page cache as reading it leaves it, not as writing it did: here a
# freshly written capture replayed up to twice as slowly as the same bytes read back, which
# shrank every feature's relative cost. Call it after writing a capture and before timing.
cache_capture() {
  sync "$1"
  dd if="$1" iflag=nocache count=0 status=none # drop the file's pages
  cat "$1" >/dev/null
}
