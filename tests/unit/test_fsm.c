/*
 * test_fsm.c - the replicated state machine and the command codec: every operation's effect
 * and precondition, all-or-nothing commands, idempotence by index, refusal of unknown versions
 * and malformed input, identical state in two stores fed the same commands, and group commit
 * (several commands in one synced write): later commands see earlier ones, a failed
 * precondition or an undecodable command stays alone, and a failed write (injected through
 * the metastore's fault seam) leaves nothing visible and halts the store until it is reopened.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "digest.h"
#include "err.h"
#include "fsm.h"
#include "log.h"
#include "metastore.h"

#define MT_OCI "application/vnd.oci.image.manifest.v1+json"
#define MT_IDX "application/vnd.oci.image.index.v1+json"
#define T0     1700000000000LL

struct fixture {
    char dir[256];
    char db[2][300];
    struct pt_metastore *ms[2];
    uint64_t index; /* last index applied to ms[0] by apply() */
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/pt_fsm_XXXXXX", tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    for (int i = 0; i < 2; i++) {
        snprintf(f->db[i], sizeof(f->db[i]), "%s/region%d", f->dir, i);
        assert_int_equal(pt_metastore_open(f->db[i], &f->ms[i]), 0);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 2; i++)
        pt_metastore_close(f->ms[i]);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void digest_of(const char *s, char out[PT_DIGEST_STR_MAX + 1])
{
    struct pt_digest d;
    pt_digest_of(s, strlen(s), &d);
    pt_digest_format(&d, out);
}

static void builder(struct pt_command_builder *b, int64_t time_ms)
{
    assert_int_equal(pt_command_builder_init(b, time_ms, "us-east"), 0);
}

/* Encodes and frees b, applies it to ms at index; returns the command status. */
static int apply_to(struct pt_metastore *ms, struct pt_command_builder *b, uint64_t index)
{
    void *buf;
    size_t len;
    assert_int_equal(pt_command_builder_encode(b, &buf, &len), 0);
    pt_command_builder_free(b);
    struct pt_fsm_result res = {.status = 12345};
    assert_int_equal(pt_fsm_apply(ms, buf, len, index, &res), 0);
    free(buf);
    return res.status;
}

/* Applies b to the first store at the next index; checks the index advanced. */
static int apply(struct fixture *f, struct pt_command_builder *b)
{
    int status = apply_to(f->ms[0], b, ++f->index);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), f->index);
    return status;
}

static void add_manifest(struct pt_command_builder *b, const char *repo, const char *body,
                         const char *tag, const char *subject, const char *const *blobs,
                         size_t n_blobs, const char *const *children, size_t n_children)
{
    char d[PT_DIGEST_STR_MAX + 1];
    digest_of(body, d);
    const char *tags[1] = {tag};
    struct pt_command_manifest m = {
        .repo = repo,
        .digest = d,
        .media_type = n_children ? MT_IDX : MT_OCI,
        .body = body,
        .len = strlen(body),
        .tags = tags,
        .n_tags = tag != NULL,
        .subject = subject,
        .artifact_type = subject ? "application/vnd.example" : NULL,
        .annotations = subject ? "{\"k\":\"v\"}" : NULL,
        .annotations_len = subject ? 9 : 0,
        .blobs = blobs,
        .n_blobs = n_blobs,
        .children = children,
        .n_children = n_children,
    };
    assert_int_equal(pt_command_add_put_manifest(b, &m), 0);
}

static void digest_state(struct pt_metastore *ms, char hex[65])
{
    assert_int_equal(pt_metastore_state_digest(ms, hex), 0);
}

