/*
 * test_fsm.c - the replicated state machine (replication/fsm.c): every operation's effect and
 * precondition, all-or-nothing commands, idempotence by index, and identical state in two
 * stores fed the same commands. The stores and command helpers are support/ff_fixture.h; the
 * command codec and refused commands are tested in test_fsm_codec.c, group commit and write
 * failures in test_fsm_group.c.
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

static void test_put_manifest(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    char layer[PT_DIGEST_STR_MAX + 1], config[PT_DIGEST_STR_MAX + 1], d[PT_DIGEST_STR_MAX + 1],
        tagged[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("layer", layer);
    pt_text_digest("config", config);
    const char *blobs[] = {config, layer};

    /* LinkBlob then PutManifest in one command: the manifest sees the links */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_link_blob(&b, "library/app", layer, 5), 0);
    assert_int_equal(pt_command_add_link_blob(&b, "library/app", config, 6), 0);
    pt_ff_add_manifest(&b, "library/app", "{\"m\":1}", "latest", NULL, blobs, 2, NULL, 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);

    pt_text_digest("{\"m\":1}", d);
    assert_int_equal(pt_metastore_repo_exists(f->ms[0], "library/app"), 1);
    struct pt_manifest_rec rec;
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "library/app", d, &rec), 0);
    assert_string_equal(rec.media_type, PT_FF_MT_OCI);
    assert_memory_equal(rec.body, "{\"m\":1}", rec.len);
    pt_manifest_rec_free(&rec);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "library/app", "latest", tagged), 0);
    assert_string_equal(tagged, d);
    uint64_t size;
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "library/app", layer, &size), 0);
    assert_int_equal(size, 5);

    /* index referencing the manifest as a child */
    const char *children[] = {d};
    pt_ff_builder(&b, PT_FF_T0 + 1);
    pt_ff_add_manifest(&b, "library/app", "{\"index\":1}", "multi", NULL, NULL, 0, children, 1);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    char idx[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("{\"index\":1}", idx);
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "library/app", idx, &rec), 0);
    assert_string_equal(rec.media_type, PT_FF_MT_IDX);
    pt_manifest_rec_free(&rec);

    /* re-putting an existing digest keeps the stored record, still moves tags */
    pt_ff_builder(&b, PT_FF_T0 + 2);
    struct pt_command_manifest again = {.repo = "library/app",
                                        .digest = d,
                                        .media_type = "application/other",
                                        .body = "{\"m\":1}",
                                        .len = 7,
                                        .tags = (const char *[]){"multi"},
                                        .n_tags = 1};
    assert_int_equal(pt_command_add_put_manifest(&b, &again), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "library/app", d, &rec), 0);
    assert_string_equal(rec.media_type, PT_FF_MT_OCI);
    pt_manifest_rec_free(&rec);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "library/app", "multi", tagged), 0);
    assert_string_equal(tagged, d);
}

static void test_put_manifest_preconditions(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    char layer[PT_DIGEST_STR_MAX + 1], d[PT_DIGEST_STR_MAX + 1], before[65], after[65];
    pt_text_digest("layer", layer);
    const char *blobs[] = {layer};
    pt_text_digest("{\"m\":2}", d);
    const char *children[] = {d};
    pt_ff_digest_state(f->ms[0], before);

    /* blob not linked */
    pt_ff_builder(&b, PT_FF_T0);
    pt_ff_add_manifest(&b, "r", "{\"m\":2}", "latest", NULL, blobs, 1, NULL, 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_MANIFEST_BLOB_UNKNOWN);
    /* linked in another repository only */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_link_blob(&b, "other", layer, 5), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    pt_ff_digest_state(f->ms[0], before);
    pt_ff_builder(&b, PT_FF_T0);
    pt_ff_add_manifest(&b, "r", "{\"m\":2}", "latest", NULL, blobs, 1, NULL, 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_MANIFEST_BLOB_UNKNOWN);
    /* child manifest missing */
    pt_ff_builder(&b, PT_FF_T0);
    pt_ff_add_manifest(&b, "r", "{\"index\":2}", NULL, NULL, NULL, 0, children, 1);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_MANIFEST_BLOB_UNKNOWN);
    /* body does not hash to the digest */
    pt_ff_builder(&b, PT_FF_T0);
    struct pt_command_manifest bad = {
        .repo = "r", .digest = layer, .media_type = PT_FF_MT_OCI, .body = "{}", .len = 2};
    assert_int_equal(pt_command_add_put_manifest(&b, &bad), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_DIGEST_INVALID);
    /* malformed inputs are refused deterministically */
    pt_ff_builder(&b, PT_FF_T0);
    bad.digest = "sha256:1234";
    assert_int_equal(pt_command_add_put_manifest(&b, &bad), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_DIGEST_INVALID);
    pt_ff_builder(&b, PT_FF_T0);
    pt_ff_add_manifest(&b, "", "{}", NULL, NULL, NULL, 0, NULL, 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_NAME_INVALID);
    char long_tag[PT_METASTORE_TAG_MAX + 2];
    memset(long_tag, 't', sizeof(long_tag) - 1);
    long_tag[sizeof(long_tag) - 1] = '\0';
    pt_ff_builder(&b, PT_FF_T0);
    pt_ff_add_manifest(&b, "r", "{}", long_tag, NULL, NULL, 0, NULL, 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_TAG_INVALID);

    pt_ff_digest_state(f->ms[0], after);
    assert_string_equal(before, after);
    assert_int_equal(pt_metastore_repo_exists(f->ms[0], "r"), 0);
}

