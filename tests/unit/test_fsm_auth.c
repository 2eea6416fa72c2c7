/*
 * test_fsm_auth.c - the access control operations of the replicated state machine
 * (replication/fsm_auth.c, node/store/metastore_auth.c): every operation's effect, its
 * validation (refused deterministically, nothing staged), idempotence, the auth generation,
 * and the records travelling in snapshots. Stores and command helpers: support/ff_fixture.h.
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
#include "err.h"
#include "fsm.h"
#include "metastore.h"
#include "password.h"
#include "pattern.h"
#include "support/auth_keys.h"
#include "support/ff_fixture.h"
#include "support/text_digest.h"

static const struct pt_command_grant pull_team[] = {{"team/**", PT_ACTION_PULL | PT_ACTION_PUSH},
                                                    {"public/*", PT_ACTION_PULL}};
static const struct pt_command_grant admin[] = {{"**", PT_ACTION_ADMIN}};

static void secret_hash(const char *secret, char out[PT_SECRET_HASH_MAX])
{
    pt_secret_hash(secret, strlen(secret), out);
}

/* Applies one command holding the refused operation added by add(b) and checks the status
 * and that nothing changed. */
static void assert_refused(struct pt_ff_fixture *f, struct pt_command_builder *b, int status)
{
    char before[65], after[65];
    pt_ff_digest_state(f->ms[0], before);
    uint64_t gen = pt_metastore_auth_generation(f->ms[0]);
    assert_int_equal(pt_ff_apply(f, b), status);
    pt_ff_digest_state(f->ms[0], after);
    assert_string_equal(before, after);
    /* a refused command stages nothing; the generation may move (a reload), never back */
    assert_true(pt_metastore_auth_generation(f->ms[0]) >= gen);
}

static void test_users(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    struct pt_auth_user_rec r;

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(
        pt_command_add_put_user(&b, "alice", PT_TEST_PASSWORD_HASH, pull_team, 2, 0, 0), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_auth_user_get(f->ms[0], "alice", &r), 0);
    assert_string_equal(r.name, "alice");
    assert_string_equal(r.password_hash, PT_TEST_PASSWORD_HASH);
    assert_int_equal(r.created_ms, PT_FF_T0);
    assert_int_equal(r.disabled, 0);
    assert_int_equal(r.n_grants, 2);
    assert_string_equal(r.grants[0].pattern, "team/**");
    assert_int_equal(r.grants[0].actions, PT_ACTION_PULL | PT_ACTION_PUSH);
    assert_string_equal(r.grants[1].pattern, "public/*");
    assert_int_equal(r.grants[1].actions, PT_ACTION_PULL);

    /* a replacement keeps the created time and takes everything else */
    pt_ff_builder(&b, PT_FF_T0 + 100);
    assert_int_equal(pt_command_add_put_user(&b, "alice", PT_TEST_PASSWORD_HASH, admin, 1, 1, 0),
                     0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_auth_user_get(f->ms[0], "alice", &r), 0);
    assert_int_equal(r.created_ms, PT_FF_T0);
    assert_int_equal(r.disabled, 1);
    assert_int_equal(r.n_grants, 1);
    assert_string_equal(r.grants[0].pattern, "**");
    assert_int_equal(r.grants[0].actions, PT_ACTION_ADMIN);

    /* applying the same command again leaves the same state */
    char s1[65], s2[65];
    pt_ff_digest_state(f->ms[0], s1);
    pt_ff_builder(&b, PT_FF_T0 + 200);
    assert_int_equal(pt_command_add_put_user(&b, "alice", PT_TEST_PASSWORD_HASH, admin, 1, 1, 0),
                     0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    pt_ff_digest_state(f->ms[0], s2);
    assert_string_equal(s1, s2);

    /* no grants at all is a valid user (it can log in, holds nothing) */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_user(&b, "bob", PT_TEST_PASSWORD_HASH, NULL, 0, 0, 0), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_auth_user_get(f->ms[0], "bob", &r), 0);
    assert_int_equal(r.n_grants, 0);

    /* delete, twice: the second is a no-op */
    for (int i = 0; i < 2; i++) {
        pt_ff_builder(&b, PT_FF_T0);
        assert_int_equal(pt_command_add_delete_user(&b, "bob"), 0);
        assert_int_equal(pt_ff_apply(f, &b), 0);
        assert_int_equal(pt_metastore_auth_user_get(f->ms[0], "bob", &r), PT_E_NOT_FOUND);
    }
}

