/*
 * test_fsm_policy.c - repository locks, immutable tag rules and retention in the replicated
 * state machine: the checks PutManifest, DeleteTag, DeleteManifest and UnlinkBlob make at apply
 * (and the words of a refusal), validation and idempotence of the records, the retention plan
 * and Retain's re-check at apply (a tag moved since the plan stays), and the tag glob.
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
#include "tagglob.h"

#define HOUR 3600000LL

static int put(struct pt_ff_fixture *f, const char *repo, const char *body, const char *tag,
               int64_t t)
{
    struct pt_command_builder b;
    pt_ff_builder(&b, t);
    pt_ff_add_manifest(&b, repo, body, tag, NULL, NULL, 0, NULL, 0);
    return pt_ff_apply(f, &b);
}

static int lock(struct pt_ff_fixture *f, const char *repo, const char *tag, const char *digest,
                int we, int de)
{
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_lock(&b, repo, tag, digest, we, de), 0);
    return pt_ff_apply(f, &b);
}

static int rule(struct pt_ff_fixture *f, const char *rp, const char *tp, int add)
{
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_tag_rule(&b, rp, tp, add), 0);
    return pt_ff_apply(f, &b);
}

static int del_tag(struct pt_ff_fixture *f, const char *repo, const char *tag)
{
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_tag(&b, repo, tag), 0);
    return pt_ff_apply(f, &b);
}

static int del_manifest(struct pt_ff_fixture *f, const char *repo, const char *digest)
{
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_manifest(&b, repo, digest), 0);
    return pt_ff_apply(f, &b);
}

static void tag_is(struct pt_ff_fixture *f, const char *repo, const char *tag, const char *want)
{
    char d[PT_DIGEST_STR_MAX + 1];
    if (want == NULL) {
        assert_int_equal(pt_metastore_get_tag(f->ms[0], repo, tag, d), PT_E_MANIFEST_UNKNOWN);
        return;
    }
    assert_int_equal(pt_metastore_get_tag(f->ms[0], repo, tag, d), 0);
    assert_string_equal(d, want);
}

static void test_repo_lock(void **state)
{
    struct pt_ff_fixture *f = *state;
    char m1[PT_DIGEST_STR_MAX + 1], msg[PT_POLICY_MSG_MAX];
    pt_text_digest("{\"m\":1}", m1);
    assert_int_equal(put(f, "team/app", "{\"m\":1}", "v1", PT_FF_T0), 0);
    assert_int_equal(lock(f, "team/app", NULL, NULL, 0, 1), 0);
    assert_int_equal(lock(f, "team/app", NULL, NULL, 0, 1), 0); /* idempotent */
    assert_int_equal(put(f, "team/app", "{\"m\":2}", "v2", PT_FF_T0), PT_E_LOCKED);
    assert_int_equal(pt_metastore_policy_explain(f->ms[0], PT_POLICY_PUSH, "team/app", NULL, m1,
                                                 msg, sizeof(msg)),
                     PT_E_LOCKED);
    assert_string_equal(msg, "repository team/app is locked for writes");
    assert_int_equal(put(f, "team/other", "{\"m\":2}", "v2", PT_FF_T0), 0); /* another repo */
    assert_int_equal(del_tag(f, "team/app", "v1"), 0);                      /* deletes: fine */
    /* delete lock: a manifest delete and a blob unlink are refused */
    assert_int_equal(lock(f, "team/app", NULL, NULL, 1, 0), 0);
    assert_int_equal(put(f, "team/app", "{\"m\":2}", "v2", PT_FF_T0), 0);
    assert_int_equal(del_manifest(f, "team/app", m1), PT_E_LOCKED);
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_unlink_blob(&b, "team/app", m1), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_BLOB_UNKNOWN); /* not linked: that comes first */
    /* both flags back on: the record is gone */
    assert_int_equal(lock(f, "team/app", NULL, NULL, 1, 1), 0);
    assert_int_equal(del_manifest(f, "team/app", m1), 0);
}

