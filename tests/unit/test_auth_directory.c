/*
 * test_auth_directory.c - the in-memory access control directory (node/auth/directory.c):
 * logins of users and tokens, the positive cache (hits, expiry, drop on change, failures
 * never remembered), action bits from grants and anonymous rules, disabled and expired
 * identities, signing keys, revoked ids, listings, reloads after a snapshot restore, and
 * readers racing a writer. Records are written through the FSM (support/ff_fixture.h); time
 * is the tests' own (PT_FF_T0 + ...).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "directory.h"
#include "err.h"
#include "login_cache.h"
#include "metastore.h"
#include "password.h"
#include "pattern.h"
#include "support/auth_keys.h"
#include "support/ff_fixture.h"

#define NOW PT_FF_T0

struct dir_fixture {
    struct pt_ff_fixture *ff;
    struct pt_auth_dir *dir;
    char secret[PT_SECRET_MAX]; /* of token "ci" */
};

static int setup(void **state)
{
    void *ff;
    pt_ff_setup(&ff);
    struct dir_fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->ff = ff;
    assert_int_equal(pt_secret_generate(f->secret, sizeof(f->secret)), 0);
    assert_int_equal(pt_auth_dir_open(f->ff->ms[0], &f->dir), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct dir_fixture *f = *state;
    pt_auth_dir_close(f->dir);
    void *ff = f->ff;
    pt_ff_teardown(&ff);
    free(f);
    return 0;
}

static const struct pt_command_grant alice_grants[] = {
    {"team/**", PT_ACTION_PULL | PT_ACTION_PUSH},
    {"team/prod-*", PT_ACTION_DELETE},
    {"*", PT_ACTION_PULL},
};
static const struct pt_command_grant admin_grants[] = {{"**", PT_ACTION_ADMIN}};
static const struct pt_command_grant ci_grants[] = {{"ci/*", PT_ACTION_PULL | PT_ACTION_PUSH}};

/* alice (grants above), root (admin), a token "ci" expiring at NOW + 10 s, anonymous pull
 * on public. */
static void populate(struct dir_fixture *f)
{
    struct pt_command_builder b;
    char h[PT_SECRET_HASH_MAX];
    pt_secret_hash(f->secret, strlen(f->secret), h);
    pt_ff_builder(&b, NOW);
    assert_int_equal(
        pt_command_add_put_user(&b, "alice", PT_TEST_PASSWORD_HASH, alice_grants, 3, 0, 0), 0);
    assert_int_equal(
        pt_command_add_put_user(&b, "root", PT_TEST_PASSWORD_HASH, admin_grants, 1, 0, 0), 0);
    assert_int_equal(
        pt_command_add_put_token(&b, "ci", h, ci_grants, 1, NOW + 10000, 0, "pipeline", "alice"),
        0);
    assert_int_equal(pt_command_add_put_anonymous(&b, "public/**"), 0);
    assert_int_equal(pt_ff_apply(f->ff, &b), 0);
}

static int login(struct dir_fixture *f, const char *name, const char *secret, int64_t now,
                 struct pt_identity *id)
{
    return pt_auth_dir_login(f->dir, name, strlen(name), secret, strlen(secret), now, id);
}

static unsigned allowed(struct dir_fixture *f, const struct pt_identity *id, const char *repo,
                        int64_t now)
{
    return pt_auth_dir_allowed(f->dir, id, repo, strlen(repo), now);
}

static void test_empty(void **state)
{
    struct dir_fixture *f = *state;
    struct pt_identity id;
    assert_int_equal(pt_auth_dir_has_users(f->dir), 0);
    assert_int_equal(pt_auth_dir_anonymous_any(f->dir), 0);
    assert_int_equal(login(f, "alice", PT_TEST_PASSWORD, NOW, &id), PT_E_UNAUTHORIZED);
    struct pt_identity anon = {.kind = PT_IDENTITY_ANONYMOUS};
    assert_int_equal(allowed(f, &anon, "public/x", NOW), 0);
    struct pt_auth_user_info *users;
    size_t n = 99;
    assert_int_equal(pt_auth_dir_users(f->dir, &users, &n), 0);
    assert_int_equal(n, 0);
    assert_null(users);
}

static void test_login(void **state)
{
    struct dir_fixture *f = *state;
    populate(f);
    struct pt_identity id;
    assert_int_equal(pt_auth_dir_has_users(f->dir), 1);

    assert_int_equal(login(f, "alice", PT_TEST_PASSWORD, NOW, &id), 0);
    assert_int_equal(id.kind, PT_IDENTITY_USER);
    assert_string_equal(id.name, "alice");
    assert_int_equal(login(f, "alice", "hunter3", NOW, &id), PT_E_UNAUTHORIZED);
    assert_int_equal(login(f, "nobody", PT_TEST_PASSWORD, NOW, &id), PT_E_UNAUTHORIZED);
    assert_int_equal(login(f, "Alice", PT_TEST_PASSWORD, NOW, &id), PT_E_UNAUTHORIZED);
    assert_int_equal(login(f, "alice", "", NOW, &id), PT_E_UNAUTHORIZED);
    assert_int_equal(pt_auth_dir_login(f->dir, "alice", 5, "hunter2\0", 8, NOW, &id),
                     PT_E_UNAUTHORIZED);

    /* tokens: id + secret, until they expire */
    assert_int_equal(login(f, "ci", f->secret, NOW, &id), 0);
    assert_int_equal(id.kind, PT_IDENTITY_TOKEN);
    assert_string_equal(id.name, "ci");
    assert_int_equal(login(f, "ci", f->secret, NOW + 10000, &id), PT_E_UNAUTHORIZED);
    char wrong[PT_SECRET_MAX];
    memcpy(wrong, f->secret, sizeof(wrong));
    wrong[5] = wrong[5] == 'A' ? 'B' : 'A';
    assert_int_equal(login(f, "ci", wrong, NOW, &id), PT_E_UNAUTHORIZED);
    /* a token's secret is not a user's password, and the other way round */
    assert_int_equal(login(f, "alice", f->secret, NOW, &id), PT_E_UNAUTHORIZED);
    assert_int_equal(login(f, "ci", PT_TEST_PASSWORD, NOW, &id), PT_E_UNAUTHORIZED);
}

static void test_cache(void **state)
{
    struct dir_fixture *f = *state;
    populate(f);
    struct pt_identity id;

    assert_int_equal(login(f, "alice", PT_TEST_PASSWORD, NOW, &id), 0);
    assert_int_equal(pt_auth_dir_cache_hits(f->dir), 0);
    assert_int_equal(pt_auth_dir_verifications(f->dir), 1);
    /* the same credentials within 60 s: a hit, no verification */
    assert_int_equal(login(f, "alice", PT_TEST_PASSWORD, NOW + 59999, &id), 0);
    assert_string_equal(id.name, "alice");
    assert_int_equal(pt_auth_dir_cache_hits(f->dir), 1);
    assert_int_equal(pt_auth_dir_verifications(f->dir), 1);
    /* another password is checked, and failures are never remembered */
    for (int i = 0; i < 2; i++)
        assert_int_equal(login(f, "alice", "wrong", NOW, &id), PT_E_UNAUTHORIZED);
    assert_int_equal(pt_auth_dir_verifications(f->dir), 3);
    assert_int_equal(pt_auth_dir_cache_hits(f->dir), 1);
    /* after 60 s: verified again (and remembered again) */
    assert_int_equal(login(f, "alice", PT_TEST_PASSWORD, NOW + 60000, &id), 0);
    assert_int_equal(pt_auth_dir_verifications(f->dir), 4);
    assert_int_equal(login(f, "alice", PT_TEST_PASSWORD, NOW + 60001, &id), 0);
    assert_int_equal(pt_auth_dir_cache_hits(f->dir), 2);

    /* tokens are remembered too, but a hit still honours the expiry */
    assert_int_equal(login(f, "ci", f->secret, NOW + 9000, &id), 0);
    assert_int_equal(login(f, "ci", f->secret, NOW + 9500, &id), 0);
    assert_int_equal(pt_auth_dir_cache_hits(f->dir), 3);
    assert_int_equal(login(f, "ci", f->secret, NOW + 10000, &id), PT_E_UNAUTHORIZED);

    /* any change of the records drops every remembered login */
    uint64_t v = pt_auth_dir_verifications(f->dir);
    struct pt_command_builder b;
    pt_ff_builder(&b, NOW);
    assert_int_equal(pt_command_add_put_anonymous(&b, "docs"), 0);
    assert_int_equal(pt_ff_apply(f->ff, &b), 0);
    assert_int_equal(login(f, "alice", PT_TEST_PASSWORD, NOW + 60002, &id), 0);
    assert_int_equal(pt_auth_dir_verifications(f->dir), v + 1);

    /* a changed password: the old one stops working at once */
    char h[PT_PASSWORD_HASH_MAX];
    assert_int_equal(pt_password_hash("new-password", 12, h, sizeof(h)), 0);
    pt_ff_builder(&b, NOW);
    assert_int_equal(pt_command_add_put_user(&b, "alice", h, alice_grants, 3, 0, 0), 0);
    assert_int_equal(pt_ff_apply(f->ff, &b), 0);
    assert_int_equal(login(f, "alice", PT_TEST_PASSWORD, NOW + 60003, &id), PT_E_UNAUTHORIZED);
    assert_int_equal(login(f, "alice", "new-password", NOW + 60003, &id), 0);
}

static void test_allowed(void **state)
{
    struct dir_fixture *f = *state;
    populate(f);
    struct pt_identity alice = {.kind = PT_IDENTITY_USER, .name = "alice"};
    struct pt_identity root = {.kind = PT_IDENTITY_USER, .name = "root"};
    struct pt_identity ci = {.kind = PT_IDENTITY_TOKEN, .name = "ci"};
    struct pt_identity anon = {.kind = PT_IDENTITY_ANONYMOUS};
    struct pt_identity ghost = {.kind = PT_IDENTITY_USER, .name = "ghost"};

    assert_int_equal(allowed(f, &alice, "team/app", NOW), PT_ACTION_PULL | PT_ACTION_PUSH);
    assert_int_equal(allowed(f, &alice, "team/prod-db", NOW),
                     PT_ACTION_PULL | PT_ACTION_PUSH | PT_ACTION_DELETE);
    assert_int_equal(allowed(f, &alice, "team", NOW), PT_ACTION_PULL | PT_ACTION_PUSH);
    assert_int_equal(allowed(f, &alice, "top", NOW), PT_ACTION_PULL);
    assert_int_equal(allowed(f, &alice, "other/x", NOW), 0);
    assert_int_equal(allowed(f, &alice, "", NOW), 0);
    assert_int_equal(allowed(f, &root, "any/where/at/all", NOW), PT_ACTIONS_ALL);
    assert_int_equal(allowed(f, &ci, "ci/build", NOW), PT_ACTION_PULL | PT_ACTION_PUSH);
    assert_int_equal(allowed(f, &ci, "ci/build", NOW + 10000), 0);
    assert_int_equal(allowed(f, &ci, "team/app", NOW), 0);
    assert_int_equal(allowed(f, &anon, "public/a/b", NOW), PT_ACTION_PULL);
    assert_int_equal(allowed(f, &anon, "team/app", NOW), 0);
    assert_int_equal(allowed(f, &ghost, "team/app", NOW), 0);
    assert_int_equal(pt_auth_dir_anonymous_any(f->dir), 1);

    assert_int_equal(pt_auth_dir_is_admin(f->dir, &root, NOW), 1);
    assert_int_equal(pt_auth_dir_is_admin(f->dir, &alice, NOW), 0);
    assert_int_equal(pt_auth_dir_is_admin(f->dir, &anon, NOW), 0);
    assert_int_equal(pt_auth_dir_active(f->dir, &alice, NOW), 1);
    assert_int_equal(pt_auth_dir_active(f->dir, &anon, NOW), 1);
    assert_int_equal(pt_auth_dir_active(f->dir, &ghost, NOW), 0);
    assert_int_equal(pt_auth_dir_active(f->dir, &ci, NOW + 9999), 1);
    assert_int_equal(pt_auth_dir_active(f->dir, &ci, NOW + 10000), 0);

    /* disabling and removing take effect on the next call */
    struct pt_command_builder b;
    pt_ff_builder(&b, NOW);
    assert_int_equal(
        pt_command_add_put_user(&b, "root", PT_TEST_PASSWORD_HASH, admin_grants, 1, 1, 0), 0);
    assert_int_equal(pt_command_add_delete_user(&b, "alice"), 0);
    assert_int_equal(pt_command_add_delete_anonymous(&b, "public/**"), 0);
    assert_int_equal(pt_ff_apply(f->ff, &b), 0);
    assert_int_equal(allowed(f, &root, "x", NOW), 0);
    assert_int_equal(pt_auth_dir_is_admin(f->dir, &root, NOW), 0);
    assert_int_equal(pt_auth_dir_active(f->dir, &root, NOW), 0);
    assert_int_equal(allowed(f, &alice, "team/app", NOW), 0);
    assert_int_equal(allowed(f, &anon, "public/a", NOW), 0);
    assert_int_equal(pt_auth_dir_anonymous_any(f->dir), 0);
    struct pt_identity id;
    assert_int_equal(login(f, "root", PT_TEST_PASSWORD, NOW, &id), PT_E_UNAUTHORIZED);
}

static void test_keys_and_revocations(void **state)
{
    struct dir_fixture *f = *state;
    unsigned char der[512], out[512];
    size_t len = sizeof(der);
    pt_test_p256_der(der, &len);
    struct pt_command_builder b;
    pt_ff_builder(&b, NOW);
    assert_int_equal(pt_command_add_put_signing_key(&b, "k1", "us-east", der, len), 0);
    assert_int_equal(pt_command_add_revoke_jwt(&b, "jti-1", NOW + 1000), 0);
    assert_int_equal(pt_ff_apply(f->ff, &b), 0);

    size_t n = sizeof(out);
    assert_int_equal(pt_auth_dir_signing_key(f->dir, "k1", NOW, out, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(out, der, len);
    n = len - 1;
    assert_int_equal(pt_auth_dir_signing_key(f->dir, "k1", NOW, out, &n), PT_E_TOO_LARGE);
    n = sizeof(out);
    assert_int_equal(pt_auth_dir_signing_key(f->dir, "k2", NOW, out, &n), PT_E_NOT_FOUND);
    assert_int_equal(pt_auth_dir_jwt_revoked(f->dir, "jti-1"), 1);
    assert_int_equal(pt_auth_dir_jwt_revoked(f->dir, "jti-2"), 0);

    pt_ff_builder(&b, NOW);
    assert_int_equal(pt_command_add_retire_signing_key(&b, "k1", NOW + 500), 0);
    assert_int_equal(pt_ff_apply(f->ff, &b), 0);
    n = sizeof(out);
    assert_int_equal(pt_auth_dir_signing_key(f->dir, "k1", NOW + 500, out, &n), 0);
    n = sizeof(out);
    assert_int_equal(pt_auth_dir_signing_key(f->dir, "k1", NOW + 501, out, &n), PT_E_DENIED);

    struct pt_auth_key_info *keys;
    assert_int_equal(pt_auth_dir_keys(f->dir, &keys, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(keys[0].kid, "k1");
    assert_string_equal(keys[0].region, "us-east");
    assert_int_equal(keys[0].not_after_ms, NOW + 500);
    free(keys);
}

static void test_listings(void **state)
{
    struct dir_fixture *f = *state;
    populate(f);
    struct pt_auth_user_info *users;
    struct pt_auth_token_info *tokens;
    char(*anon)[PT_AUTH_PATTERN_MAX + 1];
    size_t n;

    assert_int_equal(pt_auth_dir_users(f->dir, &users, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(users[0].name, "alice");
    assert_int_equal(users[0].n_grants, 3);
    assert_string_equal(users[0].grants[1].pattern, "team/prod-*");
    assert_int_equal(users[0].grants[1].actions, PT_ACTION_DELETE);
    assert_int_equal(users[0].created_ms, NOW);
    assert_string_equal(users[1].name, "root");
    free(users);

    assert_int_equal(pt_auth_dir_tokens(f->dir, &tokens, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(tokens[0].id, "ci");
    assert_string_equal(tokens[0].description, "pipeline");
    assert_string_equal(tokens[0].owner, "alice");
    assert_int_equal(tokens[0].expires_ms, NOW + 10000);
    free(tokens);

    assert_int_equal(pt_auth_dir_anonymous(f->dir, &anon, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(anon[0], "public/**");
    free(anon);

    struct pt_auth_user_info u;
    assert_int_equal(pt_auth_dir_user(f->dir, "root", &u), 0);
    assert_int_equal(u.grants[0].actions, PT_ACTION_ADMIN);
    assert_int_equal(pt_auth_dir_user(f->dir, "nobody", &u), PT_E_NOT_FOUND);
    struct pt_auth_token_info t;
    assert_int_equal(pt_auth_dir_token(f->dir, "ci", &t), 0);
    assert_int_equal(pt_auth_dir_token(f->dir, "cd", &t), PT_E_NOT_FOUND);
}

static void test_restore_reloads(void **state)
{
    struct dir_fixture *f = *state;
    populate(f);
    struct pt_identity id;
    assert_int_equal(login(f, "alice", PT_TEST_PASSWORD, NOW, &id), 0);

    /* the directory's store takes the (empty) state of the other store */
    void *buf;
    size_t n;
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot(f->ff->ms[1], &buf, &n, &index), 0);
    assert_int_equal(pt_metastore_restore(f->ff->ms[0], buf, n), 0);
    free(buf);
    assert_int_equal(pt_auth_dir_has_users(f->dir), 0);
    assert_int_equal(login(f, "alice", PT_TEST_PASSWORD, NOW, &id), PT_E_UNAUTHORIZED);
    assert_int_equal(pt_auth_dir_generation(f->dir), pt_metastore_auth_generation(f->ff->ms[0]));
}

/* Readers log in and ask for actions while the main thread changes the records: every answer
 * must be one of the states the writer went through. */
struct reader {
    struct dir_fixture *f;
    int rounds;
    int bad;
};

static void *read_loop(void *arg)
{
    struct reader *r = arg;
    struct pt_identity id, alice = {.kind = PT_IDENTITY_USER, .name = "alice"};
    for (int i = 0; i < r->rounds; i++) {
        int rv = login(r->f, "ci", r->f->secret, NOW, &id);
        if (rv != 0 && rv != PT_E_UNAUTHORIZED)
            r->bad++;
        unsigned a = allowed(r->f, &alice, "team/app", NOW);
        if (a != 0 && a != (PT_ACTION_PULL | PT_ACTION_PUSH))
            r->bad++;
        struct pt_auth_user_info *users;
        size_t n;
        if (pt_auth_dir_users(r->f->dir, &users, &n) != 0 || n > 2)
            r->bad++;
        free(users);
    }
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    struct dir_fixture *f = *state;
    populate(f);
    pthread_t t[2];
    struct reader r[2] = {{f, 200, 0}, {f, 200, 0}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, read_loop, &r[i]), 0);
    for (int i = 0; i < 20; i++) {
        struct pt_command_builder b;
        pt_ff_builder(&b, NOW);
        if (i % 2 == 0)
            assert_int_equal(pt_command_add_delete_user(&b, "alice"), 0);
        else
            assert_int_equal(
                pt_command_add_put_user(&b, "alice", PT_TEST_PASSWORD_HASH, alice_grants, 3, 0, 0),
                0);
        assert_int_equal(pt_ff_apply(f->ff, &b), 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(r[i].bad, 0);
    }
}

/* The cache alone: bounded, keyed, generation- and time-limited. */
static void test_login_cache(void **state)
{
    (void)state;
    struct pt_login_cache *c;
    assert_int_equal(pt_login_cache_create(4, 1000, &c), 0); /* one set of 4 */
    unsigned char mac[6][PT_LOGIN_MAC_LEN], other[PT_LOGIN_MAC_LEN];
    char name[8];
    struct pt_identity id, got;
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof(name), "u%d", i);
        assert_int_equal(pt_login_cache_mac(c, name, strlen(name), "pw", 2, mac[i]), 0);
    }
    /* the MAC binds the name to the secret: moving a byte across gives another MAC */
    assert_int_equal(pt_login_cache_mac(c, "u", 1, "0pw", 3, other), 0);
    assert_memory_not_equal(other, mac[0], PT_LOGIN_MAC_LEN);
    assert_int_equal(pt_login_cache_mac(c, "u0", 2, "pw", 2, other), 0);
    assert_memory_equal(other, mac[0], PT_LOGIN_MAC_LEN);

    for (int i = 0; i < 5; i++) {
        memset(&id, 0, sizeof(id));
        id.kind = PT_IDENTITY_USER;
        snprintf(id.name, sizeof(id.name), "u%d", i);
        pt_login_cache_put(c, mac[i], 7, NOW + i, &id);
    }
    /* five logins in four slots: the one closest to expiry (u0) made room */
    assert_int_equal(pt_login_cache_get(c, mac[0], 7, NOW + 5, &got), 0);
    for (int i = 1; i < 5; i++) {
        assert_int_equal(pt_login_cache_get(c, mac[i], 7, NOW + 5, &got), 1);
        assert_int_equal(got.kind, PT_IDENTITY_USER);
        snprintf(name, sizeof(name), "u%d", i);
        assert_string_equal(got.name, name);
    }
    assert_int_equal(pt_login_cache_get(c, mac[5], 7, NOW + 5, &got), 0);
    /* another generation, or past the expiry: dead */
    assert_int_equal(pt_login_cache_get(c, mac[1], 8, NOW + 5, &got), 0);
    assert_int_equal(pt_login_cache_get(c, mac[1], 7, NOW + 1 + 1000, &got), 0);
    assert_int_equal(pt_login_cache_get(c, mac[2], 7, NOW + 1 + 1000, &got), 1);
    pt_login_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_cache),
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_and_revocations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_reloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_readers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
