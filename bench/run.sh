#!/usr/bin/env bash
# bench/run.sh - portolan against the reference registry (docker-registry 2.8) on this machine.
#
# Starts a portolan node from the build directory and Debian's docker-registry, each on its
# own loopback port with its data in a temporary directory, runs the same workloads against
# both (bench/bench.py: wrk, curl, skopeo, a Python chunked-upload client) and prints a
# table: both figures, their ratio and portolan's target. About 2-3 minutes on 2 cores.
#
#   bench/run.sh                          # build dir: $PT_BUILD_DIR or <repo>/build
#   bench/run.sh --build                  # configure and build a Release portolan there first
#   bench/run.sh --only reference         # one registry only (also: --only portolan)
#   PT_BENCH_DURATION=5 PT_BENCH_RUNS=2 bench/run.sh   # shorter
#
# Other arguments go to bench/bench.py (see bench/bench.py --help). Exit status is 1 when a
# workload could not be measured (an error answer or a tool failure), 0 otherwise; figures
# below target do not fail the run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build_dir="${PT_BUILD_DIR:-$repo/build}"

build=0
only=""
pass=()
while [ $# -gt 0 ]; do
    case "$1" in
        --build) build=1 ;;
        --only) only="$2"; pass+=("$1" "$2"); shift ;;
        --only=*) only="${1#--only=}"; pass+=("$1") ;;
        *) pass+=("$1") ;;
    esac
    shift
done

for tool in python3 wrk curl skopeo docker-registry setpriv; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench: $tool not found (apt-get install wrk curl skopeo docker-registry)" >&2
        exit 2
    fi
done

if [ "$build" = 1 ]; then
    cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DPT_SANITIZE=OFF >&2
    cmake --build "$build_dir" -j"$(nproc)" --target portolan >&2
fi

export PORTOLAN_BIN="${PORTOLAN_BIN:-$build_dir/portolan}"
if [ "$only" != "reference" ] && [ ! -x "$PORTOLAN_BIN" ]; then
    echo "bench: no portolan binary at $PORTOLAN_BIN; build it (bench/run.sh --build, or" >&2
    echo "       cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build" >&2
    echo "       --target portolan) or set PT_BUILD_DIR / PORTOLAN_BIN" >&2
    exit 2
fi

exec python3 "$here/bench.py" ${pass[@]+"${pass[@]}"}