static void test_tag_and_manifest_locks(void **state)
{
    struct pt_ff_fixture *f = *state;
    char m1[PT_DIGEST_STR_MAX + 1], m2[PT_DIGEST_STR_MAX + 1], msg[PT_POLICY_MSG_MAX];
    pt_text_digest("{\"m\":1}", m1);
    pt_text_digest("{\"m\":2}", m2);
    assert_int_equal(put(f, "app", "{\"m\":1}", "v1", PT_FF_T0), 0);
    assert_int_equal(put(f, "app", "{\"m\":2}", "v2", PT_FF_T0), 0);
    assert_int_equal(lock(f, "app", "v1", NULL, 1, 0), 0);
    assert_int_equal(del_tag(f, "app", "v1"), PT_E_LOCKED);
    assert_int_equal(del_manifest(f, "app", m1), PT_E_LOCKED); /* it would delete v1 */
    assert_int_equal(pt_metastore_policy_explain(f->ms[0], PT_POLICY_MANIFEST_DELETE, "app", NULL,
                                                 m1, msg, sizeof(msg)),
                     PT_E_LOCKED);
    assert_string_equal(msg, "tag app:v1 is locked for deletes");
    assert_int_equal(put(f, "app", "{\"m\":2}", "v1", PT_FF_T0), 0); /* writes: fine */
    tag_is(f, "app", "v1", m2);
    /* a write-locked manifest keeps its tags */
    assert_int_equal(lock(f, "app", NULL, m2, 0, 1), 0);
    assert_int_equal(put(f, "app", "{\"m\":1}", "v2", PT_FF_T0), PT_E_LOCKED);
    tag_is(f, "app", "v2", m2);
    assert_int_equal(put(f, "app", "{\"m\":1}", "new", PT_FF_T0), 0);
    /* a delete-locked manifest stays */
    assert_int_equal(lock(f, "app", NULL, m1, 1, 0), 0);
    assert_int_equal(del_manifest(f, "app", m1), PT_E_LOCKED);
    assert_int_equal(pt_metastore_policy_explain(f->ms[0], PT_POLICY_MANIFEST_DELETE, "app", NULL,
                                                 m1, msg, sizeof(msg)),
                     PT_E_LOCKED);
    assert_non_null(strstr(msg, "is locked for deletes"));
    /* a tag write lock: no move, re-put at the same digest fine */
    assert_int_equal(lock(f, "app", "new", NULL, 0, 1), 0);
    assert_int_equal(put(f, "app", "{\"m\":1}", "new", PT_FF_T0), 0);
    assert_int_equal(lock(f, "app", NULL, m2, 1, 1), 0);
    assert_int_equal(put(f, "app", "{\"m\":2}", "new", PT_FF_T0), PT_E_LOCKED);
}

static void test_immutable_tags(void **state)
{
    struct pt_ff_fixture *f = *state;
    char m1[PT_DIGEST_STR_MAX + 1], m2[PT_DIGEST_STR_MAX + 1], msg[PT_POLICY_MSG_MAX];
    pt_text_digest("{\"m\":1}", m1);
    pt_text_digest("{\"m\":2}", m2);
    assert_int_equal(rule(f, "team/*", "v*", 1), 0);
    assert_int_equal(rule(f, "team/*", "v*", 1), 0); /* idempotent */
    assert_int_equal(put(f, "team/app", "{\"m\":1}", "v1.0", PT_FF_T0), 0);
    assert_int_equal(put(f, "team/app", "{\"m\":1}", "v1.0", PT_FF_T0), 0); /* same digest */
    assert_int_equal(put(f, "team/app", "{\"m\":2}", "v1.0", PT_FF_T0), PT_E_IMMUTABLE);
    tag_is(f, "team/app", "v1.0", m1);
    assert_int_equal(pt_metastore_policy_explain(f->ms[0], PT_POLICY_TAG_WRITE, "team/app", "v1.0",
                                                 m2, msg, sizeof(msg)),
                     PT_E_IMMUTABLE);
    assert_string_equal(msg, "tag v1.0 of team/app is immutable (rule team/*:v*)");
    assert_int_equal(del_tag(f, "team/app", "v1.0"), PT_E_IMMUTABLE);
    assert_int_equal(del_manifest(f, "team/app", m1), PT_E_IMMUTABLE);
    /* not matching: moves */
    assert_int_equal(put(f, "team/app", "{\"m\":1}", "latest", PT_FF_T0), 0);
    assert_int_equal(put(f, "team/app", "{\"m\":2}", "latest", PT_FF_T0), 0);
    assert_int_equal(put(f, "team/sub/app", "{\"m\":1}", "v1.0", PT_FF_T0), 0);
    assert_int_equal(put(f, "team/sub/app", "{\"m\":2}", "v1.0", PT_FF_T0), 0); /* * is one */
    /* rule gone: moves */
    assert_int_equal(rule(f, "team/*", "v*", 0), 0);
    assert_int_equal(put(f, "team/app", "{\"m\":2}", "v1.0", PT_FF_T0), 0);
}

