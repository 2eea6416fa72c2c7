#!/usr/bin/env bash
# bench/gc.sh - garbage collection over a large store on one node: a million blobs (half of
# them garbage) and 100,000 manifests loaded through the FSM by bench/gcload.c, then the
# load time, the mark time of a dry run, what a real pass collects, the node's peak RssAnon
# during it and the manifest GET throughput while it runs against idle (target >= 80 %).
#
# Runs bench/gc.py (see its docstring and bench/README.md) and prints the figures; a few
# minutes on 2 cores.
#
#   bench/gc.sh                                  # $PORTOLAN_BIN, else <repo>/build/portolan
#                                                # (pt_gcload beside it, built when missing)
#   bench/gc.sh --blobs 200000 --manifests 20000 # smaller
#   bench/gc.sh --gc-rate 50000                  # the node's --gc-rate (default: no limit)
#
# Exit status: 1 when something could not be measured, 2 when a tool is missing, else 0; a
# figure that misses its target does not fail the run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

for tool in python3 wrk; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "gc-bench: $tool not found (apt-get install $tool)" >&2
        exit 2
    fi
done

build="${PT_BUILD_DIR:-$repo/build}"
if [ -z "${PORTOLAN_BIN:-}" ]; then
    PORTOLAN_BIN="$build/portolan"
    if [ ! -x "$PORTOLAN_BIN" ] || [ ! -x "$build/pt_gcload" ]; then
        echo "gc-bench: building portolan and pt_gcload in $build" >&2
        cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
        cmake --build "$build" -j2 --target portolan pt_gcload >&2
    fi
fi
if [ ! -x "$PORTOLAN_BIN" ]; then
    echo "gc-bench: no portolan binary at $PORTOLAN_BIN" >&2
    exit 2
fi
export PORTOLAN_BIN
export PT_GCLOAD_BIN="${PT_GCLOAD_BIN:-$(dirname "$PORTOLAN_BIN")/pt_gcload}"

exec python3 "$here/gc.py" "$@"