static void test_first_user(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    struct pt_auth_user_rec r;

    /* two proposals of a first administrator: only the first applies, the second is a no-op */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_user(&b, "root", PT_TEST_PASSWORD_HASH, admin, 1, 0, 1), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    pt_ff_builder(&b, PT_FF_T0 + 1);
    assert_int_equal(pt_command_add_put_user(&b, "other", PT_TEST_PASSWORD_HASH, admin, 1, 0, 1),
                     0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_auth_user_get(f->ms[0], "root", &r), 0);
    assert_int_equal(pt_metastore_auth_user_get(f->ms[0], "other", &r), PT_E_NOT_FOUND);

    /* in one command: the first put sees no user, the second sees the first's staged write */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_user(&b, "root"), 0);
    assert_int_equal(pt_command_add_put_user(&b, "x", PT_TEST_PASSWORD_HASH, admin, 1, 0, 1), 0);
    assert_int_equal(pt_command_add_put_user(&b, "y", PT_TEST_PASSWORD_HASH, admin, 1, 0, 1), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_auth_user_get(f->ms[0], "x", &r), 0);
    assert_int_equal(pt_metastore_auth_user_get(f->ms[0], "y", &r), PT_E_NOT_FOUND);
}

static void test_user_refusals(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    struct pt_command_grant g[PT_AUTH_GRANTS_MAX + 1];
    for (size_t i = 0; i < PT_AUTH_GRANTS_MAX + 1; i++)
        g[i] = (struct pt_command_grant){"a/*", PT_ACTION_PULL};
    char long_name[PT_AUTH_NAME_MAX + 2];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    const char *bad_names[] = {"", "Alice", "-a", "a b", "a/b", long_name};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        pt_ff_builder(&b, PT_FF_T0);
        assert_int_equal(
            pt_command_add_put_user(&b, bad_names[i], PT_TEST_PASSWORD_HASH, g, 1, 0, 0), 0);
        assert_refused(f, &b, PT_E_CONFIG);
        pt_ff_builder(&b, PT_FF_T0);
        assert_int_equal(pt_command_add_delete_user(&b, bad_names[i]), 0);
        assert_refused(f, &b, PT_E_CONFIG);
    }
    const char *bad_hashes[] = {
        "", "hunter2", "$6$salt$hash", "$y$j9T$$x", "$y$j9T$a$b$c", "$y$j9T$a b$c", "sha256:00"};
    for (size_t i = 0; i < sizeof(bad_hashes) / sizeof(bad_hashes[0]); i++) {
        pt_ff_builder(&b, PT_FF_T0);
        assert_int_equal(pt_command_add_put_user(&b, "alice", bad_hashes[i], g, 1, 0, 0), 0);
        assert_refused(f, &b, PT_E_CONFIG);
    }
    /* too many grants, bad patterns, bad actions, admin off "**" */
    struct pt_command_grant bad_grants[] = {
        {"", PT_ACTION_PULL},
        {"a//b", PT_ACTION_PULL},
        {"**/a", PT_ACTION_PULL},
        {"A", PT_ACTION_PULL},
        {"a", 0},
        {"a", 16},
        {"a/*", PT_ACTION_ADMIN},
        {"*", PT_ACTION_ADMIN},
        {"a**", PT_ACTION_PULL},
    };
    for (size_t i = 0; i < sizeof(bad_grants) / sizeof(bad_grants[0]); i++) {
        pt_ff_builder(&b, PT_FF_T0);
        assert_int_equal(
            pt_command_add_put_user(&b, "alice", PT_TEST_PASSWORD_HASH, &bad_grants[i], 1, 0, 0),
            0);
        assert_refused(f, &b, PT_E_CONFIG);
    }
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_user(&b, "alice", PT_TEST_PASSWORD_HASH, g,
                                             PT_AUTH_GRANTS_MAX + 1, 0, 0),
                     0);
    assert_refused(f, &b, PT_E_CONFIG);
    /* exactly the maximum is fine */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(
        pt_command_add_put_user(&b, "alice", PT_TEST_PASSWORD_HASH, g, PT_AUTH_GRANTS_MAX, 0, 0),
        0);
    assert_int_equal(pt_ff_apply(f, &b), 0);

    /* a refused operation undoes the whole command */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_user(&b, "carol", PT_TEST_PASSWORD_HASH, g, 1, 0, 0), 0);
    assert_int_equal(pt_command_add_put_user(&b, "dave", "bad", g, 1, 0, 0), 0);
    assert_refused(f, &b, PT_E_CONFIG);
    struct pt_auth_user_rec r;
    assert_int_equal(pt_metastore_auth_user_get(f->ms[0], "carol", &r), PT_E_NOT_FOUND);
}