static void test_put_manifest(void **state)
{
    struct fixture *f = *state;
    struct pt_command_builder b;
    char layer[PT_DIGEST_STR_MAX + 1], config[PT_DIGEST_STR_MAX + 1], d[PT_DIGEST_STR_MAX + 1],
        tagged[PT_DIGEST_STR_MAX + 1];
    digest_of("layer", layer);
    digest_of("config", config);
    const char *blobs[] = {config, layer};

    /* LinkBlob then PutManifest in one command: the manifest sees the links */
    builder(&b, T0);
    assert_int_equal(pt_command_add_link_blob(&b, "library/app", layer, 5), 0);
    assert_int_equal(pt_command_add_link_blob(&b, "library/app", config, 6), 0);
    add_manifest(&b, "library/app", "{\"m\":1}", "latest", NULL, blobs, 2, NULL, 0);
    assert_int_equal(apply(f, &b), 0);

    digest_of("{\"m\":1}", d);
    assert_int_equal(pt_metastore_repo_exists(f->ms[0], "library/app"), 1);
    struct pt_manifest_rec rec;
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "library/app", d, &rec), 0);
    assert_string_equal(rec.media_type, MT_OCI);
    assert_memory_equal(rec.body, "{\"m\":1}", rec.len);
    pt_manifest_rec_free(&rec);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "library/app", "latest", tagged), 0);
    assert_string_equal(tagged, d);
    uint64_t size;
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "library/app", layer, &size), 0);
    assert_int_equal(size, 5);

    /* index referencing the manifest as a child */
    const char *children[] = {d};
    builder(&b, T0 + 1);
    add_manifest(&b, "library/app", "{\"index\":1}", "multi", NULL, NULL, 0, children, 1);
    assert_int_equal(apply(f, &b), 0);
    char idx[PT_DIGEST_STR_MAX + 1];
    digest_of("{\"index\":1}", idx);
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "library/app", idx, &rec), 0);
    assert_string_equal(rec.media_type, MT_IDX);
    pt_manifest_rec_free(&rec);

    /* re-putting an existing digest keeps the stored record, still moves tags */
    builder(&b, T0 + 2);
    struct pt_command_manifest again = {.repo = "library/app",
                                        .digest = d,
                                        .media_type = "application/other",
                                        .body = "{\"m\":1}",
                                        .len = 7,
                                        .tags = (const char *[]){"multi"},
                                        .n_tags = 1};
    assert_int_equal(pt_command_add_put_manifest(&b, &again), 0);
    assert_int_equal(apply(f, &b), 0);
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "library/app", d, &rec), 0);
    assert_string_equal(rec.media_type, MT_OCI);
    pt_manifest_rec_free(&rec);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "library/app", "multi", tagged), 0);
    assert_string_equal(tagged, d);
}

static void test_put_manifest_preconditions(void **state)
{
    struct fixture *f = *state;
    struct pt_command_builder b;
    char layer[PT_DIGEST_STR_MAX + 1], d[PT_DIGEST_STR_MAX + 1], before[65], after[65];
    digest_of("layer", layer);
    const char *blobs[] = {layer};
    digest_of("{\"m\":2}", d);
    const char *children[] = {d};
    digest_state(f->ms[0], before);

    /* blob not linked */
    builder(&b, T0);
    add_manifest(&b, "r", "{\"m\":2}", "latest", NULL, blobs, 1, NULL, 0);
    assert_int_equal(apply(f, &b), PT_E_MANIFEST_BLOB_UNKNOWN);
    /* linked in another repository only */
    builder(&b, T0);
    assert_int_equal(pt_command_add_link_blob(&b, "other", layer, 5), 0);
    assert_int_equal(apply(f, &b), 0);
    digest_state(f->ms[0], before);
    builder(&b, T0);
    add_manifest(&b, "r", "{\"m\":2}", "latest", NULL, blobs, 1, NULL, 0);
    assert_int_equal(apply(f, &b), PT_E_MANIFEST_BLOB_UNKNOWN);
    /* child manifest missing */
    builder(&b, T0);
    add_manifest(&b, "r", "{\"index\":2}", NULL, NULL, NULL, 0, children, 1);
    assert_int_equal(apply(f, &b), PT_E_MANIFEST_BLOB_UNKNOWN);
    /* body does not hash to the digest */
    builder(&b, T0);
    struct pt_command_manifest bad = {
        .repo = "r", .digest = layer, .media_type = MT_OCI, .body = "{}", .len = 2};
    assert_int_equal(pt_command_add_put_manifest(&b, &bad), 0);
    assert_int_equal(apply(f, &b), PT_E_DIGEST_INVALID);
    /* malformed inputs are refused deterministically */
    builder(&b, T0);
    bad.digest = "sha256:1234";
    assert_int_equal(pt_command_add_put_manifest(&b, &bad), 0);
    assert_int_equal(apply(f, &b), PT_E_DIGEST_INVALID);
    builder(&b, T0);
    add_manifest(&b, "", "{}", NULL, NULL, NULL, 0, NULL, 0);
    assert_int_equal(apply(f, &b), PT_E_NAME_INVALID);
    char long_tag[PT_METASTORE_TAG_MAX + 2];
    memset(long_tag, 't', sizeof(long_tag) - 1);
    long_tag[sizeof(long_tag) - 1] = '\0';
    builder(&b, T0);
    add_manifest(&b, "r", "{}", long_tag, NULL, NULL, 0, NULL, 0);
    assert_int_equal(apply(f, &b), PT_E_TAG_INVALID);

    digest_state(f->ms[0], after);
    assert_string_equal(before, after);
    assert_int_equal(pt_metastore_repo_exists(f->ms[0], "r"), 0);
}

