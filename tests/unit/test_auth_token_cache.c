/*
 * test_auth_token_cache.c - the verified-token cache: hits, generation and expiry misses,
 * bounded size with eviction of the oldest, and concurrent use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "token_cache.h"

static void claims_for(struct pt_jwt_claims *c, const char *sub, size_t n_access, int64_t exp)
{
    size_t i;

    memset(c, 0, sizeof(*c));
    snprintf(c->sub, sizeof(c->sub), "%s", sub);
    c->sub_kind = PT_JWT_SUB_USER;
    strcpy(c->aud, "registry");
    c->exp = exp;
    c->n_access = n_access;
    for (i = 0; i < n_access; i++) {
        snprintf(c->access[i].name, sizeof(c->access[i].name), "repo%zu", i);
        c->access[i].actions = PT_ACTION_PULL;
    }
}

static int get(struct pt_token_cache *c, const char *tok, int64_t now, uint64_t gen,
               struct pt_jwt_claims *out)
{
    return pt_token_cache_get(c, tok, strlen(tok), now, gen, out);
}

static void put(struct pt_token_cache *c, const char *tok, uint64_t gen,
                const struct pt_jwt_claims *cl)
{
    pt_token_cache_put(c, tok, strlen(tok), gen, cl);
}

static void test_hit_and_miss(void **state)
{
    struct pt_token_cache *c;
    struct pt_jwt_claims cl, out;

    (void)state;
    assert_int_equal(pt_token_cache_create(0, &c), PT_E_CONFIG);
    assert_int_equal(pt_token_cache_create(1024, &c), 0);
    claims_for(&cl, "alice", 3, 1000);
    assert_int_equal(get(c, "tok-a", 900, 1, &out), 0);
    put(c, "tok-a", 1, &cl);
    assert_int_equal(pt_token_cache_size(c), 1);

    memset(&out, 0xee, sizeof(out));
    assert_int_equal(get(c, "tok-a", 900, 1, &out), 1);
    assert_string_equal(out.sub, "alice");
    assert_int_equal(out.n_access, 3);
    assert_string_equal(out.access[2].name, "repo2");
    assert_int_equal(out.access[2].actions, PT_ACTION_PULL);
    assert_int_equal(out.access[3].actions, 0xeeeeeeeeu); /* untouched beyond n_access */

    /* other tokens, a prefix of it, or the same bytes with another length miss */
    assert_int_equal(get(c, "tok-b", 900, 1, &out), 0);
    assert_int_equal(pt_token_cache_get(c, "tok-a", 4, 900, 1, &out), 0);

    /* the same token again replaces the entry */
    claims_for(&cl, "bob", 0, 2000);
    put(c, "tok-a", 1, &cl);
    assert_int_equal(pt_token_cache_size(c), 1);
    assert_int_equal(get(c, "tok-a", 900, 1, &out), 1);
    assert_string_equal(out.sub, "bob");
    assert_int_equal(out.n_access, 0);

    pt_token_cache_clear(c);
    assert_int_equal(pt_token_cache_size(c), 0);
    assert_int_equal(get(c, "tok-a", 900, 1, &out), 0);
    pt_token_cache_free(c);
    pt_token_cache_free(NULL);
}

static void test_generation_and_expiry(void **state)
{
    struct pt_token_cache *c;
    struct pt_jwt_claims cl, out;

    (void)state;
    assert_int_equal(pt_token_cache_create(1024, &c), 0);
    claims_for(&cl, "alice", 1, 1000);
    put(c, "tok", 7, &cl);

    /* served up to exp + leeway, the window pt_jwt_verify accepts */
    assert_int_equal(get(c, "tok", 1000 + PT_JWT_LEEWAY_S, 7, &out), 1);
    /* another generation: a miss, and the entry is gone even for the old generation */
    assert_int_equal(get(c, "tok", 900, 8, &out), 0);
    assert_int_equal(pt_token_cache_size(c), 0);
    assert_int_equal(get(c, "tok", 900, 7, &out), 0);

    put(c, "tok", 8, &cl);
    assert_int_equal(get(c, "tok", 1000 + PT_JWT_LEEWAY_S + 1, 8, &out), 0);
    assert_int_equal(pt_token_cache_size(c), 0);

    /* an exp near the end of time does not overflow */
    claims_for(&cl, "alice", 0, INT64_MAX);
    put(c, "forever", 1, &cl);
    assert_int_equal(get(c, "forever", INT64_MAX, 1, &out), 1);
    pt_token_cache_free(c);
}

static void test_bounded(void **state)
{
    struct pt_token_cache *c;
    struct pt_jwt_claims cl, out;
    char tok[32];
    size_t i, hits = 0;

    (void)state;
    /* 16 shards x 1 bucket x 8 ways */
    assert_int_equal(pt_token_cache_create(128, &c), 0);
    claims_for(&cl, "alice", 16, 1000);
    for (i = 0; i < 5000; i++) {
        snprintf(tok, sizeof(tok), "token-%zu", i);
        put(c, tok, 1, &cl);
        assert_true(pt_token_cache_size(c) <= 128);
    }
    assert_int_equal(pt_token_cache_size(c), 128);
    /* the newest entries survive: the last put of each bucket is always there */
    assert_int_equal(get(c, "token-4999", 900, 1, &out), 1);
    for (i = 0; i < 5000; i++) {
        snprintf(tok, sizeof(tok), "token-%zu", i);
        hits += (size_t)get(c, tok, 900, 1, &out);
    }
    assert_int_equal(hits, 128);
    /* the oldest are gone */
    for (i = 0; i < 100; i++) {
        snprintf(tok, sizeof(tok), "token-%zu", i);
        assert_int_equal(get(c, tok, 900, 1, &out), 0);
    }
    pt_token_cache_free(c);

    /* fewer than one bucket a shard still holds one bucket a shard */
    assert_int_equal(pt_token_cache_create(1, &c), 0);
    put(c, "x", 1, &cl);
    assert_int_equal(get(c, "x", 900, 1, &out), 1);
    pt_token_cache_free(c);
}

struct worker {
    struct pt_token_cache *c;
    int id;
    int bad;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct pt_jwt_claims cl, out;
    char tok[32], sub[16];
    int i;

    for (i = 0; i < 20000; i++) {
        int k = (i * 7 + w->id) % 300;
        snprintf(tok, sizeof(tok), "t%d", k);
        snprintf(sub, sizeof(sub), "u%d", k);
        if (pt_token_cache_get(w->c, tok, strlen(tok), 10, 1, &out)) {
            if (strcmp(out.sub, sub) != 0 || out.n_access != (size_t)(k % 4))
                w->bad++;
        } else {
            claims_for(&cl, sub, (size_t)(k % 4), 100);
            pt_token_cache_put(w->c, tok, strlen(tok), 1, &cl);
        }
        if (i % 5000 == 4999 && w->id == 0)
            pt_token_cache_clear(w->c);
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct pt_token_cache *c;
    struct worker w[4];
    pthread_t th[4];
    int i;

    (void)state;
    assert_int_equal(pt_token_cache_create(256, &c), 0);
    for (i = 0; i < 4; i++) {
        w[i] = (struct worker){.c = c, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    assert_true(pt_token_cache_size(c) <= 256);
    pt_token_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_and_miss),
        cmocka_unit_test(test_generation_and_expiry),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