static void test_tokens(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    struct pt_auth_token_rec r;
    char h[PT_SECRET_HASH_MAX];
    secret_hash("ptk_secret", h);

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_token(&b, "ci-1", h, pull_team, 2, PT_FF_T0 + 5000, 0,
                                              "build robot", "alice"),
                     0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_auth_token_get(f->ms[0], "ci-1", &r), 0);
    assert_string_equal(r.secret_hash, h);
    assert_int_equal(r.expires_ms, PT_FF_T0 + 5000);
    assert_int_equal(r.created_ms, PT_FF_T0);
    assert_string_equal(r.description, "build robot");
    assert_string_equal(r.owner, "alice");
    assert_int_equal(r.n_grants, 2);

    /* disable: replaced with the created time kept */
    pt_ff_builder(&b, PT_FF_T0 + 10);
    assert_int_equal(pt_command_add_put_token(&b, "ci-1", h, pull_team, 2, 0, 1, NULL, NULL), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_auth_token_get(f->ms[0], "ci-1", &r), 0);
    assert_int_equal(r.disabled, 1);
    assert_int_equal(r.expires_ms, 0);
    assert_int_equal(r.created_ms, PT_FF_T0);
    assert_string_equal(r.owner, "");

    /* refusals */
    char desc[PT_METASTORE_AUTH_TEXT_MAX + 2];
    memset(desc, 'd', sizeof(desc) - 1);
    desc[sizeof(desc) - 1] = '\0';
    struct {
        const char *id, *hash, *desc, *owner;
        int64_t expires;
    } bad[] = {
        {"Bad", h, NULL, NULL, 0},        {"ci-2", "sha256:abc", NULL, NULL, 0},
        {"ci-2", "plain", NULL, NULL, 0}, {"ci-2", h, desc, NULL, 0},
        {"ci-2", h, NULL, "Not Ok", 0},   {"ci-2", h, NULL, NULL, -1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pt_ff_builder(&b, PT_FF_T0);
        assert_int_equal(pt_command_add_put_token(&b, bad[i].id, bad[i].hash, pull_team, 1,
                                                  bad[i].expires, 0, bad[i].desc, bad[i].owner),
                         0);
        assert_refused(f, &b, PT_E_CONFIG);
    }
    /* the longest description fits */
    desc[PT_METASTORE_AUTH_TEXT_MAX] = '\0';
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_token(&b, "ci-2", h, NULL, 0, 0, 0, desc, NULL), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);

    for (int i = 0; i < 2; i++) {
        pt_ff_builder(&b, PT_FF_T0);
        assert_int_equal(pt_command_add_delete_token(&b, "ci-1"), 0);
        assert_int_equal(pt_ff_apply(f, &b), 0);
        assert_int_equal(pt_metastore_auth_token_get(f->ms[0], "ci-1", &r), PT_E_NOT_FOUND);
    }
}

/* Collects what pt_metastore_auth_load walks. */
struct seen {
    char text[2048];
    size_t users, tokens, keys, revoked;
};

static int seen_user(void *arg, const struct pt_auth_user_rec *r)
{
    struct seen *s = arg;
    s->users++;
    strcat(s->text, "user:");
    strcat(s->text, r->name);
    strcat(s->text, " ");
    return 0;
}

static int seen_token(void *arg, const struct pt_auth_token_rec *r)
{
    struct seen *s = arg;
    s->tokens++;
    strcat(s->text, "token:");
    strcat(s->text, r->id);
    strcat(s->text, " ");
    return 0;
}

static int seen_anon(void *arg, const char *pattern)
{
    struct seen *s = arg;
    strcat(s->text, "anon:");
    strcat(s->text, pattern);
    strcat(s->text, " ");
    return 0;
}

static int seen_key(void *arg, const struct pt_auth_key_rec *r)
{
    struct seen *s = arg;
    s->keys++;
    strcat(s->text, "key:");
    strcat(s->text, r->kid);
    strcat(s->text, " ");
    return 0;
}

static int seen_revoked(void *arg, const struct pt_auth_revoked_rec *r)
{
    struct seen *s = arg;
    s->revoked++;
    strcat(s->text, "jti:");
    strcat(s->text, r->jti);
    strcat(s->text, " ");
    return 0;
}

