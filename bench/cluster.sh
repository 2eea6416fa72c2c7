#!/usr/bin/env bash
# bench/cluster.sh - three Portolan regions behind the WAN emulator (50 ms one-way delay
# between regions): tag writes, write latency, replication lag, follower tag reads and leader
# failover, with the reference registry (docker-registry 2.8, one node) on the tag writes.
#
# Runs bench/cluster.py (see its docstring and bench/README.md) and prints one table: each
# figure, the reference's where there is one, the target and whether it is met. About 2-3
# minutes on 2 cores.
#
#   bench/cluster.sh                           # binary: $PORTOLAN_BIN, else <repo>/build/portolan
#                                              # (built with `make build` when missing)
#   bench/cluster.sh --no-reference            # skip the docker-registry run
#   bench/cluster.sh --wiring stock            # tests/lib/cluster.py's own wiring
#   PT_BENCH_DURATION=5 PT_BENCH_LAG_WRITES=30 PT_BENCH_FAILOVER_RUNS=2 bench/cluster.sh
#
# Other arguments go to bench/cluster.py (bench/cluster.py --help). Exit status: 1 when a
# workload could not be measured (an error answer, a tool failure), 2 when a tool or the
# binary is missing, 0 otherwise; a figure that misses its target does not fail the run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

reference=1
for a in "$@"; do
    [ "$a" = "--no-reference" ] && reference=0
done

tools=(python3 wrk)
[ "$reference" = 1 ] && tools+=(docker-registry)
for tool in "${tools[@]}"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "cluster-bench: $tool not found (apt-get install wrk docker-registry)" >&2
        exit 2
    fi
done

if [ -z "${PORTOLAN_BIN:-}" ]; then
    PORTOLAN_BIN="$repo/build/portolan"
    if [ ! -x "$PORTOLAN_BIN" ]; then
        echo "cluster-bench: no binary at $PORTOLAN_BIN: make build" >&2
        make -C "$repo" build >&2
    fi
fi
if [ ! -x "$PORTOLAN_BIN" ]; then
    echo "cluster-bench: no portolan binary at $PORTOLAN_BIN" >&2
    exit 2
fi
export PORTOLAN_BIN

exec python3 "$here/cluster.py" "$@"
