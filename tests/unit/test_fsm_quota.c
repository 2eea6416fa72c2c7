/*
 * test_fsm_quota.c - storage quotas and usage in the replicated state machine: usage kept by
 * LinkBlob, PutManifest, DeleteManifest, UnlinkBlob and CollectBlobs (a blob shared by two
 * repositories counts once in the registry, once in each repository), the quota check at
 * LinkBlob and PutManifest (per repository pattern, registry-wide "*", a limit reached
 * exactly, nothing new added over a lowered quota), usage going down after a delete and a
 * collection, validation of PutQuota/PutThrottle at apply, idempotence, the records
 * travelling in a snapshot; and the throttling settings' records.
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

/* Uploads digest of size into repo at t (BlobStored + LinkBlob); returns the status. */
static int upload(struct pt_ff_fixture *f, const char *repo, const char *digest, uint64_t size,
                  int64_t t)
{
    struct pt_command_builder b;
    pt_ff_builder(&b, t);
    assert_int_equal(pt_command_add_blob_stored(&b, digest, size, "us-east"), 0);
    assert_int_equal(pt_command_add_link_blob(&b, repo, digest, size), 0);
    return pt_ff_apply(f, &b);
}

static int quota(struct pt_ff_fixture *f, const char *pattern, uint64_t limit)
{
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_quota(&b, pattern, limit), 0);
    return pt_ff_apply(f, &b);
}

static uint64_t repo_bytes(struct pt_ff_fixture *f, const char *repo, uint64_t *blobs)
{
    struct pt_usage u;
    assert_int_equal(pt_metastore_usage_repo(f->ms[0], repo, &u), 0);
    if (blobs != NULL)
        *blobs = u.blobs;
    return u.bytes;
}

static uint64_t registry_bytes(struct pt_ff_fixture *f, uint64_t *blobs)
{
    struct pt_usage u;
    assert_int_equal(pt_metastore_usage_registry(f->ms[0], &u), 0);
    if (blobs != NULL)
        *blobs = u.blobs;
    return u.bytes;
}

static int collect(struct pt_ff_fixture *f, const char *const *digests, size_t n, int64_t t)
{
    struct pt_command_builder b;
    pt_ff_builder(&b, t);
    assert_int_equal(pt_command_add_collect_blobs(&b, digests, n, HOUR), 0);
    return pt_ff_apply(f, &b);
}

