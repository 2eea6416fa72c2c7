#!/usr/bin/env bash
# Builds every libFuzzer driver of tests/fuzz/ with clang (build-fuzz/, PT_FUZZ=ON) and runs each
# for a bounded time on its seed corpus, one after the other (CI: tests/run-all.sh).
#   tests/fuzz/run.sh [SECONDS]   seconds per driver, default 10 (FUZZ_SECONDS also works)
# A working corpus per driver grows under build-fuzz/corpus-<driver>/ (the seeds in the tree stay
# read-only); a crash or a failed invariant leaves its input in build-fuzz/artifacts/ and makes
# the script exit 1. Ends with one "N passed, N failed" line, like tests/integration/run.py.
set -uo pipefail
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:-${FUZZ_SECONDS:-10}}
JOBS=${JOBS:-2}
B=build-fuzz
F=tests/fuzz

CC=${FUZZ_CC:-clang} cmake -S . -B "$B" -DPT_FUZZ=ON >/dev/null &&
    cmake --build "$B" -j"$JOBS" --target pt_fuzzers >/dev/null ||
    { echo "fuzz build failed"; echo "0 passed, 1 failed"; exit 1; }

mkdir -p "$B/artifacts"
passed=0
failed=0
for src in "$F"/fuzz_*.c; do
    t=$(basename "$src" .c)
    args=(-max_total_time="$SECONDS_EACH" -artifact_prefix="$B/artifacts/" -print_final_stats=0)
    [ -f "$F/$t.dict" ] && args+=(-dict="$F/$t.dict")
    [ "$t" = fuzz_manifest ] && args+=(-max_len=65536)
    mkdir -p "$B/corpus-$t"
    if "$B/$t" "$B/corpus-$t" "$F/corpus/$t" "${args[@]}" >"$B/$t.log" 2>&1; then
        echo "ok   $t ($(grep -Eo 'Done [0-9]+ runs' "$B/$t.log" | tail -1))"
        passed=$((passed + 1))
    else
        echo "FAIL $t (see $B/$t.log)"
        grep -E "invariant failed|ERROR|SUMMARY|Test unit written" "$B/$t.log" | head -5
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