static const struct pt_metastore_auth_visitor seen_all = {
    .user = seen_user,
    .token = seen_token,
    .anonymous = seen_anon,
    .key = seen_key,
    .revoked = seen_revoked,
};

static void load(struct pt_metastore *ms, struct seen *s)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(pt_metastore_auth_load(ms, &seen_all, s), 0);
}

static void test_anonymous(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    struct seen s;

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_anonymous(&b, "public/**"), 0);
    assert_int_equal(pt_command_add_put_anonymous(&b, "docs"), 0);
    assert_int_equal(pt_command_add_put_anonymous(&b, "docs"), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    load(f->ms[0], &s);
    assert_string_equal(s.text, "anon:docs anon:public/** ");

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_anonymous(&b, "docs"), 0);
    assert_int_equal(pt_command_add_delete_anonymous(&b, "never/added"), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    load(f->ms[0], &s);
    assert_string_equal(s.text, "anon:public/** ");

    const char *bad[] = {"", "/a", "a/", "a//b", "**/x", "A/b", "a b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pt_ff_builder(&b, PT_FF_T0);
        assert_int_equal(pt_command_add_put_anonymous(&b, bad[i]), 0);
        assert_refused(f, &b, PT_E_CONFIG);
        pt_ff_builder(&b, PT_FF_T0);
        assert_int_equal(pt_command_add_delete_anonymous(&b, bad[i]), 0);
        assert_refused(f, &b, PT_E_CONFIG);
    }
}

static void test_bounds(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    char p[32];
    /* fill the anonymous rules up to their bound, in one command */
    pt_ff_builder(&b, PT_FF_T0);
    for (int i = 0; i < PT_METASTORE_AUTH_ANON_MAX; i++) {
        snprintf(p, sizeof(p), "r%d/**", i);
        assert_int_equal(pt_command_add_put_anonymous(&b, p), 0);
    }
    assert_int_equal(pt_ff_apply(f, &b), 0);
    /* one more is refused; putting an existing one again is not */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_anonymous(&b, "one-more"), 0);
    assert_refused(f, &b, PT_E_TOO_LARGE);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_anonymous(&b, "r7/**"), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    /* after a delete there is room again, in the same command */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_anonymous(&b, "r7/**"), 0);
    assert_int_equal(pt_command_add_put_anonymous(&b, "one-more"), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
}

static void test_signing_keys(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    unsigned char der[512], der2[512], p384[512];
    size_t len = sizeof(der), len2 = sizeof(der2), len384 = sizeof(p384);
    pt_test_p256_der(der, &len);
    pt_test_p256_der(der2, &len2);
    pt_test_p384_der(p384, &len384);
    struct pt_auth_key_rec k;

    /* the region defaults to the command's */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_signing_key(&b, "kid-A_1", NULL, der, len), 0);
    assert_int_equal(pt_command_add_put_signing_key(&b, "kid-B", "eu-west", der2, len2), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_auth_key_get(f->ms[0], "kid-A_1", &k), 0);
    assert_string_equal(k.region, "us-east");
    assert_int_equal(k.created_ms, PT_FF_T0);
    assert_int_equal(k.not_after_ms, 0);
    assert_int_equal(k.der_len, len);
    assert_memory_equal(k.der, der, len);
    assert_int_equal(pt_metastore_auth_key_get(f->ms[0], "kid-B", &k), 0);
    assert_string_equal(k.region, "eu-west");

    /* retire, then the same key again: stays retired; another key under the id: conflict */
    pt_ff_builder(&b, PT_FF_T0 + 10);
    assert_int_equal(pt_command_add_retire_signing_key(&b, "kid-A_1", PT_FF_T0 + 3600000), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    pt_ff_builder(&b, PT_FF_T0 + 20);
    assert_int_equal(pt_command_add_put_signing_key(&b, "kid-A_1", NULL, der, len), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_auth_key_get(f->ms[0], "kid-A_1", &k), 0);
    assert_int_equal(k.not_after_ms, PT_FF_T0 + 3600000);
    assert_int_equal(k.created_ms, PT_FF_T0);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_signing_key(&b, "kid-A_1", NULL, der2, len2), 0);
    assert_refused(f, &b, PT_E_CONFLICT);

    /* refusals: unknown kid, bad kid, bad keys, bad times */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_retire_signing_key(&b, "nope", PT_FF_T0), 0);
    assert_refused(f, &b, PT_E_NOT_FOUND);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_retire_signing_key(&b, "kid-B", 0), 0);
    assert_refused(f, &b, PT_E_CONFIG);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_signing_key(&b, "kid C", NULL, der, len), 0);
    assert_refused(f, &b, PT_E_CONFIG);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_signing_key(&b, "kid-C", NULL, p384, len384), 0);
    assert_refused(f, &b, PT_E_CONFIG);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_signing_key(&b, "kid-C", NULL, der, len - 1), 0);
    assert_refused(f, &b, PT_E_CONFIG);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_signing_key(&b, "kid-C", NULL, "garbage", 7), 0);
    assert_refused(f, &b, PT_E_CONFIG);
}