static int copy_lock(const struct pt_lock_rec *r, void *arg)
{
    *(struct pt_lock_rec *)arg = *r;
    return 0;
}

static int copy_rule(const struct pt_tag_rule_rec *r, void *arg)
{
    *(struct pt_tag_rule_rec *)arg = *r;
    return 0;
}

static int copy_ret(const struct pt_retention_rec *r, void *arg)
{
    *(struct pt_retention_rec *)arg = *r;
    return 0;
}

static int count_ret(const struct pt_retention_rec *r, void *arg)
{
    (void)r;
    ++*(size_t *)arg;
    return 0;
}

static void test_validation(void **state)
{
    struct pt_ff_fixture *f = *state;
    char m1[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("{\"m\":1}", m1);
    assert_int_equal(lock(f, "App", NULL, NULL, 0, 0), PT_E_CONFIG);
    assert_int_equal(lock(f, "app", "v1", m1, 0, 0), PT_E_CONFIG);
    assert_int_equal(lock(f, "app", "-bad", NULL, 0, 0), PT_E_CONFIG);
    assert_int_equal(lock(f, "app", NULL, "sha256:abc", 0, 0), PT_E_CONFIG);
    assert_int_equal(rule(f, "team/[", "v*", 1), PT_E_CONFIG);
    assert_int_equal(rule(f, "team/*", "v?", 1), PT_E_CONFIG);
    assert_int_equal(rule(f, "team/*", "", 1), PT_E_CONFIG);
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_retention(&b, "**", 0, 0, "*"), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_CONFIG); /* both parts off */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_retention(&b, "**", -1, 2, "*"), 0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_CONFIG);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_retention(&b, "**", 0, PT_POLICY_KEEP_LAST_MAX + 1, "*"),
                     0);
    assert_int_equal(pt_ff_apply(f, &b), PT_E_CONFIG);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_retain(&b, NULL, PT_COMMAND_RETAIN_MAX + 1, NULL, 0),
                     PT_E_TOO_LARGE);
    pt_command_builder_free(&b);
    /* records are listed back as written (a retention rule put again replaces the first) */
    assert_int_equal(lock(f, "app", "v1", NULL, 0, 1), 0);
    assert_int_equal(rule(f, "**", "rel-*", 1), 0);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_retention(&b, "team/**", HOUR, 3, "v*"), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_retention(&b, "team/**", 2 * HOUR, 0, NULL), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    struct pt_lock_rec l = {0};
    assert_int_equal(pt_metastore_locks_list(f->ms[0], "app", copy_lock, &l), 0);
    assert_string_equal(l.tag, "v1");
    assert_int_equal(l.write_enabled, 0);
    assert_int_equal(l.delete_enabled, 1);
    struct pt_tag_rule_rec r = {0};
    assert_int_equal(pt_metastore_tag_rules_list(f->ms[0], copy_rule, &r), 0);
    assert_string_equal(r.tag_pattern, "rel-*");
    struct pt_retention_rec ret = {0};
    size_t n = 0;
    assert_int_equal(pt_metastore_retention_list(f->ms[0], count_ret, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(pt_metastore_retention_list(f->ms[0], copy_ret, &ret), 0);
    assert_int_equal(ret.untagged_older_than_ms, 2 * HOUR);
    assert_int_equal(ret.keep_last, 0);
    assert_string_equal(ret.tag_pattern, "*");
}

struct plan_out {
    char tags[16][160];
    size_t ntags;
    char mans[16][160];
    size_t nmans;
};

static int plan_tag(const char *repo, const char *tag, const char *digest, void *arg)
{
    struct plan_out *p = arg;
    (void)digest;
    snprintf(p->tags[p->ntags++], sizeof(p->tags[0]), "%s:%s", repo, tag);
    return 0;
}

static int plan_man(const char *repo, const char *digest, int64_t older, void *arg)
{
    struct plan_out *p = arg;
    assert_int_equal(older, HOUR);
    snprintf(p->mans[p->nmans++], sizeof(p->mans[0]), "%s@%s", repo, digest);
    return 0;
}

static void test_retention(void **state)
{
    struct pt_ff_fixture *f = *state;
    char d[6][PT_DIGEST_STR_MAX + 1], body[6][32];
    for (int i = 0; i < 6; i++) {
        snprintf(body[i], sizeof(body[i]), "{\"m\":%d}", i);
        pt_text_digest(body[i], d[i]);
    }
    /* t0..t3 at T0+i on m0..m3; m4 untagged (old); m5 untagged, locked */
    for (int i = 0; i < 4; i++) {
        char tag[8];
        snprintf(tag, sizeof(tag), "t%d", i);
        assert_int_equal(put(f, "team/app", body[i], tag, PT_FF_T0 + i), 0);
    }
    assert_int_equal(put(f, "team/app", body[4], NULL, PT_FF_T0), 0);
    assert_int_equal(put(f, "team/app", body[5], NULL, PT_FF_T0), 0);
    assert_int_equal(put(f, "team/app", body[0], "keep", PT_FF_T0), 0); /* m0 stays tagged */
    assert_int_equal(lock(f, "team/app", NULL, d[5], 1, 0), 0);
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_retention(&b, "team/*", HOUR, 2, "t*"), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);

    struct plan_out p = {0};
    assert_int_equal(
        pt_metastore_retention_plan(f->ms[0], PT_FF_T0 + 2 * HOUR, plan_tag, plan_man, &p), 0);
    assert_int_equal(p.ntags, 2);
    assert_string_equal(p.tags[0], "team/app:t0");
    assert_string_equal(p.tags[1], "team/app:t1");
    /* m1 loses its only tag; m4 is untagged; m0 keeps "keep"; m5 is locked */
    assert_int_equal(p.nmans, 2);
    char want1[160], want4[160];
    snprintf(want1, sizeof(want1), "team/app@%s", d[1]);
    snprintf(want4, sizeof(want4), "team/app@%s", d[4]);
    assert_true((strcmp(p.mans[0], want1) == 0 && strcmp(p.mans[1], want4) == 0) ||
                (strcmp(p.mans[0], want4) == 0 && strcmp(p.mans[1], want1) == 0));
    /* too young: nothing untagged */
    struct plan_out young = {0};
    assert_int_equal(
        pt_metastore_retention_plan(f->ms[0], PT_FF_T0 + HOUR / 2, plan_tag, plan_man, &young), 0);
    assert_int_equal(young.nmans, 0);

    /* a push racing the plan: t1 moves to m2 before the Retain applies; it stays, and m1
     * (still untagged) goes */
    assert_int_equal(put(f, "team/app", body[2], "t1", PT_FF_T0 + 2 * HOUR), 0);
    struct pt_command_retain_tag tags[] = {{"team/app", "t0", d[0]}, {"team/app", "t1", d[1]}};
    struct pt_command_retain_manifest mans[] = {
        {"team/app", d[1], HOUR}, {"team/app", d[4], HOUR}, {"team/app", d[5], HOUR}};
    pt_ff_builder(&b, PT_FF_T0 + 2 * HOUR);
    assert_int_equal(pt_command_add_retain(&b, tags, 2, mans, 3), 0);
    void *buf;
    size_t len;
    assert_int_equal(pt_command_builder_encode(&b, &buf, &len), 0);
    pt_command_builder_free(&b);
    struct pt_fsm_result res;
    assert_int_equal(pt_fsm_apply(f->ms[0], buf, len, ++f->index, &res), 0);
    free(buf);
    assert_int_equal(res.status, 0);
    assert_int_equal(res.retained_tags, 1);
    assert_int_equal(res.retained_manifests, 2);
    tag_is(f, "team/app", "t0", NULL);
    tag_is(f, "team/app", "t1", d[2]);
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "team/app", d[1], NULL),
                     PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "team/app", d[4], NULL),
                     PT_E_MANIFEST_UNKNOWN);
    struct pt_manifest_rec rec;
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "team/app", d[5], &rec), 0);
    pt_manifest_rec_free(&rec);
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "team/app", d[0], &rec), 0);
    pt_manifest_rec_free(&rec);
}