static void test_tags(void **state)
{
    struct fixture *f = *state;
    struct pt_command_builder b;
    char d1[PT_DIGEST_STR_MAX + 1], d2[PT_DIGEST_STR_MAX + 1], got[PT_DIGEST_STR_MAX + 1];
    digest_of("one", d1);
    digest_of("two", d2);

    builder(&b, T0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "latest", d1), 0);
    assert_int_equal(apply(f, &b), PT_E_MANIFEST_UNKNOWN);

    builder(&b, T0);
    add_manifest(&b, "r", "one", NULL, NULL, NULL, 0, NULL, 0);
    add_manifest(&b, "r", "two", NULL, NULL, NULL, 0, NULL, 0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "latest", d1), 0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "stable", d1), 0);
    assert_int_equal(apply(f, &b), 0);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "r", "latest", got), 0);
    assert_string_equal(got, d1);

    /* move a tag */
    builder(&b, T0 + 5);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "latest", d2), 0);
    assert_int_equal(apply(f, &b), 0);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "r", "latest", got), 0);
    assert_string_equal(got, d2);
    /* tag of a manifest in another repository */
    builder(&b, T0);
    assert_int_equal(pt_command_add_put_tag(&b, "other", "latest", d2), 0);
    assert_int_equal(apply(f, &b), PT_E_MANIFEST_UNKNOWN);

    /* delete */
    builder(&b, T0);
    assert_int_equal(pt_command_add_delete_tag(&b, "r", "nope"), 0);
    assert_int_equal(apply(f, &b), PT_E_MANIFEST_UNKNOWN);
    builder(&b, T0);
    assert_int_equal(pt_command_add_delete_tag(&b, "r", "stable"), 0);
    assert_int_equal(apply(f, &b), 0);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "r", "stable", got), PT_E_MANIFEST_UNKNOWN);
    /* deleting twice in one command: the second sees the first */
    builder(&b, T0);
    assert_int_equal(pt_command_add_delete_tag(&b, "r", "latest"), 0);
    assert_int_equal(pt_command_add_delete_tag(&b, "r", "latest"), 0);
    assert_int_equal(apply(f, &b), PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "r", "latest", got), 0);
}

static void test_delete_manifest(void **state)
{
    struct fixture *f = *state;
    struct pt_command_builder b;
    char subj[PT_DIGEST_STR_MAX + 1], sig[PT_DIGEST_STR_MAX + 1], keep[PT_DIGEST_STR_MAX + 1],
        got[PT_DIGEST_STR_MAX + 1];
    digest_of("subject", subj);
    digest_of("signature", sig);
    digest_of("keep", keep);

    builder(&b, T0);
    assert_int_equal(pt_command_add_delete_manifest(&b, "r", subj), 0);
    assert_int_equal(apply(f, &b), PT_E_MANIFEST_UNKNOWN);

    builder(&b, T0);
    add_manifest(&b, "r", "subject", "a", NULL, NULL, 0, NULL, 0);
    add_manifest(&b, "r", "keep", "k", NULL, NULL, 0, NULL, 0);
    add_manifest(&b, "r", "signature", "sig", subj, NULL, 0, NULL, 0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "b", subj), 0);
    assert_int_equal(apply(f, &b), 0);

    struct pt_referrer *refs;
    size_t n;
    assert_int_equal(pt_metastore_list_referrers(f->ms[0], "r", subj, NULL, 10, &refs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(refs[0].digest, sig);
    assert_string_equal(refs[0].media_type, MT_OCI);
    assert_string_equal(refs[0].artifact_type, "application/vnd.example");
    assert_string_equal(refs[0].annotations, "{\"k\":\"v\"}");
    assert_int_equal(refs[0].size, strlen("signature"));
    pt_referrers_free(refs, n);

    /* deleting the referrer removes its referrers entry and its tag */
    builder(&b, T0);
    assert_int_equal(pt_command_add_delete_manifest(&b, "r", sig), 0);
    assert_int_equal(apply(f, &b), 0);
    assert_int_equal(pt_metastore_list_referrers(f->ms[0], "r", subj, NULL, 10, &refs, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "r", "sig", got), PT_E_MANIFEST_UNKNOWN);

    /* deleting the subject removes every tag pointing at it, including one added by the same
     * command, and nothing else */
    builder(&b, T0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "c", subj), 0);
    assert_int_equal(pt_command_add_delete_manifest(&b, "r", subj), 0);
    assert_int_equal(apply(f, &b), 0);
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
    builder(&b, T0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "a", subj), 0);
    assert_int_equal(apply(f, &b), PT_E_MANIFEST_UNKNOWN);
}

