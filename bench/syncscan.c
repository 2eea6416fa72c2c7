/*
 * syncscan.c - what blob replication's look for missing blobs costs over a large store
 * (bench/syncscan.sh): a walk of blob_locations, as every scan did before the index of
 * missing blobs, against a read of that index (node/store/metastore_missing.c).
 *
 * Role: a region that is in sync and idle should spend nothing on replication however many
 * blobs the registry holds. This tool fills a fresh store with --blobs blobs held by both
 * regions "a" and "b" and --missing more held by "b" only, through the batches the FSM uses,
 * then measures in CPU seconds (getrusage, this process): building the index once (a store of
 * an older version, at its first open), one full walk (the scan of the old design, run after
 * every change and every PT_BLOB_SYNC_RESCAN_MS even when idle), and one read of the index
 * (a page of PT_BLOB_SYNC_QUEUE_MAX and the totals: the scan now, run only after a change or,
 * while something is missing, every PT_BLOB_SYNC_RESCAN_MS). It prints them and the CPU an
 * idle hour costs each way.
 *
 *   pt_syncscan --meta DIR --blobs N [--missing M]
 * DIR must not exist. Exit 1 on any error.
 * Threads: one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "blob_sync.h"
#include "digest.h"
#include "err.h"
#include "metastore.h"

#define GROUP 10000

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void digest_of(uint64_t i, char out[PT_DIGEST_STR_MAX + 1])
{
    char text[64];
    int len = snprintf(text, sizeof(text), "syncscan-blob-%" PRIu64, i);
    struct pt_digest d;
    pt_digest_of(text, (size_t)len, &d);
    pt_digest_format(&d, out);
}

static int fail(const char *what, int rv)
{
    fprintf(stderr, "pt_syncscan: %s: %s\n", what, pt_err_message(rv));
    return 1;
}

static int load(struct pt_metastore *ms, uint64_t blobs, uint64_t missing)
{
    struct pt_metastore_batch *b;
    int rv = pt_metastore_batch_new(ms, &b);
    if (rv != 0)
        return rv;
    uint64_t index = 0;
    for (uint64_t i = 0; rv == 0 && i < blobs + missing; i++) {
        char d[PT_DIGEST_STR_MAX + 1];
        digest_of(i, d);
        rv = pt_metastore_batch_blob_stored(b, d, 4096, "b");
        if (rv == 0 && i < blobs)
            rv = pt_metastore_batch_blob_stored(b, d, 4096, "a");
        if (rv == 0 && (i + 1) % GROUP == 0)
            rv = pt_metastore_batch_commit(b, ++index);
    }
    if (rv == 0)
        rv = pt_metastore_batch_commit(b, ++index);
    pt_metastore_batch_free(b);
    return rv;
}

static int count_cb(const char *digest, uint64_t size, const char *const *holders, size_t n,
                    void *arg)
{
    (void)digest;
    (void)size;
    (void)holders;
    (void)n;
    ++*(uint64_t *)arg;
    return 0;
}

int main(int argc, char **argv)
{
    const char *meta = NULL;
    uint64_t blobs = 0, missing = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--meta") == 0)
            meta = argv[i + 1];
        else if (strcmp(argv[i], "--blobs") == 0)
            blobs = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--missing") == 0)
            missing = strtoull(argv[i + 1], NULL, 10);
        else
            meta = NULL, i = argc;
    }
    if (meta == NULL || blobs == 0) {
        fprintf(stderr, "usage: pt_syncscan --meta DIR --blobs N [--missing M]\n");
        return 1;
    }
    struct pt_metastore *ms;
    int rv = pt_metastore_open(meta, &ms);
    if (rv != 0)
        return fail("open", rv);
    double t0 = cpu_s();
    if ((rv = load(ms, blobs, missing)) != 0)
        return fail("load", rv);
    double t1 = cpu_s();
    if ((rv = pt_metastore_missing_index(ms, "a")) != 0)
        return fail("index", rv);
    double t2 = cpu_s();
    uint64_t walked = 0;
    if ((rv = pt_metastore_missing_foreach(ms, "a", count_cb, &walked)) != 0)
        return fail("walk", rv);
    double t3 = cpu_s();
    uint64_t paged = 0, tb, tbytes;
    size_t n;
    if ((rv = pt_metastore_missing_page(ms, "a", NULL, PT_BLOB_SYNC_QUEUE_MAX, count_cb, &paged,
                                        &n)) != 0 ||
        (rv = pt_metastore_missing_totals(ms, "a", &tb, &tbytes)) != 0)
        return fail("index read", rv);
    double t4 = cpu_s();
    pt_metastore_close(ms);
    if (walked != missing || tb != missing) {
        fprintf(stderr,
                "pt_syncscan: walk found %" PRIu64 ", index %" PRIu64 ", want %" PRIu64 "\n",
                walked, tb, missing);
        return 1;
    }
    double per_hour = 3600.0 * 1000.0 / PT_BLOB_SYNC_RESCAN_MS;
    printf("blobs=%" PRIu64 " missing=%" PRIu64 " load_cpu_s=%.2f index_build_cpu_s=%.3f\n", blobs,
           missing, t1 - t0, t2 - t1);
    printf("scan_before_cpu_s=%.4f scan_after_cpu_s=%.6f\n", t3 - t2, t4 - t3);
    printf("idle_hour_before_cpu_s=%.1f idle_hour_after_cpu_s=%.4f%s\n", per_hour * (t3 - t2),
           missing > 0 ? per_hour * (t4 - t3) : 0.0,
           missing > 0 ? " (rescans while blobs are missing)" : " (in sync: no scan)");
    return 0;
}
