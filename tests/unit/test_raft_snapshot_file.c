/*
 * test_raft_snapshot_file.c - raft snapshots by reference: a pinned store written to a file
 * while writes go on, restored in small batches, descriptors and file names that refuse
 * garbage, a damaged file that never leaves a store claiming its index, the FSM's version 3
 * callbacks (snapshot, snapshot_async, snapshot_finalize, restore of a descriptor and of an
 * old whole stream) and the pruning of old files. Stores come from the raft FSM fixture
 * (support/fsm_cluster.h), without starting any server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "metastore.h"
#include "raft_fsm.h"
#include "raft_snapshot.h"
#include "support/fsm_cluster.h"
#include "support/workload.h"

/* Reads a memory buffer `step` bytes at a time (a small step exercises every refill). */
struct mem {
    const unsigned char *p;
    size_t len, off, step;
};

static int mem_read(void *arg, void *buf, size_t cap, size_t *got)
{
    struct mem *m = arg;
    size_t n = m->len - m->off;
    if (n > cap)
        n = cap;
    if (n > m->step)
        n = m->step;
    memcpy(buf, m->p + m->off, n);
    m->off += n;
    *got = n;
    return 0;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return p;
}

static void sdir_of(struct pt_fsm_cluster *f, char *out, size_t cap)
{
    snprintf(out, cap, "%s/raft-snapshots", f->dir);
}

static void file_of(const char *sdir, uint64_t index, char *out, size_t cap)
{
    char name[PT_SNAPFILE_NAME_MAX];
    pt_snapfile_name(index, name, sizeof(name));
    snprintf(out, cap, "%s/%s", sdir, name);
}

/* A file written from a pin holds the pinned state, whatever was written after the pin; it
 * restores in batches of a few hundred bytes read 7 bytes at a time. */
static void test_file_from_pin(void **state)
{
    struct pt_fsm_cluster *f = *state;
    char sdir[512], path[600], at_pin[65], after[65], got[65];
    sdir_of(f, sdir, sizeof(sdir));
    pt_workload_push(f->ms[0], 1, 30);
    struct pt_metastore_pin *pin;
    assert_int_equal(pt_metastore_pin(f->ms[0], &pin), 0);
    assert_int_equal(pt_metastore_pin_index(pin), 29);
    pt_workload_state(f->ms[0], at_pin);
    pt_workload_push(f->ms[0], 30, 45); /* writes go on while the snapshot is written */
    pt_workload_state(f->ms[0], after);
    assert_string_not_equal(at_pin, after);

    struct pt_snapdesc d;
    assert_int_equal(pt_snapfile_write(sdir, pin, 7, &d), 0);
    pt_metastore_unpin(pin);
    assert_int_equal(d.index, 29);
    assert_int_equal(d.source, 7);
    assert_true(pt_snapfile_have(sdir, &d));
    file_of(sdir, 29, path, sizeof(path));
    size_t len;
    unsigned char *bytes = slurp(path, &len);
    assert_int_equal(len, d.size);
    /* no temporary file is left behind */
    char tmp[700];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0);

    /* restore in tiny batches into a store holding something else */
    pt_workload_push(f->ms[1], 1, 5);
    struct mem m = {.p = bytes, .len = len, .step = 7};
    uint64_t index = 0;
    assert_int_equal(
        pt_metastore_restore_stream(f->ms[1], mem_read, &m, 300, d.size, d.sha256, &index), 0);
    assert_int_equal(index, 29);
    assert_int_equal(pt_metastore_applied_index(f->ms[1]), 29);
    pt_workload_state(f->ms[1], got);
    assert_string_equal(got, at_pin);

    /* the file is the stream format byte for byte: the in-memory snapshot of the restored
     * store is the same bytes, and the whole-stream restore reads the file */
    void *buf;
    size_t blen;
    assert_int_equal(pt_metastore_snapshot(f->ms[1], &buf, &blen, &index), 0);
    assert_int_equal(blen, len);
    assert_memory_equal(buf, bytes, len);
    free(buf);
    assert_int_equal(pt_metastore_restore(f->ms[2], bytes, len), 0);
    pt_workload_state(f->ms[2], got);
    assert_string_equal(got, at_pin);

    /* and through the file API, after a restart */
    pt_fsm_cluster_reopen(f, 2);
    assert_int_equal(pt_metastore_applied_index(f->ms[2]), 29);
    pt_workload_push(f->ms[2], 29, 33);
    assert_int_equal(pt_snapfile_restore(f->ms[2], sdir, &d), 0);
    pt_workload_assert_unchanged(f->ms[2], at_pin, 29);
    free(bytes);
}

/* Damage anywhere, truncation, a wrong size or checksum: refused, and the store never claims
 * the snapshot's index (unchanged, or at index 0 "restoring" and halted). */
