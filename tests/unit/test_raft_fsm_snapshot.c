/*
 * test_raft_fsm_snapshot.c - the metastore's snapshot stream, the state raft's snapshots carry.
 *
 * A round trip reproduces the state digest and the applied index and leaves local records
 * alone, identical states give identical bytes, the documented format is what restore reads
 * (hand-built streams), and any damage (every single flipped byte, truncation, unknown version,
 * broken structure under a valid checksum) is refused without changing anything. The stores
 * come from the raft FSM fixture (support/fsm_cluster.h), without starting any server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "metastore.h"
#include "support/fsm_cluster.h"
#include "support/text_digest.h"
#include "support/workload.h"

static void test_snapshot_roundtrip(void **state)
{
    struct pt_fsm_cluster *f = *state;
    struct pt_metastore *a = f->ms[0], *b = f->ms[1];
    pt_workload_push(a, 1, 31);
    /* b holds something else: another repository, and a local upload record */
    struct pt_command_builder cb;
    assert_int_equal(pt_command_builder_init(&cb, PT_WORKLOAD_T0, "us-east"), 0);
    char d[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("other", d);
    assert_int_equal(pt_command_add_link_blob(&cb, "other/repo", d, 5), 0);
    assert_int_equal(pt_workload_apply(b, &cb, 40), 0);
    assert_int_equal(pt_metastore_upload_put(b, "upload-1", "session", 7), 0);

    void *buf;
    size_t len;
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot(a, &buf, &len, &index), 0);
    assert_int_equal(index, 30);
    uint64_t peek = 0;
    assert_int_equal(pt_metastore_snapshot_index(buf, len, &peek), 0);
    assert_int_equal(peek, 30);

    assert_int_equal(pt_metastore_restore(b, buf, len), 0);
    char ha[65], hb[65];
    pt_workload_state(a, ha);
    pt_workload_state(b, hb);
    assert_string_equal(ha, hb);
    assert_int_equal(pt_metastore_applied_index(b), 30); /* went back from 40: replaced */
    assert_int_equal(pt_metastore_repo_exists(b, "other/repo"), 0);
    char tag[PT_DIGEST_STR_MAX + 1], want[PT_DIGEST_STR_MAX + 1], body[64];
    pt_workload_body(29, body);
    pt_text_digest(body, want);
    assert_int_equal(pt_metastore_get_tag(b, "team/app2", "latest", tag), 0);
    assert_string_equal(tag, want);
    struct pt_referrer *refs;
    size_t n_refs;
    pt_workload_body(2, body);
    pt_text_digest(body, want);
    assert_int_equal(pt_metastore_list_referrers(b, "team/app2", want, NULL, 10, &refs, &n_refs),
                     0);
    assert_int_equal(n_refs, 1); /* manifest 5 refers to manifest 2 */
    pt_referrers_free(refs, n_refs);
    void *val;
    size_t vlen;
    assert_int_equal(pt_metastore_upload_get(b, "upload-1", &val, &vlen), 0);
    assert_memory_equal(val, "session", 7);
    free(val);

    /* identical state, identical bytes */
    void *buf2;
    size_t len2;
    assert_int_equal(pt_metastore_snapshot(b, &buf2, &len2, &index), 0);
    assert_int_equal(len2, len);
    assert_memory_equal(buf2, buf, len);
    free(buf2);
    free(buf);

    /* the restored store keeps following the log, and survives a reopen */
    pt_workload_push(a, 31, 33);
    pt_workload_push(b, 25, 33); /* 25..30 are skipped by index */
    pt_fsm_cluster_reopen(f, 1);
    b = f->ms[1];
    assert_int_equal(pt_metastore_applied_index(b), 32);
    pt_workload_state(a, ha);
    pt_workload_state(b, hb);
    assert_string_equal(ha, hb);
}

static void test_snapshot_empty(void **state)
{
    struct pt_fsm_cluster *f = *state;
    char empty[65], h[65];
    pt_workload_state(f->ms[0], empty);
    pt_workload_push(f->ms[1], 1, 6);
    void *buf;
    size_t len;
    uint64_t index = 99;
    assert_int_equal(pt_metastore_snapshot(f->ms[0], &buf, &len, &index), 0);
    assert_int_equal(index, 0);
    /* every family's header, and the three records of an empty store: "gc/indexed" (8 + 10 +
     * 1), "usage/indexed" (8 + 13 + 1) and "gc/indexed-children" (8 + 19 + 1) */
    assert_int_equal(len, 56 + (7 + 5 + 9 + 4 + 10 + 9 + 14 + 4) + 8 * 9 + 19 + 22 + 28);
    assert_int_equal(pt_metastore_restore(f->ms[1], buf, len), 0);
    free(buf);
    pt_workload_state(f->ms[1], h);
    assert_string_equal(h, empty);
    assert_int_equal(pt_metastore_applied_index(f->ms[1]), 0);
    pt_fsm_cluster_reopen(f, 1);
    assert_int_equal(pt_metastore_applied_index(f->ms[1]), 0);
    assert_int_equal(pt_metastore_repo_exists(f->ms[1], "team/app1"), 0);
}