static void test_revoked(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    struct seen s;

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_revoke_jwt(&b, "j1", PT_FF_T0 + 100), 0);
    assert_int_equal(pt_command_add_revoke_jwt(&b, "j2", PT_FF_T0 + 200), 0);
    assert_int_equal(pt_command_add_revoke_jwt(&b, "j1", PT_FF_T0 + 100), 0);
    /* already expired when revoked: not remembered */
    assert_int_equal(pt_command_add_revoke_jwt(&b, "j0", PT_FF_T0), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    load(f->ms[0], &s);
    assert_string_equal(s.text, "jti:j1 jti:j2 ");

    /* a later revocation forgets the expired ones, by the command's time */
    pt_ff_builder(&b, PT_FF_T0 + 150);
    assert_int_equal(pt_command_add_revoke_jwt(&b, "j3", PT_FF_T0 + 1000), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    load(f->ms[0], &s);
    assert_string_equal(s.text, "jti:j2 jti:j3 ");

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_revoke_jwt(&b, "bad id", PT_FF_T0 + 1000), 0);
    assert_refused(f, &b, PT_E_CONFIG);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_revoke_jwt(&b, "j9", 0), 0);
    assert_refused(f, &b, PT_E_CONFIG);
}

static void test_generation(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    uint64_t g0 = pt_metastore_auth_generation(f->ms[0]);
    assert_true(g0 > 0);

    /* a command that touches no auth record leaves it */
    char layer[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("layer", layer);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", layer, 5), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_metastore_auth_generation(f->ms[0]), g0);

    /* every committed auth change moves it, deletes of absent records included */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_anonymous(&b, "public/**"), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    uint64_t g1 = pt_metastore_auth_generation(f->ms[0]);
    assert_true(g1 > g0);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_user(&b, "nobody"), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    uint64_t g2 = pt_metastore_auth_generation(f->ms[0]);
    assert_true(g2 > g1);

    /* a replayed index applies nothing and leaves it */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_anonymous(&b, "other"), 0);
    assert_int_equal(pt_ff_apply_to(f->ms[0], &b, f->index), 0);
    assert_int_equal(pt_metastore_auth_generation(f->ms[0]), g2);
}

static void test_snapshot_roundtrip(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_command_builder b;
    unsigned char der[512];
    size_t len = sizeof(der);
    pt_test_p256_der(der, &len);
    char h[PT_SECRET_HASH_MAX];
    secret_hash("ptk_x", h);

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(
        pt_command_add_put_user(&b, "alice", PT_TEST_PASSWORD_HASH, pull_team, 2, 0, 0), 0);
    assert_int_equal(pt_command_add_put_user(&b, "root", PT_TEST_PASSWORD_HASH, admin, 1, 0, 0), 0);
    assert_int_equal(pt_command_add_put_token(&b, "ci", h, pull_team, 1, 0, 0, "d", "alice"), 0);
    assert_int_equal(pt_command_add_put_anonymous(&b, "public/**"), 0);
    assert_int_equal(pt_command_add_put_signing_key(&b, "k1", NULL, der, len), 0);
    assert_int_equal(pt_command_add_revoke_jwt(&b, "j1", PT_FF_T0 + 1000), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);

    /* the second store holds a user the snapshot does not: restore replaces it */
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_user(&b, "stale", PT_TEST_PASSWORD_HASH, NULL, 0, 0, 0), 0);
    assert_int_equal(pt_ff_apply_to(f->ms[1], &b, 1), 0);

    void *buf;
    size_t n;
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot(f->ms[0], &buf, &n, &index), 0);
    uint64_t g = pt_metastore_auth_generation(f->ms[1]);
    assert_int_equal(pt_metastore_restore(f->ms[1], buf, n), 0);
    free(buf);
    assert_true(pt_metastore_auth_generation(f->ms[1]) > g);

    char s0[65], s1[65];
    pt_ff_digest_state(f->ms[0], s0);
    pt_ff_digest_state(f->ms[1], s1);
    assert_string_equal(s0, s1);
    struct seen a, c;
    load(f->ms[0], &a);
    load(f->ms[1], &c);
    assert_string_equal(a.text, c.text);
    assert_string_equal(c.text, "anon:public/** jti:j1 key:k1 token:ci user:alice user:root ");
    struct pt_auth_user_rec u;
    assert_int_equal(pt_metastore_auth_user_get(f->ms[1], "stale", &u), PT_E_NOT_FOUND);
    assert_int_equal(pt_metastore_auth_user_get(f->ms[1], "alice", &u), 0);
    assert_int_equal(u.n_grants, 2);
    struct pt_auth_key_rec k;
    assert_int_equal(pt_metastore_auth_key_get(f->ms[1], "k1", &k), 0);
    assert_memory_equal(k.der, der, len);
}

