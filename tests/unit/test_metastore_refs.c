/*
 * test_metastore_refs.c - what the metastore records about blobs and references between
 * manifests: blobs linked to repositories and where they are stored, the walk over blobs a
 * region is missing and their transfers, sha512-keyed records next to sha256 ones, and the
 * referrers of a subject with their filtering and paging. Each test runs on a fresh database
 * in its own temporary directory (support/ms_fixture.h).
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

static void test_blobs(void **state)
{
    struct pt_ms_fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1], e[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("layer", d);
    pt_text_digest("other layer", e);
    uint64_t size = 0;
    assert_int_equal(pt_metastore_blob_linked(f->ms, "r", d, &size), PT_E_BLOB_UNKNOWN);
    assert_int_equal(pt_metastore_blob_location(f->ms, d, &size), PT_E_BLOB_UNKNOWN);

    struct pt_metastore_batch *b = pt_ms_batch(f);
    assert_int_equal(pt_metastore_batch_blob_link(b, "r", d, 1234), 0);
    assert_int_equal(pt_metastore_batch_blob_linked(b, "r", d, &size), 0);
    assert_int_equal(size, 1234);
    assert_int_equal(pt_metastore_batch_blob_stored(b, d, 1234, "us-east"), 0);
    assert_int_equal(pt_metastore_batch_blob_stored(b, d, 1234, "eu-west"), 0);
    assert_int_equal(pt_metastore_batch_blob_stored(b, d, 1234, "us-east"), 0);
    assert_int_equal(pt_metastore_batch_blob_stored(b, d, 1234, "ap-south"), 0);
    assert_int_equal(pt_metastore_batch_blob_stored(b, d, 99, "ap-south"), PT_E_SIZE_INVALID);
    assert_int_equal(pt_metastore_batch_blob_stored(b, d, 1234, ""), PT_E_INTERNAL);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);

    assert_int_equal(pt_metastore_blob_linked(f->ms, "r", d, &size), 0);
    assert_int_equal(size, 1234);
    assert_int_equal(pt_metastore_blob_linked(f->ms, "r", d, NULL), 0);
    assert_int_equal(pt_metastore_blob_linked(f->ms, "r2", d, &size), PT_E_BLOB_UNKNOWN);
    assert_int_equal(pt_metastore_blob_linked(f->ms, "r", e, &size), PT_E_BLOB_UNKNOWN);
    size = 0;
    assert_int_equal(pt_metastore_blob_location(f->ms, d, &size), 0);
    assert_int_equal(size, 1234);
    assert_int_equal(pt_metastore_blob_location(f->ms, e, &size), PT_E_BLOB_UNKNOWN);
    assert_int_equal(pt_metastore_blob_location(f->ms, "sha256:zz", &size), PT_E_BLOB_UNKNOWN);

    char **regions;
    size_t n;
    assert_int_equal(pt_metastore_blob_regions(f->ms, d, &size, &regions, &n), 0);
    static const char *const want[] = {"ap-south", "eu-west", "us-east"};
    pt_ms_assert_names(regions, n, want, 3);
    pt_strv_free(regions, n);
    assert_int_equal(pt_metastore_blob_regions(f->ms, e, &size, &regions, &n), PT_E_BLOB_UNKNOWN);
    assert_null(regions);

    /* the region list is bounded */
    for (int i = 0; i < PT_METASTORE_REGIONS_MAX; i++) {
        char region[16];
        snprintf(region, sizeof(region), "r%02d", i);
        assert_int_equal(pt_metastore_batch_blob_stored(b, e, 1, region), 0);
    }
    assert_int_equal(pt_metastore_batch_blob_stored(b, e, 1, "r00"), 0);
    assert_int_equal(pt_metastore_batch_blob_stored(b, e, 1, "zz"), PT_E_INTERNAL);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    assert_int_equal(pt_metastore_blob_regions(f->ms, e, &size, &regions, &n), 0);
    assert_int_equal(n, PT_METASTORE_REGIONS_MAX);
    assert_string_equal(regions[0], "r00");
    assert_string_equal(regions[63], "r63");
    pt_strv_free(regions, n);

    assert_int_equal(pt_metastore_batch_blob_unlink(b, "r", d), 0);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    pt_metastore_batch_free(b);
    assert_int_equal(pt_metastore_blob_linked(f->ms, "r", d, &size), PT_E_BLOB_UNKNOWN);
}