static void test_retention_keeps_children(void **state)
{
    struct pt_ff_fixture *f = *state;
    char child[PT_DIGEST_STR_MAX + 1], idx[512];
    pt_text_digest("{\"c\":1}", child);
    assert_int_equal(put(f, "app", "{\"c\":1}", NULL, PT_FF_T0), 0);
    snprintf(idx, sizeof(idx),
             "{\"schemaVersion\":2,\"mediaType\":\"" PT_FF_MT_IDX "\",\"manifests\":[{"
             "\"mediaType\":\"" PT_FF_MT_OCI "\",\"digest\":\"%s\",\"size\":7}]}",
             child);
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    const char *children[] = {child};
    pt_ff_add_manifest(&b, "app", idx, "idx", NULL, NULL, 0, children, 1);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_retention(&b, "**", HOUR, 0, NULL), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    struct plan_out p = {0};
    assert_int_equal(
        pt_metastore_retention_plan(f->ms[0], PT_FF_T0 + 2 * HOUR, plan_tag, plan_man, &p), 0);
    assert_int_equal(p.ntags + p.nmans, 0);
    int ok = 1;
    struct pt_metastore_batch *mb;
    assert_int_equal(pt_metastore_batch_new(f->ms[0], &mb), 0);
    struct pt_retain_item item = {"app", child, HOUR};
    assert_int_equal(pt_metastore_batch_retain_manifests(mb, &item, 1, PT_FF_T0 + 2 * HOUR, &ok),
                     0);
    assert_int_equal(ok, 0);
    pt_metastore_batch_free(mb);
}