static void test_file_damage(void **state)
{
    struct pt_fsm_cluster *f = *state;
    char sdir[512], path[600], before[65];
    sdir_of(f, sdir, sizeof(sdir));
    pt_workload_push(f->ms[0], 1, 12);
    struct pt_metastore_pin *pin;
    assert_int_equal(pt_metastore_pin(f->ms[0], &pin), 0);
    struct pt_snapdesc d;
    assert_int_equal(pt_snapfile_write(sdir, pin, 1, &d), 0);
    pt_metastore_unpin(pin);
    file_of(sdir, d.index, path, sizeof(path));
    size_t len;
    unsigned char *bytes = slurp(path, &len);

    int devnull = open("/dev/null", O_WRONLY);
    int saved = pt_log_set_fd(devnull);
    const size_t flips[] = {0, 9, 13, 25, 40, len / 3, len / 2, len - 40, len - 1};
    for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
        pt_workload_push(f->ms[1], 1, 3);
        pt_workload_state(f->ms[1], before);
        bytes[flips[i]] ^= 0x41;
        struct mem m = {.p = bytes, .len = len, .step = 4096};
        int rv = pt_metastore_restore_stream(f->ms[1], mem_read, &m, 256, 0, NULL, NULL);
        bytes[flips[i]] ^= 0x41;
        assert_int_equal(rv, PT_E_CORRUPT);
        uint64_t at = pt_metastore_applied_index(f->ms[1]);
        assert_true(at == 0 || at == 2);
        if (at == 2)
            pt_workload_assert_unchanged(f->ms[1], before, 2);
        else
            assert_int_equal(pt_metastore_halted(f->ms[1]), PT_E_CORRUPT);
        /* after a restart the store still does not claim the index */
        pt_fsm_cluster_reopen(f, 1);
        assert_true(pt_metastore_applied_index(f->ms[1]) == at);
    }
    const size_t cuts[] = {0, 5, 30, len / 2, len - 32, len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        struct mem m = {.p = bytes, .len = cuts[i], .step = 1000};
        assert_int_equal(pt_metastore_restore_stream(f->ms[1], mem_read, &m, 256, 0, NULL, NULL),
                         PT_E_CORRUPT);
        assert_true(pt_metastore_applied_index(f->ms[1]) != d.index);
        pt_fsm_cluster_reopen(f, 1);
    }
    /* a valid stream that is not the one the descriptor names */
    unsigned char wrong[32];
    memcpy(wrong, d.sha256, 32);
    wrong[3] ^= 1;
    struct mem m = {.p = bytes, .len = len, .step = 4096};
    assert_int_equal(pt_metastore_restore_stream(f->ms[1], mem_read, &m, 256, 0, wrong, NULL),
                     PT_E_CORRUPT);
    assert_int_equal(pt_metastore_applied_index(f->ms[1]), 0);
    pt_fsm_cluster_reopen(f, 1);
    m.off = 0;
    assert_int_equal(pt_metastore_restore_stream(f->ms[1], mem_read, &m, 256, len + 1, NULL, NULL),
                     PT_E_CORRUPT);
    pt_fsm_cluster_reopen(f, 1);
    /* trailing bytes after a valid stream */
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, bytes, len);
    longer[len] = 0;
    struct mem ml = {.p = longer, .len = len + 1, .step = 4096};
    assert_int_equal(pt_metastore_restore_stream(f->ms[1], mem_read, &ml, 256, 0, NULL, NULL),
                     PT_E_CORRUPT);
    pt_fsm_cluster_reopen(f, 1);
    free(longer);
    pt_log_set_fd(saved);
    close(devnull);

    /* the intact file still restores */
    m.off = 0;
    assert_int_equal(pt_metastore_restore_stream(f->ms[1], mem_read, &m, 256, len, d.sha256, NULL),
                     0);
    char a[65], b[65];
    pt_workload_state(f->ms[0], a);
    pt_workload_state(f->ms[1], b);
    assert_string_equal(a, b);
    free(bytes);
}

