#!/usr/bin/env bash
# The whole test suite, as CI runs it on a fresh clone:
#   1. installs what the tests need (deploy/install-deps.sh --test),
#   2. checks formatting,
#   3. builds and runs every test with gcc (plain build),
#   4. builds with clang under AddressSanitizer + UndefinedBehaviorSanitizer (and libFuzzer) and
#      runs the unit, integration and fuzz tests there.
# Exits non-zero on any failure. Options for a quicker local loop:
#   --plain-only   skip the sanitizer build      --labels REGEX   only these ctest labels
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
plain_only=0
labels=""
while (($#)); do
  case "$1" in
    --plain-only) plain_only=1 ;;
    --labels) labels="$2"; shift ;;
    *) echo "usage: tests/run.sh [--plain-only] [--labels REGEX]" >&2; exit 2 ;;
  esac
  shift
done

jobs=$(nproc)
started=$(date +%s)
section() { printf '\n=== %s (%ds)\n' "$*" $(($(date +%s) - started)); }

section "dependencies"
deploy/install-deps.sh --test

section "clang-format"
mapfile -t sources < <(git ls-files '*.cc' '*.h' '*.cpp' '*.hpp')
if ((${#sources[@]})); then
  clang-format --dry-run -Werror "${sources[@]}"
fi
echo "clang-format: ${#sources[@]} files clean"

# Network-namespace tests share fixed names and the kernel's tables: run them one at a time,
# after the tests that can run in parallel.
run_ctest() {
  local dir=$1 label_regex=$2
  if [[ -n "$labels" ]]; then label_regex="$labels"; fi
  # --timeout bounds any test that forgot its own TIMEOUT property.
  ctest --test-dir "$dir" --output-on-failure --no-tests=error -j "$jobs" --timeout 900 \
    -L "$label_regex" -LE testbed
  if [[ "testbed" =~ $label_regex ]]; then
    ctest --test-dir "$dir" --output-on-failure --no-tests=ignore --timeout 900 -L testbed
  fi
}

# A machine that has ccache (the project does not install it) rebuilds through it.
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

section "plain build (gcc)"
cmake -S . -B build/plain -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHFLOW_SANITIZE=OFF "${launcher[@]}" >/dev/null
cmake --build build/plain -j "$jobs"

section "plain tests"
run_ctest build/plain 'unit|integration|testbed'

if ((plain_only == 0)); then
  section "sanitizer build (clang, ASan+UBSan, libFuzzer)"
  CC=clang CXX=clang++ cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug \
    -DMESHFLOW_SANITIZE=ON -DMESHFLOW_FUZZ=ON -DMESHFLOW_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
  cmake --build build/asan -j "$jobs"

  section "sanitizer tests"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_ctest build/asan 'unit|integration|fuzz'
fi

section "all tests passed"