static void test_blobs(void **state)
{
    struct fixture *f = *state;
    struct pt_command_builder b;
    char d[PT_DIGEST_STR_MAX + 1];
    digest_of("blob", d);
    uint64_t size;

    builder(&b, T0);
    assert_int_equal(pt_command_add_unlink_blob(&b, "r", d), 0);
    assert_int_equal(apply(f, &b), PT_E_BLOB_UNKNOWN);

    builder(&b, T0);
    assert_int_equal(pt_command_add_blob_stored(&b, d, 4, "eu-west"), 0);
    assert_int_equal(pt_command_add_blob_stored(&b, d, 4, NULL), 0); /* command's region */
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0); /* same size: no-op */
    assert_int_equal(apply(f, &b), 0);
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

    builder(&b, T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 5), 0);
    assert_int_equal(apply(f, &b), PT_E_SIZE_INVALID);
    builder(&b, T0);
    assert_int_equal(pt_command_add_blob_stored(&b, d, 5, "ap-south"), 0);
    assert_int_equal(apply(f, &b), PT_E_SIZE_INVALID);

    builder(&b, T0);
    assert_int_equal(pt_command_add_unlink_blob(&b, "r", d), 0);
    assert_int_equal(apply(f, &b), 0);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, &size), PT_E_BLOB_UNKNOWN);
    /* the blob is still known cluster-wide */
    assert_int_equal(pt_metastore_blob_location(f->ms[0], d, &size), 0);
}

static void test_failure_is_atomic(void **state)
{
    struct fixture *f = *state;
    struct pt_command_builder b;
    char d[PT_DIGEST_STR_MAX + 1], m[PT_DIGEST_STR_MAX + 1], before[65], after[65];
    digest_of("blob", d);
    digest_of("missing", m);
    digest_state(f->ms[0], before);

    builder(&b, T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    assert_int_equal(pt_command_add_blob_stored(&b, d, 4, "us-east"), 0);
    add_manifest(&b, "r", "{}", "latest", NULL, NULL, 0, NULL, 0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "x", m), 0); /* fails */
    assert_int_equal(pt_command_add_link_blob(&b, "r2", d, 4), 0);
    assert_int_equal(apply(f, &b), PT_E_MANIFEST_UNKNOWN);

    digest_state(f->ms[0], after);
    assert_string_equal(before, after);
    assert_int_equal(pt_metastore_repo_exists(f->ms[0], "r"), 0);
    assert_int_equal(pt_metastore_blob_location(f->ms[0], d, NULL), PT_E_BLOB_UNKNOWN);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 1);
}

static void test_idempotent_by_index(void **state)
{
    struct fixture *f = *state;
    struct pt_command_builder b;
    char d[PT_DIGEST_STR_MAX + 1], e[PT_DIGEST_STR_MAX + 1], s1[65], s2[65];
    digest_of("blob", d);
    digest_of("else", e);

    builder(&b, T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    void *buf;
    size_t len;
    assert_int_equal(pt_command_builder_encode(&b, &buf, &len), 0);
    pt_command_builder_free(&b);
    struct pt_fsm_result res;
    assert_int_equal(pt_fsm_apply(f->ms[0], buf, len, 5, &res), 0);
    assert_int_equal(res.status, 0);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 5);
    digest_state(f->ms[0], s1);

    /* replays and stale indexes are skipped, even when the command would now fail */
    builder(&b, T0);
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
    digest_state(f->ms[0], s2);
    assert_string_equal(s1, s2);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 5);

    /* a failing command still advances the index */
    assert_int_equal(pt_fsm_apply(f->ms[0], buf2, len2, 6, &res), 0);
    assert_int_equal(res.status, PT_E_BLOB_UNKNOWN);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 6);
    assert_int_equal(pt_fsm_apply(f->ms[0], buf2, len2, 6, &res), 0);
    assert_int_equal(res.status, 0);
    digest_state(f->ms[0], s2);
    assert_string_equal(s1, s2);

    /* index 0 applies without recording an index */
    builder(&b, T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", e, 1), 0);
    assert_int_equal(apply_to(f->ms[0], &b, 0), 0);
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

static void test_refuses_bad_commands(void **state)
{
    struct fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1], before[65], after[65];
    digest_of("blob", d);
    digest_state(f->ms[0], before);
    struct pt_fsm_result res;

    /* unknown version */
    struct pt_command_builder b;
    builder(&b, T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    b.msg.version = PT_COMMAND_VERSION + 1;
    void *buf;
    size_t len;
    assert_int_equal(pt_command_builder_encode(&b, &buf, &len), 0);
    assert_int_equal(pt_fsm_apply(f->ms[0], buf, len, 1, &res), PT_E_CORRUPT);
    assert_int_equal(res.status, PT_E_CORRUPT);
    free(buf);
    b.msg.version = 0;
    assert_int_equal(pt_command_builder_encode(&b, &buf, &len), 0);
    assert_int_equal(pt_fsm_apply(f->ms[0], buf, len, 1, &res), PT_E_CORRUPT);
    free(buf);

    /* an operation with no kind */
    b.msg.version = PT_COMMAND_VERSION;
    Portolan__Op empty = PORTOLAN__OP__INIT;
    Portolan__Op *ops[] = {b.msg.ops[0], &empty};
    Portolan__Command c = b.msg;
    c.ops = ops;
    c.n_ops = 2;
    assert_int_equal(pt_command_encode(&c, &buf, &len), 0);
    assert_int_equal(pt_fsm_apply(f->ms[0], buf, len, 1, &res), PT_E_CORRUPT);
    free(buf);
    pt_command_builder_free(&b);

    /* not protobuf; too large */
    static const unsigned char junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    assert_int_equal(pt_fsm_apply(f->ms[0], junk, sizeof(junk), 1, &res), PT_E_CORRUPT);
    assert_int_equal(pt_fsm_apply(f->ms[0], junk, PT_COMMAND_MAX_SIZE + 1, 1, &res), PT_E_CORRUPT);
    /* an empty buffer decodes to version 0 */
    assert_int_equal(pt_fsm_apply(f->ms[0], "", 0, 1, &res), PT_E_CORRUPT);

    digest_state(f->ms[0], after);
    assert_string_equal(before, after);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 0);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), PT_E_BLOB_UNKNOWN);
}

