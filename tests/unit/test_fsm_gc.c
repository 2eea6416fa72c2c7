/*
 * test_fsm_gc.c - garbage collection of blobs in the replicated state machine: the reference
 * index PutManifest and DeleteManifest keep, CollectBlobs's re-check at apply (references,
 * grace as of the entry's own time, links made again), idempotence, per-repository unlinking,
 * BlobStored of a replica after a collection, the marking walk, the records travelling in a
 * snapshot, and untagged referrers of a deleted subject.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "digest.h"
#include "err.h"
#include "fsm.h"
#include "metastore.h"
#include "support/ff_fixture.h"
#include "support/text_digest.h"

#define HOUR 3600000LL
#define DAY  (24 * HOUR)

/* Uploads digest of size into repo at t: BlobStored + LinkBlob, as the upload API does. */
static void upload(struct pt_ff_fixture *f, const char *repo, const char *digest, uint64_t size,
                   int64_t t)
{
    struct pt_command_builder b;
    pt_ff_builder(&b, t);
    assert_int_equal(pt_command_add_blob_stored(&b, digest, size, "us-east"), 0);
    assert_int_equal(pt_command_add_link_blob(&b, repo, digest, size), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
}

/* CollectBlobs of digests[0..n) at t with grace; returns the status, *collected the count. */
static int collect(struct pt_ff_fixture *f, const char *const *digests, size_t n, int64_t t,
                   int64_t grace, unsigned *collected)
{
    struct pt_command_builder b;
    pt_ff_builder(&b, t);
    assert_int_equal(pt_command_add_collect_blobs(&b, digests, n, grace), 0);
    void *buf;
    size_t len;
    assert_int_equal(pt_command_builder_encode(&b, &buf, &len), 0);
    pt_command_builder_free(&b);
    struct pt_fsm_result res;
    assert_int_equal(pt_fsm_apply(f->ms[0], buf, len, ++f->index, &res), 0);
    free(buf);
    if (collected != NULL)
        *collected = res.collected;
    return res.status;
}

static int located(struct pt_ff_fixture *f, const char *digest)
{
    return pt_metastore_blob_location(f->ms[0], digest, NULL) == 0;
}

static void test_collect_rechecks_references(void **state)
{
    struct pt_ff_fixture *f = *state;
    char layer[PT_DIGEST_STR_MAX + 1], cfg[PT_DIGEST_STR_MAX + 1], m[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("layer", layer);
    pt_text_digest("config", cfg);
    pt_text_digest("{\"m\":1}", m);
    upload(f, "app", layer, 5, PT_FF_T0);
    upload(f, "app", cfg, 6, PT_FF_T0);
    struct pt_command_builder b;
    const char *blobs[] = {cfg, layer};
    pt_ff_builder(&b, PT_FF_T0);
    pt_ff_add_manifest(&b, "app", "{\"m\":1}", "latest", NULL, blobs, 2, NULL, 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);

    /* referenced: nothing happens, whatever the age */
    unsigned n = 9;
    const char *both[] = {layer, cfg};
    assert_int_equal(collect(f, both, 2, PT_FF_T0 + 10 * HOUR, HOUR, &n), 0);
    assert_int_equal(n, 0);
    assert_true(located(f, layer));
    struct pt_gc_verdict v;
    assert_int_equal(pt_metastore_gc_check(f->ms[0], layer, PT_FF_T0 + 10 * HOUR, HOUR, &v), 0);
    assert_int_equal(v.referenced, 1);
    assert_int_equal(v.collected, 0);

    /* the manifest deleted: both collected, links and locations gone */
    pt_ff_builder(&b, PT_FF_T0 + HOUR);
    assert_int_equal(pt_command_add_delete_manifest(&b, "app", m), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(collect(f, both, 2, PT_FF_T0 + 10 * HOUR, HOUR, &n), 0);
    assert_int_equal(n, 2);
    assert_false(located(f, layer));
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "app", layer, NULL), PT_E_BLOB_UNKNOWN);

    /* the region's list of files to delete names them; a drain walks it in digest order */
    char d[PT_DIGEST_STR_MAX + 1], d2[PT_DIGEST_STR_MAX + 1];
    int64_t t;
    assert_int_equal(pt_metastore_gc_pending_next(f->ms[0], NULL, d, &t), 0);
    assert_int_equal(pt_metastore_gc_pending_next(f->ms[0], d, d2, &t), 0);
    assert_true(strcmp(d, d2) < 0);
    assert_true((strcmp(d, layer) == 0 && strcmp(d2, cfg) == 0) ||
                (strcmp(d, cfg) == 0 && strcmp(d2, layer) == 0));
    assert_int_equal(pt_metastore_gc_pending_next(f->ms[0], d2, d2, &t), PT_E_NOT_FOUND);
    assert_int_equal(pt_metastore_gc_pending_first(f->ms[0], d, &t), 0);
    assert_true(strcmp(d, layer) == 0 || strcmp(d, cfg) == 0);
    assert_int_equal(t, PT_FF_T0 + 10 * HOUR);
    assert_int_equal(pt_metastore_gc_pending_delete(f->ms[0], d), 0);
    assert_int_equal(pt_metastore_gc_pending_first(f->ms[0], d, &t), 0);
    assert_int_equal(pt_metastore_gc_pending_delete(f->ms[0], d), 0);
    assert_int_equal(pt_metastore_gc_pending_first(f->ms[0], d, &t), PT_E_NOT_FOUND);

    /* a manifest PUT ordered after the collection does not find the blob */
    pt_ff_builder(&b, PT_FF_T0 + 11 * HOUR);
    pt_ff_add_manifest(&b, "app", "{\"m\":1}", "latest", NULL, blobs, 2, NULL, 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_MANIFEST_BLOB_UNKNOWN);

    /* idempotent: collecting again changes nothing */
    char before[65], after[65];
    pt_ff_digest_state(f->ms[0], before);
    assert_int_equal(collect(f, both, 2, PT_FF_T0 + 12 * HOUR, HOUR, &n), 0);
    assert_int_equal(n, 0);
    pt_ff_digest_state(f->ms[0], after);
    assert_string_equal(before, after);
}

static void test_collect_grace_and_relink(void **state)
{
    struct pt_ff_fixture *f = *state;
    char layer[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("layer", layer);
    upload(f, "app", layer, 5, PT_FF_T0);
    const char *one[] = {layer};
    unsigned n;
    /* younger than the grace as of the entry's time: kept */
    assert_int_equal(collect(f, one, 1, PT_FF_T0 + HOUR - 1, HOUR, &n), 0);
    assert_int_equal(n, 0);
    assert_true(located(f, layer));
    /* linked again (an upload of the same blob) just before: the grace starts over */
    upload(f, "app", layer, 5, PT_FF_T0 + 2 * HOUR);
    assert_int_equal(collect(f, one, 1, PT_FF_T0 + 2 * HOUR + 10, HOUR, &n), 0);
    assert_int_equal(n, 0);
    assert_true(located(f, layer));
    /* old enough as of the entry's own time: collected */
    assert_int_equal(collect(f, one, 1, PT_FF_T0 + 3 * HOUR, HOUR, &n), 0);
    assert_int_equal(n, 1);
    assert_false(located(f, layer));
    /* a replica fetched meanwhile is not recorded; a new upload is */
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0 + 4 * HOUR);
    assert_int_equal(pt_command_add_blob_replica(&b, layer, 5, "eu-west"), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_BLOB_UNKNOWN);
    assert_false(located(f, layer));
    /* a mount decided before the collection (LinkBlob alone) does not link it again */
    pt_ff_builder(&b, PT_FF_T0 + 4 * HOUR);
    assert_int_equal(pt_command_add_link_blob(&b, "other", layer, 5), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_BLOB_UNKNOWN);
    upload(f, "app", layer, 5, PT_FF_T0 + 4 * HOUR);
    assert_true(located(f, layer));
    pt_ff_builder(&b, PT_FF_T0 + 4 * HOUR);
    assert_int_equal(pt_command_add_blob_replica(&b, layer, 5, "eu-west"), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    pt_ff_builder(&b, PT_FF_T0 + 4 * HOUR);
    assert_int_equal(pt_command_add_link_blob(&b, "other", layer, 5), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
}

static void test_collect_per_repository(void **state)
{
    struct pt_ff_fixture *f = *state;
    char layer[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("layer", layer);
    upload(f, "a", layer, 5, PT_FF_T0);
    upload(f, "b", layer, 5, PT_FF_T0);
    const char *blobs[] = {layer};
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    pt_ff_add_manifest(&b, "a", "{\"m\":1}", "latest", NULL, blobs, 1, NULL, 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    /* b's link is unreferenced and old: unlinked; a keeps the blob */
    unsigned n;
    assert_int_equal(collect(f, blobs, 1, PT_FF_T0 + 2 * HOUR, HOUR, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "b", layer, NULL), PT_E_BLOB_UNKNOWN);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "a", layer, NULL), 0);
    assert_true(located(f, layer));
    /* a manifest of b now needs the blob linked again */
    pt_ff_builder(&b, PT_FF_T0 + 2 * HOUR);
    pt_ff_add_manifest(&b, "b", "{\"m\":2}", NULL, NULL, blobs, 1, NULL, 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_MANIFEST_BLOB_UNKNOWN);
}

static void test_collect_refused(void **state)
{
    struct pt_ff_fixture *f = *state;
    unsigned n;
    const char *bad[] = {"sha256:1234"};
    char before[65], after[65];
    pt_ff_digest_state(f->ms[0], before);
    assert_int_equal(collect(f, bad, 1, PT_FF_T0, HOUR, &n), PT_E_DIGEST_INVALID);
    char layer[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("layer", layer);
    const char *one[] = {layer};
    assert_int_equal(collect(f, one, 1, PT_FF_T0, -1, &n), PT_E_CONFIG);
    pt_ff_digest_state(f->ms[0], after);
    assert_string_equal(before, after);
    /* too many candidates: the builder refuses */
    const char **many = calloc(PT_COMMAND_COLLECT_MAX + 1, sizeof(*many));
    assert_non_null(many);
    for (size_t i = 0; i <= PT_COMMAND_COLLECT_MAX; i++)
        many[i] = layer;
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_collect_blobs(&b, many, PT_COMMAND_COLLECT_MAX + 1, 0),
                     PT_E_TOO_LARGE);
    pt_command_builder_free(&b);
    free(many);
}

struct marks {
    unsigned visited, candidates;
    char last[PT_DIGEST_STR_MAX + 1];
};

static int mark_cb(const char *digest, const struct pt_gc_verdict *v, void *arg)
{
    struct marks *m = arg;
    m->visited++;
    m->candidates += v->collected || v->links_removed > 0;
    snprintf(m->last, sizeof(m->last), "%s", digest);
    return 0;
}

static void test_mark_and_snapshot(void **state)
{
    struct pt_ff_fixture *f = *state;
    char d[3][PT_DIGEST_STR_MAX + 1];
    const char *texts[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        pt_text_digest(texts[i], d[i]);
        upload(f, "app", d[i], 3, PT_FF_T0);
    }
    const char *blobs[] = {d[0]};
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    pt_ff_add_manifest(&b, "app", "{\"m\":1}", "latest", NULL, blobs, 1, NULL, 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);

    struct marks m = {0};
    assert_int_equal(pt_metastore_gc_mark(f->ms[0], NULL, PT_FF_T0 + 2 * HOUR, HOUR, mark_cb, &m),
                     0);
    assert_int_equal(m.visited, 3);
    assert_int_equal(m.candidates, 2);
    /* resumes after a digest; younger than the grace: no candidate */
    struct marks m2 = {0};
    assert_int_equal(
        pt_metastore_gc_mark(f->ms[0], m.last, PT_FF_T0 + 2 * HOUR, HOUR, mark_cb, &m2), 0);
    assert_int_equal(m2.visited, 0);
    struct marks m3 = {0};
    assert_int_equal(pt_metastore_gc_mark(f->ms[0], "", PT_FF_T0 + 1, HOUR, mark_cb, &m3), 0);
    assert_int_equal(m3.candidates, 0);

    /* the index travels in a snapshot: the second store decides the same */
    void *buf;
    size_t len;
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot(f->ms[0], &buf, &len, &index), 0);
    assert_int_equal(pt_metastore_restore(f->ms[1], buf, len), 0);
    free(buf);
    struct pt_gc_verdict v;
    assert_int_equal(pt_metastore_gc_check(f->ms[1], d[0], PT_FF_T0 + 2 * HOUR, HOUR, &v), 0);
    assert_int_equal(v.referenced, 1);
    assert_int_equal(pt_metastore_gc_check(f->ms[1], d[1], PT_FF_T0 + 2 * HOUR, HOUR, &v), 0);
    assert_int_equal(v.collected, 1);
    assert_int_equal(v.size, 3);

    /* the same command applied to both stores leaves the same state */
    const char *cand[] = {d[0], d[1], d[2]};
    for (int s = 0; s < 2; s++) {
        pt_ff_builder(&b, PT_FF_T0 + 2 * HOUR);
        assert_int_equal(pt_command_add_collect_blobs(&b, cand, 3, HOUR), 0);
        assert_int_equal(pt_ff_apply_to(f->ms[s], &b, index + 1), 0);
    }
    char h0[65], h1[65];
    pt_ff_digest_state(f->ms[0], h0);
    pt_ff_digest_state(f->ms[1], h1);
    assert_string_equal(h0, h1);
    assert_int_equal(pt_metastore_blob_location(f->ms[1], d[0], NULL), 0);
    assert_int_equal(pt_metastore_blob_location(f->ms[1], d[1], NULL), PT_E_BLOB_UNKNOWN);
}

static int ref_cb(const char *repo, const char *subject, const char *digest, void *arg)
{
    (void)repo;
    (void)subject;
    char *out = arg;
    snprintf(out, PT_DIGEST_STR_MAX + 1, "%s", digest);
    return 0;
}

static void test_orphan_referrers(void **state)
{
    struct pt_ff_fixture *f = *state;
    char subj[PT_DIGEST_STR_MAX + 1], r1[PT_DIGEST_STR_MAX + 1], r2[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("{\"s\":1}", subj);
    pt_text_digest("{\"r\":1}", r1);
    pt_text_digest("{\"r\":2}", r2);
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    pt_ff_add_manifest(&b, "app", "{\"s\":1}", "latest", NULL, NULL, 0, NULL, 0);
    pt_ff_add_manifest(&b, "app", "{\"r\":1}", NULL, subj, NULL, 0, NULL, 0);
    pt_ff_add_manifest(&b, "app", "{\"r\":2}", "sig", subj, NULL, 0, NULL, 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);

    /* the subject is there: nothing to do */
    char found[PT_DIGEST_STR_MAX + 1] = "";
    assert_int_equal(
        pt_metastore_gc_mark_referrers(f->ms[0], PT_FF_T0 + 2 * HOUR, HOUR, ref_cb, found), 0);
    assert_string_equal(found, "");
    pt_ff_builder(&b, PT_FF_T0 + HOUR);
    assert_int_equal(pt_command_add_delete_manifest(&b, "app", subj), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    /* within the grace: kept; after it: the untagged one only */
    assert_int_equal(pt_metastore_gc_mark_referrers(f->ms[0], PT_FF_T0 + 10, HOUR, ref_cb, found),
                     0);
    assert_string_equal(found, "");
    assert_int_equal(
        pt_metastore_gc_mark_referrers(f->ms[0], PT_FF_T0 + 2 * HOUR, HOUR, ref_cb, found), 0);
    assert_string_equal(found, r1);

    struct pt_command_referrer refs[] = {{"app", subj, r1}, {"app", subj, r2}};
    pt_ff_builder(&b, PT_FF_T0 + 2 * HOUR);
    assert_int_equal(pt_command_add_collect_referrers(&b, refs, 2, HOUR), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    struct pt_manifest_rec rec;
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "app", r1, &rec), PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "app", r2, &rec), 0);
    pt_manifest_rec_free(&rec);
    struct pt_referrer *list;
    size_t n;
    assert_int_equal(pt_metastore_list_referrers(f->ms[0], "app", subj, NULL, 10, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].digest, r2);
    pt_referrers_free(list, n);
}

static int child_cb(const char *repo, const char *digest, void *arg)
{
    (void)repo;
    char(*seen)[PT_DIGEST_STR_MAX + 1] = arg;
    for (int i = 0; i < 4; i++)
        if (seen[i][0] == '\0') {
            snprintf(seen[i], PT_DIGEST_STR_MAX + 1, "%s", digest);
            break;
        }
    return 0;
}

static int has_manifest(struct pt_ff_fixture *f, const char *repo, const char *digest)
{
    int rv = pt_metastore_get_manifest(f->ms[0], repo, digest, NULL);
    assert_true(rv == 0 || rv == PT_E_MANIFEST_UNKNOWN);
    return rv == 0;
}

static void test_orphan_children(void **state)
{
    struct pt_ff_fixture *f = *state;
    char layer[PT_DIGEST_STR_MAX + 1], c1[PT_DIGEST_STR_MAX + 1], c2[PT_DIGEST_STR_MAX + 1],
        c3[PT_DIGEST_STR_MAX + 1], i1[PT_DIGEST_STR_MAX + 1], i2[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("layer", layer);
    pt_text_digest("{\"c\":1}", c1);
    pt_text_digest("{\"c\":2}", c2);
    pt_text_digest("{\"c\":3}", c3);
    pt_text_digest("{\"i\":1}", i1);
    pt_text_digest("{\"i\":2}", i2);
    upload(f, "app", layer, 5, PT_FF_T0);
    const char *blobs[] = {layer};
    const char *all[] = {c1, c2, c3}, *shared[] = {c2};
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    /* c1 only in i1; c2 in i1 and in the untagged i2; c3 in i1 and tagged */
    pt_ff_add_manifest(&b, "app", "{\"c\":1}", NULL, NULL, blobs, 1, NULL, 0);
    pt_ff_add_manifest(&b, "app", "{\"c\":2}", NULL, NULL, blobs, 1, NULL, 0);
    pt_ff_add_manifest(&b, "app", "{\"c\":3}", "c3", NULL, blobs, 1, NULL, 0);
    pt_ff_add_manifest(&b, "app", "{\"i\":1}", "latest", NULL, NULL, 0, all, 3);
    pt_ff_add_manifest(&b, "app", "{\"i\":2}", NULL, NULL, NULL, 0, shared, 1);
    assert_int_equal(pt_ff_apply(f, &b), 0);

    /* the index is there: nothing to do, whatever the time */
    char seen[4][PT_DIGEST_STR_MAX + 1] = {""};
    assert_int_equal(
        pt_metastore_gc_mark_children(f->ms[0], PT_FF_T0 + 10 * DAY, HOUR, child_cb, seen), 0);
    assert_string_equal(seen[0], "");
    /* its tag deleted, the index stays, and so do its children */
    pt_ff_builder(&b, PT_FF_T0 + HOUR);
    assert_int_equal(pt_command_add_delete_tag(&b, "app", "latest"), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(
        pt_metastore_gc_mark_children(f->ms[0], PT_FF_T0 + 10 * DAY, HOUR, child_cb, seen), 0);
    assert_string_equal(seen[0], "");

    /* the index deleted: within the grace only the record of c3 comes (tagged: to be dropped;
     * c2 is still named by i2 and has none); after it c1 comes too */
    pt_ff_builder(&b, PT_FF_T0 + 2 * HOUR);
    assert_int_equal(pt_command_add_delete_manifest(&b, "app", i1), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(
        pt_metastore_gc_mark_children(f->ms[0], PT_FF_T0 + 2 * HOUR + 10, HOUR, child_cb, seen), 0);
    assert_string_equal(seen[0], c3);
    assert_string_equal(seen[1], "");
    memset(seen, 0, sizeof(seen));
    assert_int_equal(
        pt_metastore_gc_mark_children(f->ms[0], PT_FF_T0 + 4 * HOUR, HOUR, child_cb, seen), 0);
    assert_true((strcmp(seen[0], c1) == 0 && strcmp(seen[1], c3) == 0) ||
                (strcmp(seen[0], c3) == 0 && strcmp(seen[1], c1) == 0));
    assert_string_equal(seen[2], "");
    struct pt_command_child kids[] = {{"app", c1}, {"app", c2}, {"app", c3}};
    /* applied too early (as of the entry's own time): kept */
    pt_ff_builder(&b, PT_FF_T0 + 2 * HOUR + 10);
    assert_int_equal(pt_command_add_collect_children(&b, kids, 3, HOUR), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_true(has_manifest(f, "app", c1));
    pt_ff_builder(&b, PT_FF_T0 + 4 * HOUR);
    assert_int_equal(pt_command_add_collect_children(&b, kids, 3, HOUR), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_false(has_manifest(f, "app", c1));
    assert_true(has_manifest(f, "app", c2));
    assert_true(has_manifest(f, "app", c3));
    /* every orphan record is gone: a later mark finds nothing */
    memset(seen, 0, sizeof(seen));
    assert_int_equal(
        pt_metastore_gc_mark_children(f->ms[0], PT_FF_T0 + 10 * DAY, HOUR, child_cb, seen), 0);
    assert_string_equal(seen[0], "");
    /* c1's reference to the layer went with it; c2 and c3 still reference it */
    struct pt_gc_verdict v;
    assert_int_equal(pt_metastore_gc_check(f->ms[0], layer, PT_FF_T0 + 10 * DAY, HOUR, &v), 0);
    assert_int_equal(v.referenced, 1);

    /* deleting i2 now makes c2 an orphan; pushed again before the pass, it is kept */
    pt_ff_builder(&b, PT_FF_T0 + 5 * HOUR);
    assert_int_equal(pt_command_add_delete_manifest(&b, "app", i2), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    pt_ff_builder(&b, PT_FF_T0 + 6 * HOUR);
    pt_ff_add_manifest(&b, "app", "{\"c\":2}", NULL, NULL, blobs, 1, NULL, 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    pt_ff_builder(&b, PT_FF_T0 + 10 * HOUR);
    assert_int_equal(pt_command_add_collect_children(&b, kids, 3, HOUR), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_true(has_manifest(f, "app", c2));

    /* the records travel in a snapshot and the same command leaves the same state */
    void *buf;
    size_t len;
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot(f->ms[0], &buf, &len, &index), 0);
    assert_int_equal(pt_metastore_restore(f->ms[1], buf, len), 0);
    free(buf);
    for (int s = 0; s < 2; s++) {
        pt_ff_builder(&b, PT_FF_T0 + 11 * HOUR);
        assert_int_equal(pt_command_add_delete_manifest(&b, "app", c3), 0);
        assert_int_equal(pt_ff_apply_to(f->ms[s], &b, index + 1), 0);
    }
    char h0[65], h1[65];
    pt_ff_digest_state(f->ms[0], h0);
    pt_ff_digest_state(f->ms[1], h1);
    assert_string_equal(h0, h1);
}

/* CollectBlobs forgetting at t (forget_after_ms after); returns the status. */
static int forget(struct pt_ff_fixture *f, int64_t t, int64_t after)
{
    struct pt_command_builder b;
    pt_ff_builder(&b, t);
    assert_int_equal(pt_command_add_forget_collected(&b, after), 0);
    return pt_ff_apply(f, &b);
}

static int mount(struct pt_ff_fixture *f, const char *repo, const char *digest, int64_t t)
{
    struct pt_command_builder b;
    pt_ff_builder(&b, t);
    assert_int_equal(pt_command_add_link_blob(&b, repo, digest, 5), 0);
    return pt_ff_apply(f, &b);
}

static void test_forget_collected(void **state)
{
    struct pt_ff_fixture *f = *state;
    char d1[PT_DIGEST_STR_MAX + 1], d2[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("layer", d1);
    pt_text_digest("other", d2);
    upload(f, "app", d1, 5, PT_FF_T0);
    upload(f, "app", d2, 5, PT_FF_T0);
    unsigned n;
    const char *one[] = {d1}, *two[] = {d2};
    assert_int_equal(collect(f, one, 1, PT_FF_T0 + 2 * HOUR, HOUR, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(collect(f, two, 1, PT_FF_T0 + 3 * HOUR, HOUR, &n), 0);
    assert_int_equal(n, 1);

    /* shorter than the minimum: refused */
    assert_int_equal(forget(f, PT_FF_T0 + 30 * DAY, HOUR), PT_E_CONFIG);
    /* too early for both: nothing to forget, and forgetting changes nothing */
    assert_int_equal(pt_metastore_gc_forgettable(f->ms[0], PT_FF_T0 + 2 * HOUR + DAY - 1, DAY), 0);
    assert_int_equal(forget(f, PT_FF_T0 + 2 * HOUR + DAY - 1, DAY), 0);
    assert_int_equal(mount(f, "x", d1, PT_FF_T0 + 5 * DAY), PT_E_BLOB_UNKNOWN);
    /* the older one only */
    assert_int_equal(pt_metastore_gc_forgettable(f->ms[0], PT_FF_T0 + 2 * HOUR + DAY, DAY), 1);
    assert_int_equal(forget(f, PT_FF_T0 + 2 * HOUR + DAY, DAY), 0);
    assert_int_equal(pt_metastore_gc_forgettable(f->ms[0], PT_FF_T0 + 2 * HOUR + DAY, DAY), 0);
    assert_int_equal(pt_metastore_gc_forgettable(f->ms[0], PT_FF_T0 + 3 * HOUR + DAY, DAY), 1);
    /* a mount decided before the forgotten collection is still refused; the other blob keeps
     * its record, so a mount of it is refused whenever it was proposed */
    assert_int_equal(mount(f, "x", d1, PT_FF_T0 + HOUR), PT_E_BLOB_UNKNOWN);
    assert_int_equal(mount(f, "x", d2, PT_FF_T0 + 5 * DAY), PT_E_BLOB_UNKNOWN);
    /* an upload brings the first back; collected again, it is forgotten by its new time */
    upload(f, "app", d1, 5, PT_FF_T0 + 2 * DAY);
    assert_true(located(f, d1));
    assert_int_equal(mount(f, "x", d1, PT_FF_T0 + HOUR), 0);
    assert_int_equal(forget(f, PT_FF_T0 + 3 * DAY, DAY), 0);
    assert_int_equal(pt_metastore_gc_forgettable(f->ms[0], PT_FF_T0 + 30 * DAY, DAY), 0);
    assert_int_equal(mount(f, "x", d2, PT_FF_T0 + 2 * HOUR), PT_E_BLOB_UNKNOWN);

    /* bounded: a command forgets at most PT_COMMAND_COLLECT_MAX records, oldest first */
    enum { MANY = PT_COMMAND_COLLECT_MAX + 10 };
    static char many[MANY][PT_DIGEST_STR_MAX + 1];
    const char **cand = calloc(PT_COMMAND_COLLECT_MAX, sizeof(*cand));
    assert_non_null(cand);
    for (int i = 0; i < MANY; i++) {
        char text[32];
        snprintf(text, sizeof(text), "blob-%d", i);
        pt_text_digest(text, many[i]);
        upload(f, "many", many[i], 5, PT_FF_T0 + 4 * DAY);
    }
    for (int i = 0; i < MANY; i += PT_COMMAND_COLLECT_MAX) {
        size_t k = MANY - i < PT_COMMAND_COLLECT_MAX ? (size_t)(MANY - i) : PT_COMMAND_COLLECT_MAX;
        for (size_t j = 0; j < k; j++)
            cand[j] = many[i + (int)j];
        assert_int_equal(collect(f, cand, k, PT_FF_T0 + 5 * DAY, HOUR, &n), 0);
        assert_int_equal(n, k);
    }
    free(cand);
    assert_int_equal(forget(f, PT_FF_T0 + 7 * DAY, DAY), 0);
    assert_int_equal(pt_metastore_gc_forgettable(f->ms[0], PT_FF_T0 + 7 * DAY, DAY), 1);
    assert_int_equal(forget(f, PT_FF_T0 + 7 * DAY, DAY), 0);
    assert_int_equal(pt_metastore_gc_forgettable(f->ms[0], PT_FF_T0 + 7 * DAY, DAY), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_collect_rechecks_references, pt_ff_setup,
                                        pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_collect_grace_and_relink, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_collect_per_repository, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_collect_refused, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_mark_and_snapshot, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_orphan_referrers, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_forget_collected, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_orphan_children, pt_ff_setup, pt_ff_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
