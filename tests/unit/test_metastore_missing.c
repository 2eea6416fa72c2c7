/*
 * test_metastore_missing.c - the index of the blobs a region lacks (node/store/
 * metastore_missing.c).
 *
 * Covered: the index follows every kind of change of blob_locations, checked after each
 * against a walk of blob_locations (pt_metastore_missing_foreach): a blob stored elsewhere (a
 * record), stored here too (none), stored here first, collected (none), a region removed (the
 * index unchanged, the removed region still named as holder); a batch discarded leaves it as
 * it was; a snapshot restore rebuilds it; a store written without the index (an older
 * version) builds it at pt_metastore_missing_index, and one kept for another region is
 * rebuilt; pages (after, max) and totals; the index survives a reopen.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "err.h"
#include "metastore.h"
#include "support/ms_fixture.h"
#include "support/text_digest.h"

#define HERE "eu"
#define MAXN 16

struct list {
    size_t n;
    char digests[MAXN][PT_DIGEST_STR_MAX + 1];
    uint64_t sizes[MAXN];
    size_t holders[MAXN];
    char first_holder[MAXN][64];
};

static int collect(const char *digest, uint64_t size, const char *const *holders, size_t n,
                   void *arg)
{
    struct list *l = arg;
    assert_true(l->n < MAXN);
    snprintf(l->digests[l->n], sizeof(l->digests[0]), "%s", digest);
    l->sizes[l->n] = size;
    l->holders[l->n] = n;
    snprintf(l->first_holder[l->n], sizeof(l->first_holder[0]), "%s", n > 0 ? holders[0] : "");
    l->n++;
    return 0;
}

/* The index of region lists exactly what a walk of blob_locations finds; returns how many. */
static size_t agrees(struct pt_metastore *ms, const char *region)
{
    struct list walk = {0}, idx = {0};
    size_t count;
    assert_int_equal(pt_metastore_missing_foreach(ms, region, collect, &walk), 0);
    assert_int_equal(pt_metastore_missing_page(ms, region, NULL, MAXN, collect, &idx, &count), 0);
    assert_int_equal(count, idx.n);
    assert_int_equal(walk.n, idx.n);
    uint64_t bytes = 0, tb, tbytes;
    for (size_t i = 0; i < walk.n; i++) {
        assert_string_equal(walk.digests[i], idx.digests[i]);
        assert_int_equal(walk.sizes[i], idx.sizes[i]);
        assert_int_equal(walk.holders[i], idx.holders[i]);
        assert_string_equal(walk.first_holder[i], idx.first_holder[i]);
        bytes += walk.sizes[i];
    }
    assert_int_equal(pt_metastore_missing_totals(ms, region, &tb, &tbytes), 0);
    assert_int_equal(tb, walk.n);
    assert_int_equal(tbytes, bytes);
    return walk.n;
}

static void stored(struct pt_ms_fixture *f, const char *digest, uint64_t size, const char *region)
{
    struct pt_metastore_batch *b = pt_ms_batch(f);
    assert_int_equal(pt_metastore_batch_blob_stored(b, digest, size, region), 0);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    pt_metastore_batch_free(b);
}

static void test_follows_every_change(void **state)
{
    struct pt_ms_fixture *f = *state;
    char d[3][PT_DIGEST_STR_MAX + 1];
    pt_text_digest("a", d[0]);
    pt_text_digest("b", d[1]);
    pt_text_digest("c", d[2]);
    assert_int_equal(pt_metastore_missing_index(f->ms, HERE), 0);
    assert_int_equal(agrees(f->ms, HERE), 0);

    /* stored elsewhere: missing here, with its holder */
    stored(f, d[0], 10, "us");
    stored(f, d[1], 20, "ap");
    assert_int_equal(agrees(f->ms, HERE), 2);
    /* stored here too: no longer missing */
    stored(f, d[0], 10, HERE);
    assert_int_equal(agrees(f->ms, HERE), 1);
    /* stored here first, then elsewhere: never missing */
    stored(f, d[2], 30, HERE);
    stored(f, d[2], 30, "us");
    assert_int_equal(agrees(f->ms, HERE), 1);

    /* a batch discarded changes nothing */
    struct pt_metastore_batch *b = pt_ms_batch(f);
    assert_int_equal(pt_metastore_batch_blob_stored(b, d[1], 20, HERE), 0);
    pt_metastore_batch_free(b);
    assert_int_equal(agrees(f->ms, HERE), 1);

    /* a region removed: holders are not rewritten, so the index stays as it was */
    struct pt_region_rec r = {.id = 7};
    snprintf(r.name, sizeof(r.name), "ap");
    b = pt_ms_batch(f);
    assert_int_equal(pt_metastore_batch_region_put(b, &r), 0);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    pt_metastore_batch_free(b);
    b = pt_ms_batch(f);
    assert_int_equal(pt_metastore_batch_region_delete(b, 7), 0);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    pt_metastore_batch_free(b);
    assert_int_equal(agrees(f->ms, HERE), 1);

    /* collected: the location and the record go together */
    b = pt_ms_batch(f);
    struct pt_gc_verdict v;
    assert_int_equal(pt_metastore_batch_gc_collect(b, d[1], 1000000, 0, &v), 0);
    assert_true(v.collected);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    pt_metastore_batch_free(b);
    assert_int_equal(agrees(f->ms, HERE), 0);
    assert_int_equal(pt_metastore_blob_location(f->ms, d[1], NULL), PT_E_BLOB_UNKNOWN);

    /* stored again elsewhere after the collection: missing again; kept across a reopen */
    stored(f, d[1], 20, "us");
    pt_ms_reopen(f);
    assert_int_equal(pt_metastore_missing_index(f->ms, HERE), 0);
    assert_int_equal(agrees(f->ms, HERE), 1);
}

