#!/usr/bin/env bash
# Builds Portolan twice and runs every test; the README's test command (`make test`) runs this.
#   1. cmocka unit tests, built with ASan + UBSan (build-asan/)
#   2. clang-format check of the C sources; every libFuzzer driver of tests/fuzz/ for a bounded
#      time (tests/fuzz/run.sh, FUZZ_SECONDS each, default 5; build-fuzz/ with clang)
#   3. integration tests against real nodes: the ASan/UBSan binary for the API, access control, bad input, HTTP/2, backup,
#      skopeo, crash, basic cluster, quota and throttling tests; the optimised binary (build/) for the 4 GiB blob
#      test, whose memory bound is about the real binary (sanitizer shadow memory would swamp
#      it), and for the membership, leader-change and randomized-fault cluster runs, whose
#      stall and timing bounds are about the real binary too (the sanitizers slow it several
#      times over), for the partition runs (network namespaces; availability bounds about the
#      real binary too), for access control with real clients (skopeo, podman, buildah, ctr), and
#      for hostile clients (smuggling, HTTP/2 rapid reset, connection floods, wide manifests),
#      whose memory check is about the real binary, for readiness, graceful shutdown and a
#      pod joining by itself (deploy/pod-start.sh), for the container image and the
#      compose demo (test_image, test_compose: the image is built once per run from the
#      sources by deploy/image.sh into the run's container storage, $PT_CONTAINERS_DIR, default
#      build/test-containers, and rebuilt only when the sources change), and for the
#      Kubernetes manifests (rendered, schema-checked; its `portolan cluster certs` makes
#      their Secrets) and the StatefulSet's pods run in containers of that image
# Ends with one "N passed, N failed" line over all of them; exits 1 if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
passed=0
failed=0

step() { printf '\n== [%d s] %s\n' "$SECONDS" "$*"; }

step "build (RelWithDebInfo) in build/"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
    cmake --build build -j"$JOBS" >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
step "build (ASan + UBSan) in build-asan/"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPT_SANITIZE=ON >/dev/null &&
    cmake --build build-asan -j"$JOBS" >/dev/null || { echo "sanitizer build failed"; echo "0 passed, 1 failed"; exit 1; }

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=abort_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0

step "unit tests (ASan + UBSan)"
out=$(ctest --test-dir build-asan -j"$JOBS" --output-on-failure 2>&1)
echo "$out" | grep -E "Test +#|tests passed|Failed|\*\*\*"
total=$(echo "$out" | sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p')
nfail=$(echo "$out" | sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p')
if [ -z "$total" ]; then
    failed=$((failed + 1))
else
    passed=$((passed + total - nfail))
    failed=$((failed + nfail))
fi

step "format (clang-format)"
fmt_out=$(clang-format --dry-run -Werror node/*.[ch] node/*/*.[ch] replication/*.[ch] tests/unit/*.c tests/unit/support/*.[ch] tests/fuzz/*.[ch] 2>&1)
if [ -n "$fmt_out" ]; then
    echo "$fmt_out" | head -20
    echo "FAIL: sources are not clang-formatted (run: make format)"
    failed=$((failed + 1))
else
    echo "ok"
    passed=$((passed + 1))
fi

fail_lines=""
count_run() {
    local line
    fail_lines="$fail_lines$(echo "$1" | grep -E '^(FAIL|TIMEOUT|ERROR)' | cut -c1-400)
"
    line=$(echo "$1" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
    if [ -z "$line" ]; then
        failed=$((failed + 1))
        return
    fi
    passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
    failed=$((failed + $(echo "$line" | cut -d' ' -f3 | tr -d ,)))
}

step "fuzzers (tests/fuzz/run.sh, ${FUZZ_SECONDS:-5} s each)"
out=$(JOBS="$JOBS" tests/fuzz/run.sh "${FUZZ_SECONDS:-5}" 2>&1)
echo "$out" | tail -12
count_run "$out"

step "integration tests (ASan + UBSan binary)"
out=$(PORTOLAN_BIN="$PWD/build-asan/portolan" \
    python3 tests/integration/run.py api api_manifests bad_input http2 skopeo crash startup cluster auth_api \
        replication_cli cluster_tls backup bridge quotas locks retention snapshot_files seed 2>&1)
echo "$out" | tail -40
count_run "$out"

step "integration tests (optimised binary): 4 GiB blob, memory bound; cluster timing bounds; 1 GiB transfers; container image and compose demo; garbage collection"
export PT_CONTAINERS_DIR=${PT_CONTAINERS_DIR:-$PWD/build/test-containers}
out=$(PORTOLAN_BIN="$PWD/build/portolan" python3 tests/integration/run.py bigblob cluster_ops cluster_chaos blob_replication \
    blob_faults leader_change partitions peer_tls auth_clients disk_full hostile_clients peer_attacks \
    node_lifecycle self_join image compose k8s_manifests k8s_pods gc 2>&1)
echo "$out" | tail -20
count_run "$out"

echo
if [ "$failed" != 0 ]; then
    echo "failures (every section; the section outputs above are tails):"
    echo "$fail_lines" | grep -v '^$' || echo "  (no FAIL line: a section ended without its summary)"
fi
echo "[$SECONDS s in all]"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