static void test_command_codec(void **state)
{
    (void)state;
    struct pt_command_builder b;
    assert_int_equal(pt_command_builder_init(&b, T0, NULL), 0);
    const char *tags[] = {"a", "b"};
    const char *blobs[] = {"sha256:b"};
    const char *children[] = {"sha256:c1", "sha256:c2"};
    struct pt_command_manifest m = {.repo = "r",
                                    .digest = "sha256:d",
                                    .media_type = MT_OCI,
                                    .body = "body",
                                    .len = 4,
                                    .tags = tags,
                                    .n_tags = 2,
                                    .annotations = "{}",
                                    .annotations_len = 2,
                                    .blobs = blobs,
                                    .n_blobs = 1,
                                    .children = children,
                                    .n_children = 2};
    assert_int_equal(pt_command_add_put_manifest(&b, &m), 0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "t", "sha256:d"), 0);
    assert_int_equal(pt_command_add_delete_tag(&b, "r", "t"), 0);
    assert_int_equal(pt_command_add_delete_manifest(&b, "r", "sha256:d"), 0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", "sha256:b", 7), 0);
    assert_int_equal(pt_command_add_unlink_blob(&b, "r", "sha256:b"), 0);
    assert_int_equal(pt_command_add_blob_stored(&b, "sha256:b", 7, "eu"), 0);
    void *buf;
    size_t len;
    assert_int_equal(pt_command_builder_encode(&b, &buf, &len), 0);
    pt_command_builder_free(&b);
    pt_command_builder_free(&b); /* twice is harmless */

    Portolan__Command *c;
    assert_int_equal(pt_command_decode(buf, len, &c), 0);
    free(buf);
    assert_int_equal(c->version, PT_COMMAND_VERSION);
    assert_int_equal(c->time_ms, T0);
    assert_string_equal(c->region, "");
    assert_int_equal(c->n_ops, 7);
    Portolan__PutManifest *pm = c->ops[0]->put_manifest;
    assert_int_equal(c->ops[0]->op_case, PORTOLAN__OP__OP_PUT_MANIFEST);
    assert_string_equal(pm->repo, "r");
    assert_string_equal(pm->media_type, MT_OCI);
    assert_int_equal(pm->body.len, 4);
    assert_memory_equal(pm->body.data, "body", 4);
    assert_int_equal(pm->n_tags, 2);
    assert_string_equal(pm->tags[1], "b");
    assert_string_equal(pm->subject, "");
    assert_string_equal(pm->artifact_type, "");
    assert_int_equal(pm->annotations.len, 2);
    assert_int_equal(pm->n_blobs, 1);
    assert_int_equal(pm->n_children, 2);
    assert_string_equal(pm->children[1], "sha256:c2");
    assert_int_equal(c->ops[1]->op_case, PORTOLAN__OP__OP_PUT_TAG);
    assert_string_equal(c->ops[1]->put_tag->tag, "t");
    assert_int_equal(c->ops[2]->op_case, PORTOLAN__OP__OP_DELETE_TAG);
    assert_int_equal(c->ops[3]->op_case, PORTOLAN__OP__OP_DELETE_MANIFEST);
    assert_string_equal(c->ops[3]->delete_manifest->digest, "sha256:d");
    assert_int_equal(c->ops[4]->op_case, PORTOLAN__OP__OP_LINK_BLOB);
    assert_int_equal(c->ops[4]->link_blob->size, 7);
    assert_int_equal(c->ops[5]->op_case, PORTOLAN__OP__OP_UNLINK_BLOB);
    assert_int_equal(c->ops[6]->op_case, PORTOLAN__OP__OP_BLOB_STORED);
    assert_string_equal(c->ops[6]->blob_stored->region, "eu");
    pt_command_decoded_free(c);

    /* limits: operations per command, encoded size */
    assert_int_equal(pt_command_builder_init(&b, T0, "r"), 0);
    for (int i = 0; i < PT_COMMAND_MAX_OPS; i++)
        assert_int_equal(pt_command_add_delete_tag(&b, "r", "t"), 0);
    assert_int_equal(pt_command_add_delete_tag(&b, "r", "t"), PT_E_TOO_LARGE);
    assert_int_equal(b.msg.n_ops, PT_COMMAND_MAX_OPS);
    pt_command_builder_free(&b);

    assert_int_equal(pt_command_builder_init(&b, T0, "r"), 0);
    char *big = calloc(1, PT_COMMAND_MAX_SIZE);
    assert_non_null(big);
    struct pt_command_manifest huge = {.repo = "r", .body = big, .len = PT_COMMAND_MAX_SIZE};
    assert_int_equal(pt_command_add_put_manifest(&b, &huge), 0);
    free(big);
    assert_int_equal(pt_command_builder_encode(&b, &buf, &len), PT_E_TOO_LARGE);
    assert_null(buf);
    pt_command_builder_free(&b);
}

