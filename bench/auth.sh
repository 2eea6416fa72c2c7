#!/usr/bin/env bash
# bench/auth.sh - what access control costs on this machine: manifest and blob GETs with
# `--auth off` against the same with `--auth on` and a Bearer token (and Basic), and the
# rate of /token for a client that repeats its credentials (target >= 2,000 tokens/s).
#
#   bench/auth.sh                         # binary: $PORTOLAN_BIN, else $PT_BUILD_DIR/portolan
#                                         # (default <repo>/build/portolan)
#   bench/auth.sh --build                 # configure and build a Release portolan first
#   PT_BENCH_DURATION=5 PT_BENCH_RUNS=1 bench/auth.sh   # shorter (default: the best of 2
#                                         # wrk runs of 10 s per figure, about 3 minutes)
#
# Other arguments go to bench/auth.py (--portolan-arg=FLAG for both nodes). Prints one table
# (auth off, auth on, their ratio, the target); exit status 1 when a workload could not be
# measured (an error answer, a tool failure), 0 otherwise.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build_dir="${PT_BUILD_DIR:-$repo/build}"

build=0
pass=()
for a in "$@"; do
    case "$a" in
        --build) build=1 ;;
        *) pass+=("$a") ;;
    esac
done

for tool in python3 wrk; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench: $tool not found (apt-get install wrk python3)" >&2
        exit 2
    fi
done

if [ "$build" = 1 ]; then
    cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DPT_SANITIZE=OFF >&2
    cmake --build "$build_dir" -j2 --target portolan >&2
fi

export PORTOLAN_BIN="${PORTOLAN_BIN:-$build_dir/portolan}"
if [ ! -x "$PORTOLAN_BIN" ]; then
    echo "bench: no portolan binary at $PORTOLAN_BIN (bench/auth.sh --build, or set" >&2
    echo "       PT_BUILD_DIR / PORTOLAN_BIN)" >&2
    exit 2
fi

exec python3 "$here/auth.py" ${pass[@]+"${pass[@]}"}
