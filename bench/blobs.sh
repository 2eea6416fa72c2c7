#!/usr/bin/env bash
# bench/blobs.sh - blob replication between three Portolan regions behind the WAN emulator
# (50 ms one-way delay and a 100 MB/s cap on every link between regions, which run mutual
# TLS 1.3 unless --peer-tls off): how long a pushed
# 8 x 64 MiB image takes to be in every region against the bandwidth-bound minimum, the first
# byte of a blob GET in a region that lacks the blob, and the backfill speed of a fourth
# region added to the running cluster.
#
# Runs bench/blobs.py (see its docstring and bench/README.md) and prints one table: each
# figure, its target and whether it is met. Under a minute on 2 cores.
#
#   bench/blobs.sh                             # binary: $PORTOLAN_BIN, else <repo>/build/portolan
#                                              # (built with `make build` when missing)
#   PT_BLOBBENCH_LAYERS=4 PT_BLOBBENCH_LAYER_MIB=32 bench/blobs.sh     # smaller image
#   bench/blobs.sh --delay-ms 25 --cap-mbps 50 --backfill-mib 256
#   bench/blobs.sh --peer-tls both             # links in mutual TLS (the default) and in
#                                              # plain TCP, figures side by side
#
# Other arguments go to bench/blobs.py (bench/blobs.py --help). Exit status: 1 when a
# workload could not be measured (an error answer, a wait that timed out), 2 when a tool or
# the binary is missing, 0 otherwise; a figure that misses its target does not fail the run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

if ! command -v python3 >/dev/null 2>&1; then
    echo "blob-bench: python3 not found" >&2
    exit 2
fi

if [ -z "${PORTOLAN_BIN:-}" ]; then
    PORTOLAN_BIN="$repo/build/portolan"
    if [ ! -x "$PORTOLAN_BIN" ]; then
        echo "blob-bench: no binary at $PORTOLAN_BIN: make build" >&2
        make -C "$repo" build >&2
    fi
fi
if [ ! -x "$PORTOLAN_BIN" ]; then
    echo "blob-bench: no portolan binary at $PORTOLAN_BIN" >&2
    exit 2
fi
export PORTOLAN_BIN

exec python3 "$here/blobs.py" "$@"
