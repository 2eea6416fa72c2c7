/*
 * snapbench.c - the cost of a raft snapshot file: how long writing one from a pinned store
 * takes (the thread-pool half of a snapshot), and restoring it into an empty store in batches
 * (what a region that catches up does), with the resident memory it took.
 *
 * Role: measures replication/raft_snapshot.c over a store filled by pt_gcload (bench/gcload.c)
 * without a running node. Writes continue nowhere here: the point is the time and memory of
 * each half at a given size, not contention.
 *
 *   pt_snapbench --meta DIR --out DIR
 * Opens the store at --meta (stopped node), writes <out>/snaps/<index>.pts, restores it into
 * the new store <out>/restored, checks the state digests are equal, and prints one line:
 * "snapshot bytes=B index=I pin_us=P write_ms=W restore_ms=R maxrss_kib=K" (pin: the part a
 * snapshot runs on the raft loop). Exit 1 on error.
 * Threads: one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "err.h"
#include "metastore.h"
#include "raft_snapshot.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int fail(const char *what, int rv)
{
    fprintf(stderr, "pt_snapbench: %s: %s\n", what, pt_err_message(rv));
    return 1;
}

int main(int argc, char **argv)
{
    const char *meta = NULL, *out = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--meta") == 0)
            meta = argv[i + 1];
        else if (strcmp(argv[i], "--out") == 0)
            out = argv[i + 1];
    }
    if (meta == NULL || out == NULL) {
        fprintf(stderr, "usage: pt_snapbench --meta DIR --out DIR\n");
        return 1;
    }
    char sdir[4096], rdir[4096];
    snprintf(sdir, sizeof(sdir), "%s/snaps", out);
    snprintf(rdir, sizeof(rdir), "%s/restored", out);
    mkdir(out, 0700);
    struct pt_metastore *src, *dst;
    int rv = pt_metastore_open(meta, &src);
    if (rv != 0)
        return fail("open --meta", rv);
    struct pt_metastore_pin *pin;
    struct timespec p0, p1;
    clock_gettime(CLOCK_MONOTONIC, &p0);
    rv = pt_metastore_pin(src, &pin); /* the only part that runs on the raft loop */
    clock_gettime(CLOCK_MONOTONIC, &p1);
    if (rv != 0)
        return fail("pin", rv);
    long pin_us = (p1.tv_sec - p0.tv_sec) * 1000000L + (p1.tv_nsec - p0.tv_nsec) / 1000;
    struct pt_snapdesc d;
    uint64_t t0 = now_ms();
    rv = pt_snapfile_write(sdir, pin, 1, &d);
    uint64_t write_ms = now_ms() - t0;
    pt_metastore_unpin(pin);
    if (rv != 0)
        return fail("write", rv);
    if ((rv = pt_metastore_open(rdir, &dst)) != 0)
        return fail("open restored", rv);
    t0 = now_ms();
    rv = pt_snapfile_restore(dst, sdir, &d);
    uint64_t restore_ms = now_ms() - t0;
    if (rv != 0)
        return fail("restore", rv);
    char a[65], b[65];
    if ((rv = pt_metastore_state_digest(src, a)) != 0 ||
        (rv = pt_metastore_state_digest(dst, b)) != 0)
        return fail("digest", rv);
    if (strcmp(a, b) != 0) {
        fprintf(stderr, "pt_snapbench: restored state differs\n");
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("snapshot bytes=%" PRIu64 " index=%" PRIu64 " pin_us=%ld write_ms=%" PRIu64
           " restore_ms=%" PRIu64 " maxrss_kib=%ld\n",
           d.size, d.index, pin_us, write_ms, restore_ms, ru.ru_maxrss);
    pt_metastore_close(dst);
    pt_metastore_close(src);
    return 0;
}