/* Hand-built streams, written from the format drawn in metastore.c. */
struct rec {
    const char *k;
    size_t klen;
    const char *v;
    size_t vlen;
};

struct fam {
    const char *name;
    const struct rec *recs;
    size_t n;
    uint64_t count; /* declared count; n if 0 */
};

static void le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Writes a stream into out (4096 bytes) and returns its length; extra bytes (may be NULL)
 * go right before the checksum. */
static size_t build_stream(unsigned char *out, uint32_t version, uint64_t index,
                           uint32_t n_fams_hdr, const struct fam *fams, size_t n_fams,
                           const char *extra)
{
    size_t n = 0;
    memcpy(out, "PTLNSNAP", 8);
    n = 8;
    le(out + n, version, 4);
    n += 4;
    le(out + n, index, 8);
    n += 8;
    le(out + n, n_fams_hdr, 4);
    n += 4;
    for (size_t i = 0; i < n_fams; i++) {
        size_t nl = strlen(fams[i].name);
        out[n++] = (unsigned char)nl;
        memcpy(out + n, fams[i].name, nl);
        n += nl;
        le(out + n, fams[i].count ? fams[i].count : fams[i].n, 8);
        n += 8;
        for (size_t j = 0; j < fams[i].n; j++) {
            const struct rec *r = &fams[i].recs[j];
            le(out + n, r->klen, 4);
            n += 4;
            memcpy(out + n, r->k, r->klen);
            n += r->klen;
            le(out + n, r->vlen, 4);
            n += 4;
            memcpy(out + n, r->v, r->vlen);
            n += r->vlen;
        }
    }
    if (extra != NULL) {
        memcpy(out + n, extra, strlen(extra));
        n += strlen(extra);
    }
    assert_true(n + 32 < 4096);
    unsigned int mdlen;
    assert_int_equal(EVP_Digest(out, n, out + n, &mdlen, EVP_sha256(), NULL), 1);
    return n + mdlen;
}

static const char *const family_names[] = {
    "default", "repos", "manifests", "tags", "repo_blobs", "referrers", "blob_locations", "meta",
};

/* The eight families with the given repos and meta records. */
static void families(struct fam fams[8], const struct rec *repos, size_t n_repos,
                     const struct rec *meta, size_t n_meta)
{
    for (int i = 0; i < 8; i++)
        fams[i] = (struct fam){.name = family_names[i]};
    fams[1].recs = repos;
    fams[1].n = n_repos;
    fams[7].recs = meta;
    fams[7].n = n_meta;
}

static void expect_refused(struct pt_metastore *ms, const unsigned char *buf, size_t len)
{
    char before[65];
    pt_workload_state(ms, before);
    uint64_t index = pt_metastore_applied_index(ms);
    assert_int_equal(pt_metastore_restore(ms, buf, len), PT_E_CORRUPT);
    pt_workload_assert_unchanged(ms, before, index);
}

