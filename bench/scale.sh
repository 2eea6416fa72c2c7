#!/usr/bin/env bash
# bench/scale.sh - one node holding a large registry's metadata: 10^5 repositories, 10^6
# tags, 10^6 blobs, 10^5 manifests each with a referrer, loaded through the FSM by
# bench/gcload.c; then the load rate, the data directory's size, the time of a restart to
# /readyz, RssAnon at rest, catalog and tag-list pages at random offsets, manifest GET by tag
# against a registry of one manifest, and the node's idle CPU, each next to its target.
#
# Runs bench/scale.py (see its docstring and bench/README.md) and prints the figures.
#
#   bench/scale.sh                                # $PORTOLAN_BIN, else <repo>/build/portolan
#                                                 # (pt_gcload beside it, built when missing)
#   bench/scale.sh --repos 10000 --tags 100000 --blobs 100000 --manifests 10000  # smaller
#
# Exit status: 1 when something could not be measured, 2 when a tool is missing, else 0; a
# figure that misses its target does not fail the run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

for tool in python3 wrk; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "scale-bench: $tool not found (apt-get install $tool)" >&2
        exit 2
    fi
done

build="${PT_BUILD_DIR:-$repo/build}"
if [ -z "${PORTOLAN_BIN:-}" ]; then
    PORTOLAN_BIN="$build/portolan"
    if [ ! -x "$PORTOLAN_BIN" ] || [ ! -x "$build/pt_gcload" ]; then
        echo "scale-bench: building portolan and pt_gcload in $build" >&2
        cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
        cmake --build "$build" -j2 --target portolan pt_gcload >&2
    fi
fi
if [ ! -x "$PORTOLAN_BIN" ]; then
    echo "scale-bench: no portolan binary at $PORTOLAN_BIN" >&2
    exit 2
fi
export PORTOLAN_BIN
export PT_GCLOAD_BIN="${PT_GCLOAD_BIN:-$(dirname "$PORTOLAN_BIN")/pt_gcload}"

exec python3 "$here/scale.py" "$@"