static void test_tags(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    char d1[PT_DIGEST_STR_MAX + 1], d2[PT_DIGEST_STR_MAX + 1], got[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("one", d1);
    pt_text_digest("two", d2);

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "latest", d1), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_MANIFEST_UNKNOWN);

    pt_ff_builder(&b, PT_FF_T0);
    pt_ff_add_manifest(&b, "r", "one", NULL, NULL, NULL, 0, NULL, 0);
    pt_ff_add_manifest(&b, "r", "two", NULL, NULL, NULL, 0, NULL, 0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "latest", d1), 0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "stable", d1), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "r", "latest", got), 0);
    assert_string_equal(got, d1);

    /* move a tag */
    pt_ff_builder(&b, PT_FF_T0 + 5);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "latest", d2), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "r", "latest", got), 0);
    assert_string_equal(got, d2);
    /* tag of a manifest in another repository */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_tag(&b, "other", "latest", d2), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_MANIFEST_UNKNOWN);

    /* delete */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_tag(&b, "r", "nope"), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_MANIFEST_UNKNOWN);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_tag(&b, "r", "stable"), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "r", "stable", got), PT_E_MANIFEST_UNKNOWN);
    /* deleting twice in one command: the second sees the first */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_tag(&b, "r", "latest"), 0);
    assert_int_equal(pt_command_add_delete_tag(&b, "r", "latest"), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "r", "latest", got), 0);
}

static void test_delete_manifest(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    char subj[PT_DIGEST_STR_MAX + 1], sig[PT_DIGEST_STR_MAX + 1], keep[PT_DIGEST_STR_MAX + 1],
        got[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("subject", subj);
    pt_text_digest("signature", sig);
    pt_text_digest("keep", keep);

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_manifest(&b, "r", subj), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_MANIFEST_UNKNOWN);

    pt_ff_builder(&b, PT_FF_T0);
    pt_ff_add_manifest(&b, "r", "subject", "a", NULL, NULL, 0, NULL, 0);
    pt_ff_add_manifest(&b, "r", "keep", "k", NULL, NULL, 0, NULL, 0);
    pt_ff_add_manifest(&b, "r", "signature", "sig", subj, NULL, 0, NULL, 0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "b", subj), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);

    struct pt_referrer *refs;
    size_t n;
    assert_int_equal(pt_metastore_list_referrers(f->ms[0], "r", subj, NULL, 10, &refs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(refs[0].digest, sig);
    assert_string_equal(refs[0].media_type, PT_FF_MT_OCI);
    assert_string_equal(refs[0].artifact_type, "application/vnd.example");
    assert_string_equal(refs[0].annotations, "{\"k\":\"v\"}");
    assert_int_equal(refs[0].size, strlen("signature"));
    pt_referrers_free(refs, n);

    /* deleting the referrer removes its referrers entry and its tag */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_manifest(&b, "r", sig), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_list_referrers(f->ms[0], "r", subj, NULL, 10, &refs, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "r", "sig", got), PT_E_MANIFEST_UNKNOWN);

    /* deleting the subject removes every tag pointing at it, including one added by the same
     * command, and nothing else */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "c", subj), 0);
    assert_int_equal(pt_command_add_delete_manifest(&b, "r", subj), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    char **names;
    size_t count;
    int more;
    assert_int_equal(pt_metastore_list_tags(f->ms[0], "r", "", 10, &names, &count, &more), 0);
    assert_int_equal(count, 1);
    assert_string_equal(names[0], "k");
    pt_strv_free(names, count);
    struct pt_manifest_rec rec;
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "r", subj, &rec), PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "r", keep, &rec), 0);
    pt_manifest_rec_free(&rec);

    /* a tag cannot point at a deleted manifest */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "a", subj), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_MANIFEST_UNKNOWN);
}