/* Every builder's fields survive encode and decode. */
static void test_codec(void **state)
{
    (void)state;
    struct pt_command_builder b;
    unsigned char der[3] = {1, 2, 3};
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_user(&b, "u", "h", pull_team, 2, 1, 1), 0);
    assert_int_equal(pt_command_add_delete_user(&b, "u"), 0);
    assert_int_equal(pt_command_add_put_token(&b, "t", "sh", admin, 1, 77, 1, "desc", "u"), 0);
    assert_int_equal(pt_command_add_delete_token(&b, "t"), 0);
    assert_int_equal(pt_command_add_put_anonymous(&b, "p/**"), 0);
    assert_int_equal(pt_command_add_delete_anonymous(&b, "p/**"), 0);
    assert_int_equal(pt_command_add_put_signing_key(&b, "k", "r", der, 3), 0);
    assert_int_equal(pt_command_add_retire_signing_key(&b, "k", 88), 0);
    assert_int_equal(pt_command_add_revoke_jwt(&b, "j", 99), 0);
    void *buf;
    size_t len;
    assert_int_equal(pt_command_builder_encode(&b, &buf, &len), 0);
    pt_command_builder_free(&b);
    Portolan__Command *c;
    assert_int_equal(pt_command_decode(buf, len, &c), 0);
    free(buf);
    assert_int_equal(c->n_ops, 9);
    Portolan__Op **o = c->ops;
    assert_int_equal(o[0]->op_case, PORTOLAN__OP__OP_PUT_USER);
    assert_string_equal(o[0]->put_user->name, "u");
    assert_string_equal(o[0]->put_user->password_hash, "h");
    assert_int_equal(o[0]->put_user->n_grants, 2);
    assert_string_equal(o[0]->put_user->grants[1]->pattern, "public/*");
    assert_int_equal(o[0]->put_user->grants[1]->actions, PT_ACTION_PULL);
    assert_true(o[0]->put_user->disabled && o[0]->put_user->only_if_no_users);
    assert_string_equal(o[1]->delete_user->name, "u");
    assert_string_equal(o[2]->put_token->id, "t");
    assert_string_equal(o[2]->put_token->secret_hash, "sh");
    assert_int_equal(o[2]->put_token->grants[0]->actions, PT_ACTION_ADMIN);
    assert_int_equal(o[2]->put_token->expires_ms, 77);
    assert_true(o[2]->put_token->disabled);
    assert_string_equal(o[2]->put_token->description, "desc");
    assert_string_equal(o[2]->put_token->owner, "u");
    assert_string_equal(o[3]->delete_token->id, "t");
    assert_string_equal(o[4]->put_anonymous_rule->pattern, "p/**");
    assert_string_equal(o[5]->delete_anonymous_rule->pattern, "p/**");
    assert_string_equal(o[6]->put_signing_key->kid, "k");
    assert_string_equal(o[6]->put_signing_key->region, "r");
    assert_int_equal(o[6]->put_signing_key->public_key.len, 3);
    assert_memory_equal(o[6]->put_signing_key->public_key.data, der, 3);
    assert_string_equal(o[7]->retire_signing_key->kid, "k");
    assert_int_equal(o[7]->retire_signing_key->not_after_ms, 88);
    assert_string_equal(o[8]->revoke_jwt->jti, "j");
    assert_int_equal(o[8]->revoke_jwt->expires_ms, 99);
    pt_command_decoded_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec),
        cmocka_unit_test_setup_teardown(test_users, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_first_user, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_user_refusals, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_tokens, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_anonymous, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_bounds, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_signing_keys, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_revoked, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_generation, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_roundtrip, pt_ff_setup, pt_ff_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