static void test_descriptor(void **state)
{
    (void)state;
    struct pt_snapdesc d = {.index = 42, .size = 1000, .source = 3}, e;
    for (int i = 0; i < 32; i++)
        d.sha256[i] = (unsigned char)i;
    unsigned char b[PT_SNAPDESC_LEN];
    pt_snapdesc_encode(&d, b);
    assert_memory_equal(b, "PTLNSDSC", 8);
    assert_true(pt_snapdesc_is(b, sizeof(b)));
    assert_int_equal(pt_snapdesc_parse(b, sizeof(b), &e), 0);
    assert_int_equal(e.index, 42);
    assert_int_equal(e.size, 1000);
    assert_int_equal(e.source, 3);
    assert_memory_equal(e.sha256, d.sha256, 32);

    /* garbage: lengths, magic, version, flags, zero fields, a size beyond the bound */
    assert_int_equal(pt_snapdesc_parse(NULL, 0, &e), PT_E_CORRUPT);
    assert_int_equal(pt_snapdesc_parse(b, sizeof(b) - 1, &e), PT_E_CORRUPT);
    unsigned char big[PT_SNAPDESC_LEN + 8] = {0};
    memcpy(big, b, sizeof(b));
    assert_int_equal(pt_snapdesc_parse(big, sizeof(big), &e), PT_E_CORRUPT);
    const size_t fields[] = {0, 7, 8, 12, 15};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        b[fields[i]] ^= 1;
        assert_int_equal(pt_snapdesc_parse(b, sizeof(b), &e), PT_E_CORRUPT);
        b[fields[i]] ^= 1;
    }
    struct pt_snapdesc bad[] = {
        {.index = 0, .size = 1, .source = 1},
        {.index = 1, .size = 0, .source = 1},
        {.index = 1, .size = 1, .source = 0},
        {.index = 1, .size = PT_SNAPFILE_SIZE_MAX + 1, .source = 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pt_snapdesc_encode(&bad[i], b);
        assert_int_equal(pt_snapdesc_parse(b, sizeof(b), &e), PT_E_CORRUPT);
    }
    /* an old whole stream is not a descriptor */
    assert_false(pt_snapdesc_is("PTLNSNAP\1\0\0\0", 12));

    /* file names: only "<index>.pts", so never a path */
    uint64_t index;
    assert_int_equal(pt_snapfile_parse_name("12.pts", 6, &index), 0);
    assert_int_equal(index, 12);
    assert_int_equal(pt_snapfile_parse_name("18446744073709551615.pts", 24, &index), 0);
    assert_int_equal(index, UINT64_MAX);
    const char *refused[] = {"",          ".pts",     "0.pts",  "012.pts",
                             "1.pts.tmp", "../1.pts", "/1.pts", "1/2.pts",
                             "1.PTS",     "-1.pts",   "1 .pts", "18446744073709551616.pts",
                             "1.pt",      "a1.pts",   "1.pts/", "99999999999999999999.pts"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_int_equal(pt_snapfile_parse_name(refused[i], strlen(refused[i]), &index),
                         PT_E_NAME_INVALID);
    assert_int_equal(pt_snapfile_parse_name("1.pts\0x", 7, &index), PT_E_NAME_INVALID);
    char name[PT_SNAPFILE_NAME_MAX];
    pt_snapfile_name(UINT64_MAX, name, sizeof(name));
    assert_string_equal(name, "18446744073709551615.pts");
}

/* The FSM's version 3 callbacks as raft calls them, and restore of both snapshot kinds. */
static void test_fsm_by_reference(void **state)
{
    struct pt_fsm_cluster *f = *state;
    char sdir[512];
    sdir_of(f, sdir, sizeof(sdir));
    struct pt_raft_fsm *src = &f->fsm[0], *dst = &f->fsm[1];
    pt_raft_fsm_init(src, f->ms[0], NULL);
    pt_raft_fsm_init(dst, f->ms[1], NULL);
    assert_int_equal(pt_raft_fsm_use_files(src, sdir, 5), 0);
    assert_int_equal(pt_raft_fsm_use_files(dst, sdir, 6), 0);
    assert_int_equal(src->fsm.version, 3);
    assert_non_null(src->fsm.snapshot_async);
    assert_non_null(src->fsm.snapshot_finalize);

    /* nothing applied: no snapshot (raft retries) */
    struct raft_buffer *bufs = NULL;
    unsigned n_bufs = 0;
    assert_int_equal(src->fsm.snapshot(&src->fsm, &bufs, &n_bufs), RAFT_BUSY);

    pt_workload_push(f->ms[0], 1, 20);
    assert_int_equal(src->fsm.snapshot(&src->fsm, &bufs, &n_bufs), 0);
    assert_int_equal(n_bufs, 1);
    assert_int_equal(bufs[0].len, PT_SNAPDESC_LEN);
    /* a second one while the first is being written: busy */
    struct raft_buffer *bufs2;
    unsigned n2;
    assert_int_equal(src->fsm.snapshot(&src->fsm, &bufs2, &n2), RAFT_BUSY);
    pt_workload_push(f->ms[0], 20, 25); /* applied between snapshot and snapshot_async */
    assert_int_equal(src->fsm.snapshot_async(&src->fsm, &bufs, &n_bufs), 0);
    struct pt_snapdesc d;
    assert_int_equal(pt_snapdesc_parse(bufs[0].base, bufs[0].len, &d), 0);
    assert_int_equal(d.index, 19);
    assert_int_equal(d.source, 5);
    /* what raft stores and sends: a copy of the descriptor */
    struct raft_buffer copy = {.base = raft_malloc(bufs[0].len), .len = bufs[0].len};
    memcpy(copy.base, bufs[0].base, copy.len);
    assert_int_equal(src->fsm.snapshot_finalize(&src->fsm, &bufs, &n_bufs), 0);
    assert_int_equal(src->n_snapshots, 1);
    assert_int_equal(src->snapshot_bytes, d.size);
    assert_null(src->job);

    /* restore of the descriptor takes the buffer and restores the file */
    assert_int_equal(dst->fsm.restore(&dst->fsm, &copy), 0);
    assert_int_equal(dst->n_restored, 1);
    assert_int_equal(dst->n_restored_files, 1);
    assert_int_equal(pt_metastore_applied_index(f->ms[1]), 19);

    /* a descriptor the store has already applied is skipped */
    struct raft_buffer again = {.base = raft_malloc(PT_SNAPDESC_LEN), .len = PT_SNAPDESC_LEN};
    pt_snapdesc_encode(&d, again.base);
    assert_int_equal(dst->fsm.restore(&dst->fsm, &again), 0);
    assert_int_equal(dst->n_restore_skipped, 1);

    /* a descriptor of a file this region does not hold: refused, store unchanged */
    char before[65];
    pt_workload_state(f->ms[2], before);
    struct pt_raft_fsm *other = &f->fsm[2];
    pt_raft_fsm_init(other, f->ms[2], NULL);
    assert_int_equal(pt_raft_fsm_use_files(other, sdir, 7), 0);
    struct pt_snapdesc missing = d;
    missing.index = 1000;
    struct raft_buffer m = {.base = raft_malloc(PT_SNAPDESC_LEN), .len = PT_SNAPDESC_LEN};
    pt_snapdesc_encode(&missing, m.base);
    int devnull = open("/dev/null", O_WRONLY);
    int saved = pt_log_set_fd(devnull);
    assert_int_not_equal(other->fsm.restore(&other->fsm, &m), 0);
    pt_log_set_fd(saved);
    close(devnull);
    raft_free(m.base); /* refused: still the caller's */
    pt_workload_assert_unchanged(f->ms[2], before, 0);

    /* an old whole stream still restores (a region upgraded from the previous version) */
    struct raft_buffer old;
    uint64_t index;
    assert_int_equal(
        pt_metastore_snapshot_with(f->ms[0], raft_realloc, raft_free, &old.base, &old.len, &index),
        0);
    assert_int_equal(other->fsm.restore(&other->fsm, &old), 0);
    assert_int_equal(pt_metastore_applied_index(f->ms[2]), 24);
    assert_int_equal(other->n_restored_files, 0);
    char a[65], b[65];
    pt_workload_state(f->ms[0], a);
    pt_workload_state(f->ms[2], b);
    assert_string_equal(a, b);
}

static void touch(const char *sdir, const char *name)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", sdir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
}

