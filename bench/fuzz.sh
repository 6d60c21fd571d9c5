#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer, the nightly toolchain) of every parser and
# decoder a client or a file reaches: runs each target of fuzz/ for SECONDS_PER_TARGET seconds
# (default 60), one target at a time in one process, from the committed seeds
# (fuzz/corpus/<target>) and regressions (fuzz/regressions/<target>), and prints a table:
# target, executions, exec/s, corpus size, crashes, hangs. Exits 1 when any target crashed or
# hung; the inputs are kept in the work directory it names.
#
#   bench/fuzz.sh [SECONDS_PER_TARGET]
#   FUZZ_TARGETS="filter router" bench/fuzz.sh 600     # some targets only
#   FUZZ_WORK=/tmp/fuzz bench/fuzz.sh 3600             # keep the grown corpora between runs
#   FUZZ_MAX_RUNS=10000000 bench/fuzz.sh 900          # stop a target at 10 million executions
#
# Installs cargo-fuzz when it is missing. Builds without a sanitizer (`-s none`: the code is
# safe Rust, so AddressSanitizer finds nothing more and halves the speed) but with debug
# assertions and overflow checks (cargo-fuzz's default).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-60}
TARGETS=${FUZZ_TARGETS:-"filter odata batch operations cursor scenario solution router checkpoint"}
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}
MAX_RUNS=${FUZZ_MAX_RUNS:--1}

# The longest input per target (libFuzzer's -max_len): past the parsers' own limits only where
# a limit is the thing to test, and small enough that every iteration stays fast.
max_len() {
  case "$1" in
    filter | odata) echo 4096 ;;
    cursor) echo 1024 ;;
    operations | router) echo 8192 ;;
    batch | scenario) echo 16384 ;;
    solution) echo 65536 ;;
    *) echo 4096 ;;
  esac
}

if ! cargo "+$TOOLCHAIN" fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/fuzz/target}
WORK=${FUZZ_WORK:-$(mktemp -d /tmp/strata-fuzz.XXXXXX)}
mkdir -p "$WORK"

echo "== building the fuzz targets (cargo +$TOOLCHAIN fuzz build -s none)" >&2
(cd fuzz && cargo "+$TOOLCHAIN" fuzz build -s none) >&2

failed=0
rows=()
for t in $TARGETS; do
  corpus="$WORK/corpus/$t"
  artifacts="$WORK/artifacts/$t/"
  log="$WORK/$t.log"
  mkdir -p "$corpus" "$artifacts"
  # New inputs go to the work corpus (the first directory); the committed seeds and regressions
  # are read, never written.
  inputs=("$corpus" "$ROOT/fuzz/corpus/$t")
  if [ -d "$ROOT/fuzz/regressions/$t" ]; then inputs+=("$ROOT/fuzz/regressions/$t"); fi
  echo "== $t: ${SECONDS_PER_TARGET}s, -max_len=$(max_len "$t"), log $log" >&2
  set +e
  (cd fuzz && cargo "+$TOOLCHAIN" fuzz run -s none "$t" "${inputs[@]}" -- \
    -max_total_time="$SECONDS_PER_TARGET" -runs="$MAX_RUNS" -max_len="$(max_len "$t")" -timeout=10 \
    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$artifacts") >"$log" 2>&1
  status=$?
  set -e
  execs=$(grep -a '^stat::number_of_executed_units:' "$log" | tail -1 | awk '{print $2}')
  speed=$(grep -a '^stat::average_exec_per_sec:' "$log" | tail -1 | awk '{print $2}')
  size=$(grep -aoE 'corp: [0-9]+/' "$log" | tail -1 | grep -oE '[0-9]+')
  crashes=$(find "$artifacts" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  hangs=$(find "$artifacts" -maxdepth 1 -type f \( -name 'timeout-*' -o -name 'slow-unit-*' \) | wc -l)
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ] && [ "$hangs" -eq 0 ]; then
    # libFuzzer stopped without an artifact (a failed start): a failure all the same.
    crashes=1
    tail -20 "$log" >&2
  fi
  if [ "$crashes" -ne 0 ] || [ "$hangs" -ne 0 ]; then
    failed=1
    echo "!! $t: $crashes crash(es), $hangs hang(s): inputs in $artifacts, log $log" >&2
  fi
  rows+=("$(printf '%-11s %14s %9s %8s %8s %6s' "$t" "${execs:-0}" "${speed:-0}" "${size:-0}" "$crashes" "$hangs")")
done

echo
echo "fuzzing, ${SECONDS_PER_TARGET}s per target, $(date -u +%Y-%m-%dT%H:%MZ), work directory $WORK"
printf '%-11s %14s %9s %8s %8s %6s\n' target executions exec/s corpus crashes hangs
printf '%s\n' "${rows[@]}"
exit "$failed"