static void put_referrer(struct pt_metastore_batch *b, const char *repo, const char *subject,
                         const char *body, const char *artifact_type, const char *ann)
{
    struct pt_referrer r;
    memset(&r, 0, sizeof(r));
    pt_text_digest(body, r.digest);
    strcpy(r.media_type, "application/vnd.oci.image.manifest.v1+json");
    strcpy(r.artifact_type, artifact_type);
    r.size = strlen(body);
    assert_int_equal(
        pt_metastore_batch_referrer_put(b, repo, subject, &r, ann, ann ? strlen(ann) : 0), 0);
}

static int cmp_digest(const void *a, const void *b)
{
    return strcmp(a, b);
}

struct missing {
    char digests[4][PT_DIGEST_STR_MAX + 1];
    uint64_t sizes[4];
    size_t holders[4];
    int n;
};

static int collect_missing(const char *digest, uint64_t size, const char *const *holders, size_t n,
                           void *arg)
{
    struct missing *m = arg;
    assert_true(m->n < 4);
    snprintf(m->digests[m->n], sizeof(m->digests[m->n]), "%s", digest);
    m->sizes[m->n] = size;
    m->holders[m->n] = n;
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(holders[i - 1], holders[i]) < 0);
    m->n++;
    return m->n == 3 ? 7 : 0; /* a non-zero return stops the walk and is returned */
}