/* The same commands, successes and failures mixed, give the same state in two stores. */
static void test_two_stores_converge(void **state)
{
    struct fixture *f = *state;
    char layer[PT_DIGEST_STR_MAX + 1], m1[PT_DIGEST_STR_MAX + 1], s[2][65];
    digest_of("layer", layer);
    digest_of("{\"m\":1}", m1);
    const char *blobs[] = {layer};
    const char *children[] = {m1};

    for (int r = 0; r < 2; r++) {
        uint64_t index = 0;
        struct pt_command_builder b;
        builder(&b, T0);
        assert_int_equal(pt_command_add_blob_stored(&b, layer, 5, "us-east"), 0);
        assert_int_equal(pt_command_add_link_blob(&b, "a", layer, 5), 0);
        assert_int_equal(apply_to(f->ms[r], &b, ++index), 0);
        builder(&b, T0 + 10);
        add_manifest(&b, "a", "{\"m\":1}", "v1", NULL, blobs, 1, NULL, 0);
        assert_int_equal(apply_to(f->ms[r], &b, ++index), 0);
        builder(&b, T0 + 20);
        add_manifest(&b, "a", "{\"i\":1}", "latest", NULL, NULL, 0, children, 1);
        add_manifest(&b, "a", "{\"sig\":1}", NULL, m1, NULL, 0, NULL, 0);
        assert_int_equal(apply_to(f->ms[r], &b, ++index), 0);
        builder(&b, T0 + 30);
        add_manifest(&b, "b", "{\"m\":1}", "v1", NULL, blobs, 1, NULL, 0);
        assert_int_equal(apply_to(f->ms[r], &b, ++index), PT_E_MANIFEST_BLOB_UNKNOWN);
        builder(&b, T0 + 40);
        assert_int_equal(pt_command_add_blob_stored(&b, layer, 5, "eu-west"), 0);
        assert_int_equal(pt_command_add_delete_tag(&b, "a", "v1"), 0);
        assert_int_equal(apply_to(f->ms[r], &b, ++index), 0);
        /* the second store sees a replay of the last entry, as after a restart */
        if (r == 1) {
            builder(&b, T0 + 40);
            assert_int_equal(pt_command_add_delete_tag(&b, "a", "v1"), 0);
            assert_int_equal(apply_to(f->ms[r], &b, index), 0);
        }
        digest_state(f->ms[r], s[r]);
        assert_int_equal(pt_metastore_applied_index(f->ms[r]), 5);
    }
    assert_string_equal(s[0], s[1]);

    /* a differing timestamp is a differing state */
    struct pt_command_builder b;
    builder(&b, T0 + 50);
    assert_int_equal(pt_command_add_put_tag(&b, "a", "x", m1), 0);
    assert_int_equal(apply_to(f->ms[0], &b, 6), 0);
    builder(&b, T0 + 51);
    assert_int_equal(pt_command_add_put_tag(&b, "a", "x", m1), 0);
    assert_int_equal(apply_to(f->ms[1], &b, 6), 0);
    digest_state(f->ms[0], s[0]);
    digest_state(f->ms[1], s[1]);
    assert_string_not_equal(s[0], s[1]);
}

