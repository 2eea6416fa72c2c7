#!/usr/bin/env bash
# bench/scale.sh - one node holding a large registry's metadata: 10^5 repositories, 10^6
# tags, 10^6 blobs, 10^5 manifests each with a referrer, loaded through the FSM by
# bench/gcload.c; then the load rate, the data directory's size, the time of a restart to
# /readyz, RssAnon at rest, catalog and tag-list pages at random offsets, manifest GET by tag
# against a registry of one manifest, and the node's idle CPU, each next to its target.
#
# Then the same metadata in three regions behind the WAN emulator (bench/scalecluster.py): the
# cluster seeded from one loaded region, two regions joining from its snapshot at 100 MB/s,
# the same figures at the leader and at a follower, idle CPU, and a fourth region catching up
# while the three take writes and snapshots.
#
# Runs bench/scale.py, then bench/scalecluster.py (see their docstrings and bench/README.md),
# and prints the figures of each.
#
#   bench/scale.sh                                # $PORTOLAN_BIN, else <repo>/build/portolan
#                                                 # (pt_gcload beside it, built when missing)
#   bench/scale.sh --repos 10000 --tags 100000 --blobs 100000 --manifests 10000  # smaller
#   bench/scale.sh --regions 1 [ARGS]             # the single node only (ARGS: scale.py's)
#   bench/scale.sh --regions 3 [ARGS]             # the three regions only (scalecluster.py's)
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

regions=both
if [ "${1:-}" = "--regions" ]; then
    regions="${2:-}"
    shift 2
fi
case "$regions" in
1) exec python3 "$here/scale.py" "$@" ;;
3) exec python3 "$here/scalecluster.py" "$@" ;;
both)
    status=0
    python3 "$here/scale.py" "$@" || status=1
    python3 "$here/scalecluster.py" "$@" || status=1
    exit $status
    ;;
*)
    echo "scale-bench: --regions 1 or 3" >&2
    exit 2
    ;;
esac