static void test_missing_and_transfers(void **state)
{
    struct pt_ms_fixture *f = *state;
    char d[3][PT_DIGEST_STR_MAX + 1];
    pt_text_digest("one", d[0]);
    pt_text_digest("two", d[1]);
    pt_text_digest("three", d[2]);
    struct pt_metastore_batch *b = pt_ms_batch(f);
    assert_int_equal(pt_metastore_batch_blob_stored(b, d[0], 10, "eu"), 0);
    assert_int_equal(pt_metastore_batch_blob_stored(b, d[1], 20, "eu"), 0);
    assert_int_equal(pt_metastore_batch_blob_stored(b, d[1], 20, "us"), 0);
    assert_int_equal(pt_metastore_batch_blob_stored(b, d[2], 30, "ap"), 0);
    assert_int_equal(pt_metastore_batch_commit(b, 1), 0);
    pt_metastore_batch_free(b);

    struct missing m = {0};
    assert_int_equal(pt_metastore_missing_foreach(f->ms, "us", collect_missing, &m), 0);
    assert_int_equal(m.n, 2); /* d[1] is held by us */
    for (int i = 0; i < m.n; i++) {
        int k = strcmp(m.digests[i], d[0]) == 0 ? 0 : 2;
        assert_string_equal(m.digests[i], d[k]);
        assert_int_equal(m.sizes[i], k == 0 ? 10 : 30);
        assert_int_equal(m.holders[i], 1);
    }
    assert_true(strcmp(m.digests[0], m.digests[1]) < 0);
    memset(&m, 0, sizeof(m));
    assert_int_equal(pt_metastore_missing_foreach(f->ms, "nowhere", collect_missing, &m), 7);
    assert_int_equal(m.n, 3);

    void *val;
    size_t len;
    assert_int_equal(pt_metastore_transfer_get(f->ms, d[0], &val, &len), PT_E_NOT_FOUND);
    assert_int_equal(pt_metastore_transfer_put(f->ms, d[0], "state", 5), 0);
    assert_int_equal(pt_metastore_transfer_put(f->ms, "sha256:nope", "x", 1), PT_E_DIGEST_INVALID);
    assert_int_equal(pt_metastore_transfer_get(f->ms, d[0], &val, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(val, "state", 5);
    free(val);
    assert_int_equal(pt_metastore_transfer_delete(f->ms, d[0]), 0);
    assert_int_equal(pt_metastore_transfer_get(f->ms, d[0], &val, &len), PT_E_NOT_FOUND);
    /* local records are not replicated state */
    char before[65], after[65];
    assert_int_equal(pt_metastore_state_digest(f->ms, before), 0);
    assert_int_equal(pt_metastore_transfer_put(f->ms, d[1], "state", 5), 0);
    assert_int_equal(pt_metastore_state_digest(f->ms, after), 0);
    assert_string_equal(before, after);
}

/* "sha512:" digest of s, into out. */
static void digest512_of(const char *s, char out[PT_DIGEST_STR_MAX + 1])
{
    struct pt_digest d;
    pt_digest_of_algo(s, strlen(s), PT_DIGEST_SHA512, &d);
    pt_digest_format(&d, out);
}

/*
 * sha512 digests (135 characters) in every kind of key and value: a manifest stored under one,
 * a tag naming it, blob links and locations, referrers whose subject and referrer are sha512,
 * the walk of missing blobs, transfers (and the prefix lookup of the start-up sweep), and a
 * snapshot restored into another store, which must have the same state digest.
 */
static void test_sha512_keys(void **state)
{
    struct pt_ms_fixture *f = *state;
    const char *body = "{\"sha512\":true}";
    char m[PT_DIGEST_STR_MAX + 1], m256[PT_DIGEST_STR_MAX + 1], blob[PT_DIGEST_STR_MAX + 1];
    char got[PT_DIGEST_STR_MAX + 1];
    digest512_of(body, m);
    pt_text_digest(body, m256);
    digest512_of("blob", blob);
    assert_int_equal(strlen(m), 135);

    struct pt_metastore_batch *b = pt_ms_batch(f);
    assert_int_equal(pt_metastore_batch_repo_ensure(b, "r", 1000), 0);
    assert_int_equal(pt_metastore_batch_manifest_put(b, "r", m,
                                                     "application/vnd.oci.image.manifest.v1+json",
                                                     "", "", body, strlen(body)),
                     0);
    assert_int_equal(pt_metastore_batch_tag_put(b, "r", "v1", m, 2000), 0);
    assert_int_equal(pt_metastore_batch_blob_link(b, "r", blob, 4), 0);
    assert_int_equal(pt_metastore_batch_blob_stored(b, blob, 4, "eu"), 0);
    struct pt_referrer r;
    memset(&r, 0, sizeof(r));
    digest512_of("referrer", r.digest);
    strcpy(r.media_type, "application/vnd.oci.image.manifest.v1+json");
    strcpy(r.artifact_type, "application/vnd.example");
    r.size = 8;
    assert_int_equal(pt_metastore_batch_referrer_put(b, "r", m, &r, NULL, 0), 0);
    assert_int_equal(pt_metastore_batch_commit(b, 5), 0);
    pt_metastore_batch_free(b);

    struct pt_manifest_rec rec;
    assert_int_equal(pt_metastore_get_manifest(f->ms, "r", m, &rec), 0);
    assert_int_equal(rec.len, strlen(body));
    assert_memory_equal(rec.body, body, rec.len);
    pt_manifest_rec_free(&rec);
    /* the same body under its sha256 is another manifest */
    assert_int_equal(pt_metastore_get_manifest(f->ms, "r", m256, &rec), PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_get_tag(f->ms, "r", "v1", got), 0);
    assert_string_equal(got, m);
    uint64_t size = 0;
    assert_int_equal(pt_metastore_blob_linked(f->ms, "r", blob, &size), 0);
    assert_int_equal(size, 4);
    assert_int_equal(pt_metastore_blob_location(f->ms, blob, &size), 0);

    struct pt_referrer *refs;
    size_t n;
    assert_int_equal(pt_metastore_list_referrers(f->ms, "r", m, NULL, 100, &refs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(refs[0].digest, r.digest);
    pt_referrers_free(refs, n);
    assert_int_equal(pt_metastore_list_referrers(f->ms, "r", m256, NULL, 100, &refs, &n), 0);
    assert_int_equal(n, 0);

    struct missing miss = {0};
    assert_int_equal(pt_metastore_missing_foreach(f->ms, "us", collect_missing, &miss), 0);
    assert_int_equal(miss.n, 1);
    assert_string_equal(miss.digests[0], blob);

    /* transfers, and finding one by the start of its digest */
    void *val;
    size_t len;
    assert_int_equal(pt_metastore_transfer_put(f->ms, blob, "state", 5), 0);
    assert_int_equal(pt_metastore_transfer_get(f->ms, blob, &val, &len), 0);
    assert_int_equal(len, 5);
    free(val);
    char prefix[PT_DIGEST_STR_MAX + 1];
    snprintf(prefix, sizeof(prefix), "%.67s", blob);
    assert_int_equal(pt_metastore_transfer_first(f->ms, prefix, got), 0);
    assert_string_equal(got, blob);
    assert_int_equal(pt_metastore_transfer_first(f->ms, "sha512:zz", got), PT_E_NOT_FOUND);
    assert_int_equal(pt_metastore_transfer_delete(f->ms, blob), 0);
    assert_int_equal(pt_metastore_transfer_first(f->ms, prefix, got), PT_E_NOT_FOUND);

    /* other algorithms and lengths stay refused */
    b = pt_ms_batch(f);
    char bad[PT_DIGEST_STR_MAX + 1];
    snprintf(bad, sizeof(bad), "sha384:%.96s", m + 7);
    assert_int_equal(pt_metastore_batch_blob_link(b, "r", bad, 1), PT_E_DIGEST_INVALID);
    snprintf(bad, sizeof(bad), "%.134s", m);
    assert_int_equal(pt_metastore_batch_blob_link(b, "r", bad, 1), PT_E_DIGEST_INVALID);
    pt_metastore_batch_free(b);

    /* a snapshot carries them to another store */
    void *snap;
    size_t snap_len;
    uint64_t index;
    char before[65], after[65], db2[320];
    assert_int_equal(pt_metastore_snapshot(f->ms, &snap, &snap_len, &index), 0);
    assert_int_equal(index, 5);
    struct pt_metastore *ms2;
    snprintf(db2, sizeof(db2), "%s/other", f->dir);
    assert_int_equal(pt_metastore_open(db2, &ms2), 0);
    assert_int_equal(pt_metastore_restore(ms2, snap, snap_len), 0);
    free(snap);
    assert_int_equal(pt_metastore_state_digest(f->ms, before), 0);
    assert_int_equal(pt_metastore_state_digest(ms2, after), 0);
    assert_string_equal(before, after);
    assert_int_equal(pt_metastore_get_tag(ms2, "r", "v1", got), 0);
    assert_string_equal(got, m);
    assert_int_equal(pt_metastore_list_referrers(ms2, "r", m, NULL, 100, &refs, &n), 0);
    assert_int_equal(n, 1);
    pt_referrers_free(refs, n);
    pt_metastore_close(ms2);
}

static void test_referrers(void **state)
{
    struct pt_ms_fixture *f = *state;
    char subj[PT_DIGEST_STR_MAX + 1], other[PT_DIGEST_STR_MAX + 1];
    pt_ms_put_manifest(f, "r", "subject", 1, subj);
    pt_text_digest("other subject", other);

    struct pt_metastore_batch *b = pt_ms_batch(f);
    put_referrer(b, "r", subj, "sig1", "application/vnd.dev.cosign", "{\"a\":\"1\"}");
    put_referrer(b, "r", subj, "sbom", "application/spdx+json", NULL);
    put_referrer(b, "r", subj, "sig2", "application/vnd.dev.cosign", NULL);
    put_referrer(b, "r", other, "sig3", "application/vnd.dev.cosign", NULL);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);

    /* sorted by referrer digest */
    char want[3][PT_DIGEST_STR_MAX + 1];
    pt_text_digest("sig1", want[0]);
    pt_text_digest("sbom", want[1]);
    pt_text_digest("sig2", want[2]);
    qsort(want, 3, sizeof(want[0]), cmp_digest);

    struct pt_referrer *refs;
    size_t n;
    assert_int_equal(pt_metastore_list_referrers(f->ms, "r", subj, NULL, 100, &refs, &n), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(refs[i].digest, want[i]);
        assert_string_equal(refs[i].media_type, "application/vnd.oci.image.manifest.v1+json");
        assert_int_equal(refs[i].size, 4);
    }
    pt_referrers_free(refs, n);

    /* filter, annotations */
    char sig1[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("sig1", sig1);
    assert_int_equal(
        pt_metastore_list_referrers(f->ms, "r", subj, "application/vnd.dev.cosign", 100, &refs, &n),
        0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(refs[i].artifact_type, "application/vnd.dev.cosign");
        if (strcmp(refs[i].digest, sig1) == 0)
            assert_string_equal(refs[i].annotations, "{\"a\":\"1\"}");
        else
            assert_null(refs[i].annotations);
    }
    pt_referrers_free(refs, n);
    assert_int_equal(
        pt_metastore_list_referrers(f->ms, "r", subj, "application/none", 100, &refs, &n), 0);
    assert_int_equal(n, 0);
    assert_null(refs);

    /* max */
    assert_int_equal(pt_metastore_list_referrers(f->ms, "r", subj, NULL, 2, &refs, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(refs[1].digest, want[1]);
    pt_referrers_free(refs, n);

    /* other subject, unknown subject, unknown repo */
    assert_int_equal(pt_metastore_list_referrers(f->ms, "r", other, NULL, 100, &refs, &n), 0);
    assert_int_equal(n, 1);
    pt_referrers_free(refs, n);
    char unknown[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("nothing", unknown);
    assert_int_equal(pt_metastore_list_referrers(f->ms, "r", unknown, NULL, 100, &refs, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(pt_metastore_list_referrers(f->ms, "x", subj, NULL, 100, &refs, &n),
                     PT_E_NAME_UNKNOWN);

    /* delete */
    assert_int_equal(pt_metastore_batch_referrer_delete(b, "r", subj, sig1), 0);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    pt_metastore_batch_free(b);
    assert_int_equal(pt_metastore_list_referrers(f->ms, "r", subj, NULL, 100, &refs, &n), 0);
    assert_int_equal(n, 2);
    pt_referrers_free(refs, n);
}

/* Pages of referrers: every page bounded, the union in order, the filter applied. */
static void test_referrers_pages(void **state)
{
    struct pt_ms_fixture *f = *state;
    char subj[PT_DIGEST_STR_MAX + 1];
    pt_ms_put_manifest(f, "r", "subject", 1, subj);
    struct pt_metastore_batch *b = pt_ms_batch(f);
    for (int i = 0; i < 7; i++) {
        char name[16];
        snprintf(name, sizeof(name), "ref%d", i);
        put_referrer(b, "r", subj, name, i % 2 ? "application/odd" : "application/even", NULL);
    }
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    pt_metastore_batch_free(b);
    struct pt_referrer *all;
    size_t nall;
    assert_int_equal(pt_metastore_list_referrers(f->ms, "r", subj, NULL, 100, &all, &nall), 0);
    assert_int_equal(nall, 7);
    for (int filtered = 0; filtered < 2; filtered++) {
        const char *filter = filtered ? "application/odd" : NULL;
        char after[PT_DIGEST_STR_MAX + 1] = "", next[PT_DIGEST_STR_MAX + 1];
        size_t seen = 0, pages = 0;
        do {
            struct pt_referrer *page;
            size_t n;
            assert_int_equal(
                pt_metastore_referrers_page(f->ms, "r", subj, filter, after, 2, &page, &n, next),
                0);
            assert_true(n <= 2);
            for (size_t i = 0; i < n; i++) {
                while (seen < nall && strcmp(all[seen].digest, page[i].digest) != 0)
                    seen++; /* skipped: filtered out */
                assert_true(seen < nall);
                if (filter != NULL)
                    assert_string_equal(page[i].artifact_type, filter);
                seen++;
            }
            pt_referrers_free(page, n);
            snprintf(after, sizeof(after), "%s", next);
            pages++;
        } while (next[0] != '\0' && pages < 10);
        assert_int_equal(next[0], '\0');
        assert_int_equal(pages, filtered ? 2 : 4); /* 3 odd ones in pages of 2; 7 in 4 */
    }
    pt_referrers_free(all, nall);
    /* n = 0 gives nothing and no next page; an unknown repository its error */
    struct pt_referrer *none;
    size_t n;
    char next[PT_DIGEST_STR_MAX + 1];
    assert_int_equal(pt_metastore_referrers_page(f->ms, "r", subj, NULL, NULL, 0, &none, &n, next),
                     0);
    assert_int_equal(n, 0);
    assert_string_equal(next, "");
    assert_int_equal(pt_metastore_referrers_page(f->ms, "x", subj, NULL, NULL, 5, &none, &n, next),
                     PT_E_NAME_UNKNOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_blobs, pt_ms_setup, pt_ms_teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_transfers, pt_ms_setup, pt_ms_teardown),
        cmocka_unit_test_setup_teardown(test_referrers, pt_ms_setup, pt_ms_teardown),
        cmocka_unit_test_setup_teardown(test_referrers_pages, pt_ms_setup, pt_ms_teardown),
        cmocka_unit_test_setup_teardown(test_sha512_keys, pt_ms_setup, pt_ms_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