/* An untagged referrer whose subject is gone is garbage (CollectBlobs), unless locked. */
static void test_locked_referrer_survives_gc(void **state)
{
    struct pt_ff_fixture *f = *state;
    char subj[PT_DIGEST_STR_MAX + 1], r1[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("{\"gone\":1}", subj);
    pt_text_digest("{\"sig\":1}", r1);
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    pt_ff_add_manifest(&b, "app", "{\"sig\":1}", NULL, subj, NULL, 0, NULL, 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(lock(f, "app", NULL, r1, 1, 0), 0);
    struct pt_command_referrer refs[] = {{"app", subj, r1}};
    pt_ff_builder(&b, PT_FF_T0 + 2 * HOUR);
    assert_int_equal(pt_command_add_collect_referrers(&b, refs, 1, HOUR), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    struct pt_manifest_rec rec;
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "app", r1, &rec), 0);
    pt_manifest_rec_free(&rec);
    assert_int_equal(lock(f, "app", NULL, r1, 1, 1), 0);
    pt_ff_builder(&b, PT_FF_T0 + 2 * HOUR);
    assert_int_equal(pt_command_add_collect_referrers(&b, refs, 1, HOUR), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_get_manifest(f->ms[0], "app", r1, NULL), PT_E_MANIFEST_UNKNOWN);
}

static void test_tag_glob(void **state)
{
    (void)state;
    static const struct {
        const char *p, *t;
        int want;
    } cases[] = {
        {"v*", "v1.2.3", 1},    {"v*", "1.2", 0},          {"*", "", 1},
        {"*", "x", 1},          {"a*b*c", "abc", 1},       {"a*b*c", "axxbyc", 1},
        {"a*b*c", "axxbyd", 0}, {"rel-*-x", "rel-1-x", 1}, {"exact", "exact", 1},
        {"exact", "exac", 0},   {"**", "anything", 1},     {"*-rc*", "1.0-rc2", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(
            pt_tag_glob_match(cases[i].p, strlen(cases[i].p), cases[i].t, strlen(cases[i].t)),
            cases[i].want);
    assert_true(pt_tag_glob_valid("v*", 2));
    assert_false(pt_tag_glob_valid("", 0));
    assert_false(pt_tag_glob_valid("v?", 2));
    assert_false(pt_tag_glob_valid("a/b", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_repo_lock, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_tag_and_manifest_locks, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_immutable_tags, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_validation, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_retention, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_retention_keeps_children, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_locked_referrer_survives_gc, pt_ff_setup,
                                        pt_ff_teardown),
        cmocka_unit_test(test_tag_glob),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