static void test_blobs(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    char d[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("blob", d);
    uint64_t size;

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_unlink_blob(&b, "r", d), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_BLOB_UNKNOWN);

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_blob_stored(&b, d, 4, "eu-west"), 0);
    assert_int_equal(pt_command_add_blob_stored(&b, d, 4, NULL), 0); /* command's region */
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0); /* same size: no-op */
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_repo_exists(f->ms[0], "r"), 1);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, &size), 0);
    assert_int_equal(size, 4);
    char **regions;
    size_t n;
    assert_int_equal(pt_metastore_blob_regions(f->ms[0], d, &size, &regions, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(regions[0], "eu-west");
    assert_string_equal(regions[1], "us-east");
    pt_strv_free(regions, n);

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 5), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_SIZE_INVALID);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_blob_stored(&b, d, 5, "ap-south"), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_SIZE_INVALID);

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_unlink_blob(&b, "r", d), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, &size), PT_E_BLOB_UNKNOWN);
    /* the blob is still known cluster-wide */
    assert_int_equal(pt_metastore_blob_location(f->ms[0], d, &size), 0);
}

static void test_failure_is_atomic(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    char d[PT_DIGEST_STR_MAX + 1], m[PT_DIGEST_STR_MAX + 1], before[65], after[65];
    pt_text_digest("blob", d);
    pt_text_digest("missing", m);
    pt_ff_digest_state(f->ms[0], before);

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    assert_int_equal(pt_command_add_blob_stored(&b, d, 4, "us-east"), 0);
    pt_ff_add_manifest(&b, "r", "{}", "latest", NULL, NULL, 0, NULL, 0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "x", m), 0); /* fails */
    assert_int_equal(pt_command_add_link_blob(&b, "r2", d, 4), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_MANIFEST_UNKNOWN);

    pt_ff_digest_state(f->ms[0], after);
    assert_string_equal(before, after);
    assert_int_equal(pt_metastore_repo_exists(f->ms[0], "r"), 0);
    assert_int_equal(pt_metastore_blob_location(f->ms[0], d, NULL), PT_E_BLOB_UNKNOWN);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 1);
}

static void test_idempotent_by_index(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    char d[PT_DIGEST_STR_MAX + 1], e[PT_DIGEST_STR_MAX + 1], s1[65], s2[65];
    pt_text_digest("blob", d);
    pt_text_digest("else", e);

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    void *buf;
    size_t len;
    assert_int_equal(pt_command_builder_encode(&b, &buf, &len), 0);
    pt_command_builder_free(&b);
    struct pt_fsm_result res;
    assert_int_equal(pt_fsm_apply(f->ms[0], buf, len, 5, &res), 0);
    assert_int_equal(res.status, 0);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 5);
    pt_ff_digest_state(f->ms[0], s1);

    /* replays and stale indexes are skipped, even when the command would now fail */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_unlink_blob(&b, "r", d), 0);
    assert_int_equal(pt_command_add_unlink_blob(&b, "r", d), 0);
    void *buf2;
    size_t len2;
    assert_int_equal(pt_command_builder_encode(&b, &buf2, &len2), 0);
    pt_command_builder_free(&b);
    assert_int_equal(pt_fsm_apply(f->ms[0], buf, len, 5, &res), 0);
    assert_int_equal(res.status, 0);
    assert_int_equal(pt_fsm_apply(f->ms[0], buf2, len2, 3, &res), 0);
    assert_int_equal(res.status, 0);
    assert_int_equal(pt_fsm_apply(f->ms[0], buf2, len2, 5, &res), 0);
    assert_int_equal(res.status, 0);
    pt_ff_digest_state(f->ms[0], s2);
    assert_string_equal(s1, s2);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 5);

    /* a failing command still advances the index */
    assert_int_equal(pt_fsm_apply(f->ms[0], buf2, len2, 6, &res), 0);
    assert_int_equal(res.status, PT_E_BLOB_UNKNOWN);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 6);
    assert_int_equal(pt_fsm_apply(f->ms[0], buf2, len2, 6, &res), 0);
    assert_int_equal(res.status, 0);
    pt_ff_digest_state(f->ms[0], s2);
    assert_string_equal(s1, s2);

    /* index 0 applies without recording an index */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", e, 1), 0);
    assert_int_equal(pt_ff_apply_to(f->ms[0], &b, 0), 0);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 6);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", e, NULL), 0);

    /* the index survives a restart */
    pt_metastore_close(f->ms[0]);
    assert_int_equal(pt_metastore_open(f->db[0], &f->ms[0]), 0);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 6);
    assert_int_equal(pt_fsm_apply(f->ms[0], buf, len, 6, &res), 0);
    assert_int_equal(res.status, 0);
    assert_int_equal(pt_fsm_apply(f->ms[0], buf2, len2, 7, &res), 0);
    assert_int_equal(res.status, PT_E_BLOB_UNKNOWN); /* the second unlink fails: none applied */
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 7);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), 0);
    free(buf);
    free(buf2);
}

