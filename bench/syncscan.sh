#!/usr/bin/env bash
# bench/syncscan.sh - the CPU blob replication spends looking for missing blobs over a large
# store, before (a walk of blob_locations every scan) and with the index of missing blobs
# (bench/syncscan.c prints the figures; a minute or two for a million blobs on 2 cores).
#
#   bench/syncscan.sh                        # 1,000,000 blobs in sync, none missing
#   bench/syncscan.sh --blobs 100000 --missing 1000
#
# Uses $PT_BUILD_DIR (default <repo>/build)/pt_syncscan, built when missing. Exit 1 on error.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="${PT_BUILD_DIR:-$repo/build}"
if [ ! -x "$build/pt_syncscan" ]; then
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" -j2 --target pt_syncscan >&2
fi
blobs=1000000
missing=0
while [ $# -gt 0 ]; do
    case "$1" in
    --blobs) blobs="$2"; shift 2 ;;
    --missing) missing="$2"; shift 2 ;;
    *) echo "usage: bench/syncscan.sh [--blobs N] [--missing M]" >&2; exit 1 ;;
    esac
done
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
"$build/pt_syncscan" --meta "$dir/meta" --blobs "$blobs" --missing "$missing"