static void test_usage_shared_blobs(void **state)
{
    struct pt_ff_fixture *f = *state;
    char a[PT_DIGEST_STR_MAX + 1], s[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("a", a);
    pt_text_digest("shared", s);
    uint64_t blobs;
    assert_int_equal(upload(f, "one", a, 100, PT_FF_T0), 0);
    assert_int_equal(upload(f, "one", s, 1000, PT_FF_T0), 0);
    /* the same blob again in the same repository: nothing more */
    assert_int_equal(upload(f, "one", s, 1000, PT_FF_T0 + 1), 0);
    assert_int_equal(repo_bytes(f, "one", &blobs), 1100);
    assert_int_equal(blobs, 2);
    /* mounted into a second repository: counted there, once in the registry */
    assert_int_equal(upload(f, "two", s, 1000, PT_FF_T0), 0);
    assert_int_equal(repo_bytes(f, "two", &blobs), 1000);
    assert_int_equal(blobs, 1);
    assert_int_equal(registry_bytes(f, &blobs), 1100);
    assert_int_equal(blobs, 2);
    /* a manifest referencing linked blobs adds nothing */
    char m[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("{\"m\":1}", m);
    const char *refs[] = {a, s};
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    pt_ff_add_manifest(&b, "one", "{\"m\":1}", "v1", NULL, refs, 2, NULL, 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(repo_bytes(f, "one", NULL), 1100);
    /* unlinking the shared blob from two: one's charge stays, the registry keeps it */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_unlink_blob(&b, "two", s), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(repo_bytes(f, "two", &blobs), 0);
    assert_int_equal(blobs, 0);
    assert_int_equal(registry_bytes(f, NULL), 1100);
    /* unlinking a referenced blob: still charged to one (its manifest references it) */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_unlink_blob(&b, "one", a), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(repo_bytes(f, "one", NULL), 1100);
    /* the manifest deleted: the last reference of a goes, its charge with it */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_manifest(&b, "one", m), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(repo_bytes(f, "one", &blobs), 1000);
    assert_int_equal(blobs, 1);
    assert_int_equal(registry_bytes(f, &blobs), 1000);
    assert_int_equal(blobs, 1);
}

static void test_delete_and_collect_lower_usage(void **state)
{
    struct pt_ff_fixture *f = *state;
    char l[PT_DIGEST_STR_MAX + 1], m[PT_DIGEST_STR_MAX + 1], l2[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("layer", l);
    pt_text_digest("layer2", l2);
    pt_text_digest("{\"m\":2}", m);
    assert_int_equal(quota(f, "team/*", 1500), 0);
    assert_int_equal(upload(f, "team/app", l, 1000, PT_FF_T0), 0);
    const char *refs[] = {l};
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    pt_ff_add_manifest(&b, "team/app", "{\"m\":2}", "v1", NULL, refs, 1, NULL, 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    /* crossing: refused, nothing of the command applied */
    assert_int_equal(upload(f, "team/app", l2, 501, PT_FF_T0), PT_E_QUOTA_EXCEEDED);
    assert_int_equal(pt_metastore_blob_location(f->ms[0], l2, NULL), PT_E_BLOB_UNKNOWN);
    struct pt_quota_refusal q;
    assert_int_equal(pt_metastore_quota_admit(f->ms[0], "team/app", l2, 501, &q),
                     PT_E_QUOTA_EXCEEDED);
    assert_string_equal(q.pattern, "team/*");
    assert_int_equal(q.limit, 1500);
    assert_int_equal(q.used, 1000);
    assert_int_equal(q.adding, 501);
    /* reaching the limit exactly is fine; a blob held already adds nothing */
    assert_int_equal(pt_metastore_quota_admit(f->ms[0], "team/app", l2, 500, NULL), 0);
    assert_int_equal(pt_metastore_quota_admit(f->ms[0], "team/app", l, 1000, NULL), 0);
    /* another repository matching the pattern has a quota of its own */
    assert_int_equal(upload(f, "team/web", l2, 1400, PT_FF_T0), 0);
    /* the manifest deleted: the link stays charged until a collection removes it */
    pt_ff_builder(&b, PT_FF_T0 + 1);
    assert_int_equal(pt_command_add_delete_manifest(&b, "team/app", m), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(repo_bytes(f, "team/app", NULL), 1000);
    const char *one[] = {l};
    assert_int_equal(collect(f, one, 1, PT_FF_T0 + HOUR - 10), 0); /* within the grace */
    assert_int_equal(repo_bytes(f, "team/app", NULL), 1000);
    assert_int_equal(collect(f, one, 1, PT_FF_T0 + 2 * HOUR), 0);
    assert_int_equal(repo_bytes(f, "team/app", NULL), 0);
    assert_int_equal(registry_bytes(f, NULL), 1400);
    /* the quota accepts again (l2 is new to team/app) */
    assert_int_equal(upload(f, "team/app", l2, 1400, PT_FF_T0 + 2 * HOUR), 0);
    assert_int_equal(repo_bytes(f, "team/app", NULL), 1400);
    assert_int_equal(registry_bytes(f, NULL), 1400);
}

static void test_registry_quota_and_lowered(void **state)
{
    struct pt_ff_fixture *f = *state;
    char a[PT_DIGEST_STR_MAX + 1], b2[PT_DIGEST_STR_MAX + 1], c[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("a", a);
    pt_text_digest("b", b2);
    pt_text_digest("c", c);
    assert_int_equal(quota(f, "*", 250), 0);
    assert_int_equal(upload(f, "x", a, 100, PT_FF_T0), 0);
    assert_int_equal(upload(f, "y", b2, 100, PT_FF_T0), 0);
    /* a mount of a blob the registry holds adds nothing to the registry */
    assert_int_equal(upload(f, "z", a, 100, PT_FF_T0), 0);
    assert_int_equal(upload(f, "z", c, 51, PT_FF_T0), PT_E_QUOTA_EXCEEDED);
    assert_int_equal(upload(f, "z", c, 50, PT_FF_T0), 0);
    /* lowered below the usage: nothing new, but what is there stays and re-links pass */
    assert_int_equal(quota(f, "*", 10), 0);
    assert_int_equal(upload(f, "x", a, 100, PT_FF_T0 + 1), 0);
    assert_int_equal(upload(f, "w", c, 50, PT_FF_T0 + 1), 0); /* held by the registry */
    /* removed: accepted again */
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_quota(&b, "*"), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    char d[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("d", d);
    assert_int_equal(upload(f, "x", d, 1000, PT_FF_T0 + 2), 0);
    struct pt_quota_rec *list;
    size_t n;
    assert_int_equal(pt_metastore_quota_list(f->ms[0], &list, &n), 0);
    assert_int_equal(n, 0);
    free(list);
}

static void test_apply_validation(void **state)
{
    struct pt_ff_fixture *f = *state;
    assert_int_equal(quota(f, "", 1), PT_E_CONFIG);
    assert_int_equal(quota(f, "Team/*", 1), PT_E_CONFIG);
    assert_int_equal(quota(f, "a//b", 1), PT_E_CONFIG);
    assert_int_equal(quota(f, "team/**", 1 << 20), 0);
    assert_int_equal(quota(f, "team/**", 2 << 20), 0); /* replaced */
    struct pt_quota_rec *list;
    size_t n;
    assert_int_equal(pt_metastore_quota_list(f->ms[0], &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].pattern, "team/**");
    assert_int_equal(list[0].limit, 2 << 20);
    free(list);
    /* deleting an absent quota is no error (idempotent) */
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_quota(&b, "none"), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);

    struct pt_command_throttle t = {.subject = "user:ci", .tier = 0, .writes_per_minute = 600};
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_throttle(&b, &t), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    static const char *const bad[] = {"user:", "users:ci", "token:", "user:a:b", "DEFAULT"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t.subject = bad[i];
        pt_ff_builder(&b, PT_FF_T0);
        assert_int_equal(pt_command_add_put_throttle(&b, &t), 0);
        assert_int_equal(pt_ff_apply(f, &b), PT_E_CONFIG);
    }
    t.subject = "default";
    t.tier = PT_THROTTLE_TIER_COUNT;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_throttle(&b, &t), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_CONFIG);
    t.tier = PT_THROTTLE_TIER_PREMIUM;
    t.reads_per_minute = 10000;
    t.read_bytes_per_second = 100000000;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_throttle(&b, &t), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);

    struct pt_throttle_rec r;
    assert_int_equal(pt_metastore_throttle_get(f->ms[0], "user:ci", &r), 0);
    assert_int_equal(r.writes_per_minute, 600);
    assert_int_equal(r.reads_per_minute, 0);
    assert_int_equal(pt_metastore_throttle_get(f->ms[0], "default", &r), 0);
    assert_int_equal(r.tier, PT_THROTTLE_TIER_PREMIUM);
    assert_int_equal(r.read_bytes_per_second, 100000000);
    assert_int_equal(pt_metastore_throttle_get(f->ms[0], "anonymous", &r), PT_E_NOT_FOUND);
    struct pt_throttle_rec *tl;
    assert_int_equal(pt_metastore_throttle_list(f->ms[0], &tl, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(tl[0].subject, "default");
    assert_string_equal(tl[1].subject, "user:ci");
    free(tl);
    /* a settings change moves the generation the regions' caches watch */
    uint64_t gen = pt_metastore_auth_generation(f->ms[0]);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_throttle(&b, "user:ci"), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_true(pt_metastore_auth_generation(f->ms[0]) > gen);
    assert_int_equal(pt_metastore_throttle_get(f->ms[0], "user:ci", &r), PT_E_NOT_FOUND);
}

static void test_bounds(void **state)
{
    struct pt_ff_fixture *f = *state;
    char p[32];
    for (int i = 0; i < PT_METASTORE_QUOTAS_MAX; i++) {
        snprintf(p, sizeof(p), "r%d", i);
        assert_int_equal(quota(f, p, 1), 0);
    }
    assert_int_equal(quota(f, "one-more", 1), PT_E_TOO_LARGE);
    assert_int_equal(quota(f, "r7", 2), 0); /* a replacement always works */
}

static void test_snapshot_and_idempotence(void **state)
{
    struct pt_ff_fixture *f = *state;
    char a[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("a", a);
    assert_int_equal(quota(f, "app", 150), 0);
    assert_int_equal(upload(f, "app", a, 100, PT_FF_T0), 0);
    char before[65], after[65];
    assert_int_equal(upload(f, "app", a, 100, PT_FF_T0), 0); /* the same again: no change */
    assert_int_equal(repo_bytes(f, "app", NULL), 100);
    assert_int_equal(registry_bytes(f, NULL), 100);
    void *buf;
    size_t len;
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot(f->ms[0], &buf, &len, &index), 0);
    assert_int_equal(pt_metastore_restore(f->ms[1], buf, len), 0);
    free(buf);
    struct pt_usage u;
    assert_int_equal(pt_metastore_usage_repo(f->ms[1], "app", &u), 0);
    assert_int_equal(u.bytes, 100);
    char b2[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("b", b2);
    assert_int_equal(pt_metastore_quota_admit(f->ms[1], "app", b2, 51, NULL), PT_E_QUOTA_EXCEEDED);
    pt_ff_digest_state(f->ms[0], before);
    pt_ff_digest_state(f->ms[1], after);
    assert_string_equal(before, after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_usage_shared_blobs, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_collect_lower_usage, pt_ff_setup,
                                        pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_registry_quota_and_lowered, pt_ff_setup,
                                        pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_apply_validation, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_bounds, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_and_idempotence, pt_ff_setup, pt_ff_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