static void test_snapshot_format(void **state)
{
    struct pt_fsm_cluster *f = *state;
    struct pt_metastore *ms = f->ms[0];
    static const char created[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0}; /* v1 i64:0 */
    const struct rec repos[] = {{"lib/a", 5, created, 9}, {"lib/b", 5, created, 9}};
    const struct rec meta[] = {{"cluster", 7, "x", 1}};
    struct fam fams[8];
    unsigned char s[4096];

    /* a valid hand-built stream is read as documented */
    families(fams, repos, 2, meta, 1);
    size_t len = build_stream(s, 1, 7, 8, fams, 8, NULL);
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot_index(s, len, &index), 0);
    assert_int_equal(index, 7);
    assert_int_equal(pt_metastore_restore(ms, s, len), 0);
    assert_int_equal(pt_metastore_repo_exists(ms, "lib/a"), 1);
    assert_int_equal(pt_metastore_repo_exists(ms, "lib/b"), 1);
    assert_int_equal(pt_metastore_applied_index(ms), 7);
    /* and written back byte for byte */
    void *out;
    size_t out_len;
    assert_int_equal(pt_metastore_snapshot(ms, &out, &out_len, &index), 0);
    assert_int_equal(out_len, len);
    assert_memory_equal(out, s, len);
    free(out);

    /* everything below has a valid checksum and must still be refused */
    expect_refused(ms, s, build_stream(s, 2, 7, 8, fams, 8, NULL)); /* unknown version */
    expect_refused(ms, s, build_stream(s, 0, 7, 8, fams, 8, NULL)); /* version 0 */
    expect_refused(ms, s, build_stream(s, 1, 7, 9, fams, 8, NULL)); /* family count */
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 7, NULL)); /* a family missing */
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, "\1")); /* trailing bytes */
    fams[2].name = "manifests2";
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* unknown family */
    fams[2].name = "tags";
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* families out of order */

    const struct rec desc[] = {{"lib/b", 5, created, 9}, {"lib/a", 5, created, 9}};
    families(fams, desc, 2, NULL, 0);
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* keys descending */
    const struct rec dup[] = {{"lib/a", 5, created, 9}, {"lib/a", 5, created, 9}};
    families(fams, dup, 2, NULL, 0);
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* duplicate key */
    const struct rec prefix[] = {{"lib/ab", 6, created, 9}, {"lib/a", 5, created, 9}};
    families(fams, prefix, 2, NULL, 0);
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* prefix after longer */
    const struct rec empty[] = {{"", 0, created, 9}};
    families(fams, empty, 1, NULL, 0);
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* empty key */
    const struct rec applied[] = {{"applied_index", 13, created, 9}};
    families(fams, repos, 2, applied, 1);
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* index outside header */
    families(fams, repos, 2, NULL, 0);
    fams[1].count = 3;
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* count beyond records */
    fams[1].count = UINT64_MAX;
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL));

    /* no checksum, no stream */
    families(fams, repos, 2, NULL, 0);
    len = build_stream(s, 1, 7, 8, fams, 8, NULL);
    s[len - 1] ^= 1;
    expect_refused(ms, s, len);
    assert_int_equal(pt_metastore_snapshot_index(s, len, &index), PT_E_CORRUPT);
    s[len - 1] ^= 1;
    s[0] = 'X'; /* magic */
    expect_refused(ms, s, len);
    expect_refused(ms, s, 0);
    expect_refused(ms, NULL, 0);
    assert_int_equal(pt_metastore_snapshot_index(NULL, 0, &index), PT_E_CORRUPT);
}

static void test_snapshot_damage(void **state)
{
    struct pt_fsm_cluster *f = *state;
    pt_workload_push(f->ms[0], 1, 8);
    pt_workload_push(f->ms[1], 1, 4);
    void *buf;
    size_t len;
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot(f->ms[0], &buf, &len, &index), 0);
    char before[65];
    pt_workload_state(f->ms[1], before);
    unsigned char *p = buf;

    /* every single flipped byte and every truncation is refused, nothing changes */
    for (size_t i = 0; i < len; i++) {
        p[i] ^= 0x20;
        assert_int_equal(pt_metastore_restore(f->ms[1], p, len), PT_E_CORRUPT);
        assert_int_equal(pt_metastore_snapshot_index(p, len, &index), PT_E_CORRUPT);
        p[i] ^= 0x20;
    }
    for (size_t n = 0; n < len; n += 7)
        assert_int_equal(pt_metastore_restore(f->ms[1], p, n), PT_E_CORRUPT);
    assert_int_equal(pt_metastore_restore(f->ms[1], p, len - 1), PT_E_CORRUPT);
    pt_workload_assert_unchanged(f->ms[1], before, 3);

    /* the undamaged stream still restores */
    assert_int_equal(pt_metastore_restore(f->ms[1], p, len), 0);
    char a[65], b[65];
    pt_workload_state(f->ms[0], a);
    pt_workload_state(f->ms[1], b);
    assert_string_equal(a, b);
    free(buf);
}

int main(void)
{
    static unsigned one = 1, two = 2;
#define TEST(fn, stores)                                                                           \
    cmocka_unit_test_prestate_setup_teardown(fn, pt_fsm_cluster_setup, pt_fsm_cluster_teardown,    \
                                             &stores)
    const struct CMUnitTest tests[] = {
        TEST(test_snapshot_roundtrip, two),
        TEST(test_snapshot_empty, two),
        TEST(test_snapshot_format, one),
        TEST(test_snapshot_damage, two),
    };
#undef TEST
    return cmocka_run_group_tests(tests, NULL, NULL);
}