static void test_two_stores_converge(void **state)
{
    struct pt_ff_fixture *f = *state;
    char layer[PT_DIGEST_STR_MAX + 1], m1[PT_DIGEST_STR_MAX + 1], s[2][65];
    pt_text_digest("layer", layer);
    pt_text_digest("{\"m\":1}", m1);
    const char *blobs[] = {layer};
    const char *children[] = {m1};

    for (int r = 0; r < 2; r++) {
        uint64_t index = 0;
        struct pt_command_builder b;
        pt_ff_builder(&b, PT_FF_T0);
        assert_int_equal(pt_command_add_blob_stored(&b, layer, 5, "us-east"), 0);
        assert_int_equal(pt_command_add_link_blob(&b, "a", layer, 5), 0);
        assert_int_equal(pt_ff_apply_to(f->ms[r], &b, ++index), 0);
        pt_ff_builder(&b, PT_FF_T0 + 10);
        pt_ff_add_manifest(&b, "a", "{\"m\":1}", "v1", NULL, blobs, 1, NULL, 0);
        assert_int_equal(pt_ff_apply_to(f->ms[r], &b, ++index), 0);
        pt_ff_builder(&b, PT_FF_T0 + 20);
        pt_ff_add_manifest(&b, "a", "{\"i\":1}", "latest", NULL, NULL, 0, children, 1);
        pt_ff_add_manifest(&b, "a", "{\"sig\":1}", NULL, m1, NULL, 0, NULL, 0);
        assert_int_equal(pt_ff_apply_to(f->ms[r], &b, ++index), 0);
        pt_ff_builder(&b, PT_FF_T0 + 30);
        pt_ff_add_manifest(&b, "b", "{\"m\":1}", "v1", NULL, blobs, 1, NULL, 0);
        assert_int_equal(pt_ff_apply_to(f->ms[r], &b, ++index), PT_E_MANIFEST_BLOB_UNKNOWN);
        pt_ff_builder(&b, PT_FF_T0 + 40);
        assert_int_equal(pt_command_add_blob_stored(&b, layer, 5, "eu-west"), 0);
        assert_int_equal(pt_command_add_delete_tag(&b, "a", "v1"), 0);
        assert_int_equal(pt_ff_apply_to(f->ms[r], &b, ++index), 0);
        /* the second store sees a replay of the last entry, as after a restart */
        if (r == 1) {
            pt_ff_builder(&b, PT_FF_T0 + 40);
            assert_int_equal(pt_command_add_delete_tag(&b, "a", "v1"), 0);
            assert_int_equal(pt_ff_apply_to(f->ms[r], &b, index), 0);
        }
        pt_ff_digest_state(f->ms[r], s[r]);
        assert_int_equal(pt_metastore_applied_index(f->ms[r]), 5);
    }
    assert_string_equal(s[0], s[1]);

    /* a differing timestamp is a differing state */
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0 + 50);
    assert_int_equal(pt_command_add_put_tag(&b, "a", "x", m1), 0);
    assert_int_equal(pt_ff_apply_to(f->ms[0], &b, 6), 0);
    pt_ff_builder(&b, PT_FF_T0 + 51);
    assert_int_equal(pt_command_add_put_tag(&b, "a", "x", m1), 0);
    assert_int_equal(pt_ff_apply_to(f->ms[1], &b, 6), 0);
    pt_ff_digest_state(f->ms[0], s[0]);
    pt_ff_digest_state(f->ms[1], s[1]);
    assert_string_not_equal(s[0], s[1]);
}

/* Encodes and frees b into cmd (its buffer owned by the test: free(cmd->buf)). */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_manifest, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_put_manifest_preconditions, pt_ff_setup,
                                        pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_tags, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_delete_manifest, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_blobs, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_failure_is_atomic, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_by_index, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_two_stores_converge, pt_ff_setup, pt_ff_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