static void test_build_rebuild_restore(void **state)
{
    struct pt_ms_fixture *f = *state;
    char d[5][PT_DIGEST_STR_MAX + 1];
    for (int i = 0; i < 5; i++) {
        char s[8];
        snprintf(s, sizeof(s), "x%d", i);
        pt_text_digest(s, d[i]);
    }
    /* written with no index, as by an older version */
    for (int i = 0; i < 5; i++)
        stored(f, d[i], (uint64_t)i + 1, i % 2 ? HERE : "us");
    size_t count;
    struct list l = {0};
    assert_int_equal(pt_metastore_missing_page(f->ms, HERE, NULL, 10, collect, &l, &count),
                     PT_E_UNAVAILABLE);
    pt_ms_reopen(f);
    assert_int_equal(pt_metastore_missing_index(f->ms, HERE), 0);
    assert_int_equal(agrees(f->ms, HERE), 3);
    /* another region's index is rebuilt for it; this one's no longer answers */
    assert_int_equal(pt_metastore_missing_index(f->ms, "us"), 0);
    assert_int_equal(agrees(f->ms, "us"), 2);
    assert_int_equal(pt_metastore_missing_totals(f->ms, HERE, &(uint64_t){0}, &(uint64_t){0}),
                     PT_E_UNAVAILABLE);
    assert_int_equal(pt_metastore_missing_index(f->ms, HERE), 0);
    assert_int_equal(pt_metastore_missing_index(f->ms, ""), PT_E_CONFIG);

    /* pages: after and max */
    struct list all = {0}, p1 = {0}, p2 = {0};
    assert_int_equal(pt_metastore_missing_page(f->ms, HERE, "", 10, collect, &all, &count), 0);
    assert_int_equal(count, 3);
    assert_int_equal(pt_metastore_missing_page(f->ms, HERE, NULL, 2, collect, &p1, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(pt_metastore_missing_page(f->ms, HERE, p1.digests[1], 2, collect, &p2, &count),
                     0);
    assert_int_equal(count, 1);
    assert_string_equal(p1.digests[0], all.digests[0]);
    assert_string_equal(p1.digests[1], all.digests[1]);
    assert_string_equal(p2.digests[0], all.digests[2]);

    /* a restore brings another state's locations and the index follows in the same write */
    void *snap;
    size_t snap_len;
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot(f->ms, &snap, &snap_len, &index), 0);
    stored(f, d[0], 1, HERE); /* after the snapshot: undone by the restore */
    char e[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("later", e);
    stored(f, e, 9, "us");
    assert_int_equal(agrees(f->ms, HERE), 3);
    assert_int_equal(pt_metastore_restore(f->ms, snap, snap_len), 0);
    free(snap);
    assert_int_equal(agrees(f->ms, HERE), 3);
    struct list after = {0};
    assert_int_equal(pt_metastore_missing_page(f->ms, HERE, NULL, 10, collect, &after, &count), 0);
    for (size_t i = 0; i < after.n; i++)
        assert_string_not_equal(after.digests[i], e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_follows_every_change, pt_ms_setup, pt_ms_teardown),
        cmocka_unit_test_setup_teardown(test_build_rebuild_restore, pt_ms_setup, pt_ms_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