static bool exists(const char *sdir, const char *name)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", sdir, name);
    return access(path, F_OK) == 0;
}

static void test_prune(void **state)
{
    struct pt_fsm_cluster *f = *state;
    char sdir[512];
    sdir_of(f, sdir, sizeof(sdir));
    mkdir(sdir, 0700);
    const char *names[] = {"3.pts", "10.pts",    "2.pts",      "25.pts",
                           "7.pts", "3.pts.tmp", "30.pts.tmp", "other"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        touch(sdir, names[i]);
    uint64_t busy = 3;
    assert_int_equal(pt_snapfile_prune(sdir, 2, &busy, 1), 2); /* 2 and 7 */
    assert_true(exists(sdir, "25.pts"));
    assert_true(exists(sdir, "10.pts"));
    assert_true(exists(sdir, "3.pts"));      /* being restored */
    assert_true(exists(sdir, "30.pts.tmp")); /* a fetch or write running */
    assert_true(exists(sdir, "3.pts.tmp"));
    assert_true(exists(sdir, "other"));
    assert_false(exists(sdir, "2.pts"));
    assert_false(exists(sdir, "7.pts"));
    assert_int_equal(pt_snapfile_prune(sdir, 2, NULL, 0), 1);
    assert_false(exists(sdir, "3.pts"));
    assert_false(exists(sdir, "3.pts.tmp"));
}

int main(void)
{
    static unsigned one = 1, three = 3;
#define TEST(fn, stores)                                                                           \
    cmocka_unit_test_prestate_setup_teardown(fn, pt_fsm_cluster_setup, pt_fsm_cluster_teardown,    \
                                             &stores)
    const struct CMUnitTest tests[] = {
        TEST(test_file_from_pin, three), TEST(test_file_damage, three),
        TEST(test_descriptor, one),      TEST(test_fsm_by_reference, three),
        TEST(test_prune, one),
    };
#undef TEST
    return cmocka_run_group_tests(tests, NULL, NULL);
}
