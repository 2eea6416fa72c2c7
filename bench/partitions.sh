#!/usr/bin/env bash
# bench/partitions.sh - three Portolan regions, each in a network namespace of its own, links
# between them cut with nftables (tests/lib/partition.py): per partition kind (leader cut
# off, follower cut off, a bridge region with the leader at one end, a flapping link) and
# region, the longest time without an acknowledged write and the time to the first write
# after the heal, next to the availability goal.
#
# Runs bench/partitions.py (see its docstring and bench/README.md) and prints one table.
# Network namespaces and nftables need root; without them the WAN emulator's cuts are used
# and the reason is printed. About 40 s per run of the four kinds on 2 cores.
#
#   bench/partitions.sh                        # binary: $PORTOLAN_BIN, else <repo>/build/portolan
#                                              # (built with `make build` when missing)
#   bench/partitions.sh --runs 5               # spread over more runs (PT_BENCH_PARTITION_RUNS)
#   bench/partitions.sh --scenarios bridge,flapping --hold 5
#
# Other arguments go to bench/partitions.py (--help). Exit status: 1 when a scenario could
# not be run or an answer was wrong (a 400 to a write whose blobs existed, an unexpected
# status, no convergence), 2 when a tool or the binary is missing, 0 otherwise; a figure
# that misses the goal does not fail the run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

if ! command -v python3 >/dev/null 2>&1; then
    echo "partitions-bench: python3 not found" >&2
    exit 2
fi

if [ -z "${PORTOLAN_BIN:-}" ]; then
    PORTOLAN_BIN="$repo/build/portolan"
    if [ ! -x "$PORTOLAN_BIN" ]; then
        echo "partitions-bench: no binary at $PORTOLAN_BIN: make build" >&2
        make -C "$repo" build >&2
    fi
fi
if [ ! -x "$PORTOLAN_BIN" ]; then
    echo "partitions-bench: no portolan binary at $PORTOLAN_BIN" >&2
    exit 2
fi
export PORTOLAN_BIN

exec python3 "$here/partitions.py" "$@"