/* Encodes and frees b into cmd (its buffer owned by the test: free(cmd->buf)). */
static void group_cmd(struct pt_command_builder *b, struct pt_fsm_cmd *cmd)
{
    void *buf;
    assert_int_equal(pt_command_builder_encode(b, &buf, &cmd->len), 0);
    pt_command_builder_free(b);
    cmd->buf = buf;
    cmd->index = 12345;
}

static void group_free(struct pt_fsm_cmd *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((void *)cmds[i].buf);
}

static int devnull = -1;

/* Sends the log to /dev/null (the failures below are logged on purpose) until loud(). */
static int quiet(void)
{
    devnull = open("/dev/null", O_WRONLY);
    assert_true(devnull >= 0);
    return pt_log_set_fd(devnull);
}

static void loud(int saved)
{
    pt_log_set_fd(saved);
    close(devnull);
}

static void test_group(void **state)
{
    struct fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1], m[PT_DIGEST_STR_MAX + 1];
    digest_of("blob", d);
    digest_of("{}", m);
    struct pt_command_builder b;
    struct pt_fsm_cmd cmds[4];

    builder(&b, T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    assert_int_equal(apply(f, &b), 0); /* index 1 */

    /* 0: unlinks the blob; 1: a manifest over it (fails: the unlink is seen); 2: does not
     * decode; 3: links it again and stores the manifest (sees 0, not 1) */
    builder(&b, T0 + 1);
    assert_int_equal(pt_command_add_unlink_blob(&b, "r", d), 0);
    group_cmd(&b, &cmds[0]);
    builder(&b, T0 + 2);
    const char *blobs[] = {d};
    add_manifest(&b, "r", "{}", "latest", NULL, blobs, 1, NULL, 0);
    group_cmd(&b, &cmds[1]);
    cmds[2] = (struct pt_fsm_cmd){.buf = strdup("junk"), .len = 4, .index = 7};
    builder(&b, T0 + 3);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    add_manifest(&b, "r", "{}", "v1", NULL, blobs, 1, NULL, 0);
    group_cmd(&b, &cmds[3]);

    assert_int_equal(pt_fsm_apply_group(f->ms[0], cmds, 4), 0);
    assert_int_equal(cmds[0].index, 2);
    assert_int_equal(cmds[0].result.status, 0);
    assert_int_equal(cmds[1].index, 3); /* a failed precondition still takes an index */
    assert_int_equal(cmds[1].result.status, PT_E_MANIFEST_BLOB_UNKNOWN);
    assert_int_equal(cmds[2].index, 0); /* refused alone: no index */
    assert_int_equal(cmds[2].result.status, PT_E_CORRUPT);
    assert_int_equal(cmds[3].index, 4);
    assert_int_equal(cmds[3].result.status, 0);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 4);
    char tag[PT_DIGEST_STR_MAX + 1];
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "r", "latest", tag), PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "r", "v1", tag), 0);
    assert_string_equal(tag, m);
    group_free(cmds, 4);

    /* the same commands one by one give the same state */
    char one[65], many[65];
    digest_state(f->ms[0], many);
    builder(&b, T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    assert_int_equal(apply_to(f->ms[1], &b, 1), 0);
    builder(&b, T0 + 1);
    assert_int_equal(pt_command_add_unlink_blob(&b, "r", d), 0);
    assert_int_equal(apply_to(f->ms[1], &b, 2), 0);
    builder(&b, T0 + 2);
    add_manifest(&b, "r", "{}", "latest", NULL, blobs, 1, NULL, 0);
    assert_int_equal(apply_to(f->ms[1], &b, 3), PT_E_MANIFEST_BLOB_UNKNOWN);
    builder(&b, T0 + 3);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    add_manifest(&b, "r", "{}", "v1", NULL, blobs, 1, NULL, 0);
    assert_int_equal(apply_to(f->ms[1], &b, 4), 0);
    digest_state(f->ms[1], one);
    assert_string_equal(one, many);

    /* a group of nothing but undecodable commands writes nothing */
    cmds[0] = (struct pt_fsm_cmd){.buf = strdup("junk"), .len = 4};
    assert_int_equal(pt_fsm_apply_group(f->ms[0], cmds, 1), 0);
    assert_int_equal(cmds[0].result.status, PT_E_CORRUPT);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 4);
    group_free(cmds, 1);
    assert_int_equal(pt_metastore_halted(f->ms[0]), 0);
}

static void test_group_write_failure(void **state)
{
    struct fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1], e[PT_DIGEST_STR_MAX + 1], before[65], after[65];
    digest_of("blob", d);
    digest_of("else", e);
    struct pt_command_builder b;
    struct pt_fsm_cmd cmds[3];

    builder(&b, T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    assert_int_equal(apply(f, &b), 0);
    digest_state(f->ms[0], before);

    /* the group's one synced write fails (a WAL write or fsync error): no command of it is
     * visible, every one carries the error, the index stays */
    builder(&b, T0 + 1);
    assert_int_equal(pt_command_add_link_blob(&b, "r", e, 4), 0);
    group_cmd(&b, &cmds[0]);
    builder(&b, T0 + 2);
    assert_int_equal(pt_command_add_unlink_blob(&b, "r", d), 0);
    group_cmd(&b, &cmds[1]);
    builder(&b, T0 + 3);
    assert_int_equal(pt_command_add_delete_tag(&b, "r", "absent"), 0);
    group_cmd(&b, &cmds[2]);
    int saved = quiet();
    pt_metastore_fail_next_commit(f->ms[0], PT_E_IO);
    assert_int_equal(pt_fsm_apply_group(f->ms[0], cmds, 3), PT_E_IO);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cmds[i].index, 0);
        assert_int_equal(cmds[i].result.status, PT_E_IO);
    }
    digest_state(f->ms[0], after);
    assert_string_equal(before, after);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 1);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", e, NULL), PT_E_BLOB_UNKNOWN);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), 0);

    /* the log stopped: the next group and a single apply at that index are refused, even
     * though the fault is gone, and nothing changes */
    assert_int_equal(pt_metastore_halted(f->ms[0]), PT_E_IO);
    assert_int_equal(pt_fsm_apply_group(f->ms[0], cmds, 3), PT_E_IO);
    assert_int_equal(cmds[0].index, 0);
    struct pt_fsm_result res;
    assert_int_equal(pt_fsm_apply(f->ms[0], cmds[0].buf, cmds[0].len, 2, &res), PT_E_IO);
    assert_int_equal(res.status, PT_E_IO);
    loud(saved);
    digest_state(f->ms[0], after);
    assert_string_equal(before, after);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 1);

    /* a restart (reopen) goes on from the last durable index */
    pt_metastore_close(f->ms[0]);
    assert_int_equal(pt_metastore_open(f->db[0], &f->ms[0]), 0);
    assert_int_equal(pt_metastore_halted(f->ms[0]), 0);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 1);
    assert_int_equal(pt_fsm_apply_group(f->ms[0], cmds, 3), 0);
    assert_int_equal(cmds[0].index, 2);
    assert_int_equal(cmds[1].index, 3);
    assert_int_equal(cmds[2].index, 4);
    assert_int_equal(cmds[2].result.status, PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", e, NULL), 0);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), PT_E_BLOB_UNKNOWN);
    group_free(cmds, 3);
}

/* A single apply (the Raft path) whose write fails halts the store as well. */
static void test_apply_write_failure(void **state)
{
    struct fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1];
    digest_of("blob", d);
    struct pt_command_builder b;
    struct pt_fsm_cmd cmd;
    builder(&b, T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    group_cmd(&b, &cmd);

    int saved = quiet();
    pt_metastore_fail_next_commit(f->ms[0], PT_E_IO);
    struct pt_fsm_result res;
    assert_int_equal(pt_fsm_apply(f->ms[0], cmd.buf, cmd.len, 1, &res), PT_E_IO);
    assert_int_equal(pt_fsm_apply(f->ms[0], cmd.buf, cmd.len, 1, &res), PT_E_IO);
    assert_int_equal(pt_fsm_apply(f->ms[0], cmd.buf, cmd.len, 2, &res), PT_E_IO);
    loud(saved);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 0);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), PT_E_BLOB_UNKNOWN);
    /* a halted store takes no snapshot restore either */
    void *snap;
    size_t len;
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot(f->ms[1], &snap, &len, &index), 0);
    assert_int_equal(pt_metastore_restore(f->ms[0], snap, len), PT_E_IO);
    free(snap);
    free((void *)cmd.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_manifest_preconditions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_is_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_by_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_bad_commands, setup, teardown),
        cmocka_unit_test(test_command_codec),
        cmocka_unit_test_setup_teardown(test_two_stores_converge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_write_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_write_failure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
