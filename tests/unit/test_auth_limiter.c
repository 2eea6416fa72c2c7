/*
 * test_auth_limiter.c - failed-login back-off: burst, window, doubling up to the cap, reset
 * on success and after a quiet period, independent keys, a fixed table under many keys, and
 * concurrent use. Time is passed in, so nothing here waits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "limiter.h"

#define T0 1700000000000LL

static void fail_n(struct pt_limiter *l, const char *key, int n, int64_t now)
{
    int i;

    for (i = 0; i < n; i++)
        pt_limiter_fail(l, key, now);
}

static void test_burst_and_backoff(void **state)
{
    struct pt_limiter *l;
    int64_t now = T0;
    unsigned expect_s[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300};
    size_t i;

    (void)state;
    assert_int_equal(pt_limiter_create(0, 1000, &l), PT_E_CONFIG);
    assert_int_equal(pt_limiter_create(5, 0, &l), PT_E_CONFIG);
    assert_int_equal(pt_limiter_create(5, 60000, &l), 0);

    fail_n(l, "u:alice", 4, now);
    assert_int_equal(pt_limiter_check(l, "u:alice", now), 0);
    pt_limiter_fail(l, "u:alice", now);
    assert_int_equal(pt_limiter_check(l, "u:alice", now), 1);
    assert_int_equal(pt_limiter_check(l, "u:alice", now + 999), 1);
    assert_int_equal(pt_limiter_check(l, "u:alice", now + 1000), 0);
    /* other keys are not affected */
    assert_int_equal(pt_limiter_check(l, "u:bob", now), 0);
    assert_int_equal(pt_limiter_check(l, "a:192.0.2.1", now), 0);

    /* each further block doubles the back-off, up to 5 minutes */
    for (i = 0; i < sizeof(expect_s) / sizeof(expect_s[0]); i++) {
        if (i > 0) {
            fail_n(l, "u:alice", 5, now);
        }
        assert_int_equal(pt_limiter_check(l, "u:alice", now), expect_s[i]);
        assert_int_equal(pt_limiter_check(l, "u:alice", now + 1), expect_s[i]);
        now += (int64_t)expect_s[i] * 1000;
        assert_int_equal(pt_limiter_check(l, "u:alice", now), 0);
    }

    /* a success forgets everything */
    fail_n(l, "u:alice", 5, now);
    assert_int_equal(pt_limiter_check(l, "u:alice", now), 300);
    pt_limiter_success(l, "u:alice");
    assert_int_equal(pt_limiter_check(l, "u:alice", now), 0);
    fail_n(l, "u:alice", 5, now);
    assert_int_equal(pt_limiter_check(l, "u:alice", now), 1);
    pt_limiter_success(l, "u:nobody"); /* unknown keys are fine */
    pt_limiter_free(l);
    pt_limiter_free(NULL);
}

static void test_window(void **state)
{
    struct pt_limiter *l;
    int64_t now = T0;
    int i;

    (void)state;
    assert_int_equal(pt_limiter_create(3, 10000, &l), 0);
    /* failures spread wider than the window never block */
    for (i = 0; i < 20; i++) {
        pt_limiter_fail(l, "k", now);
        assert_int_equal(pt_limiter_check(l, "k", now), 0);
        now += 5001;
    }
    /* three within the window do */
    fail_n(l, "k", 2, now);
    now += 20000;
    fail_n(l, "k", 2, now);
    assert_int_equal(pt_limiter_check(l, "k", now), 0);
    pt_limiter_fail(l, "k", now + 9999);
    assert_int_equal(pt_limiter_check(l, "k", now + 9999), 1);

    /* quiet for the window plus the back-off: the back-off starts again at 1 s */
    now += 9999;
    fail_n(l, "k", 3, now + 1000);
    assert_int_equal(pt_limiter_check(l, "k", now + 1000), 2);
    now += 1000 + 2000 + 10000 + 1;
    fail_n(l, "k", 3, now);
    assert_int_equal(pt_limiter_check(l, "k", now), 1);
    pt_limiter_free(l);
}

static void test_many_keys(void **state)
{
    struct pt_limiter *l;
    char key[32];
    int i, blocked = 0;

    (void)state;
    assert_int_equal(pt_limiter_create(1, 60000, &l), 0);
    /* a blocked key survives a flood of other failing keys that are not blocked yet... */
    pt_limiter_fail(l, "u:victim", T0);
    assert_int_equal(pt_limiter_check(l, "u:victim", T0), 1);
    pt_limiter_free(l);

    assert_int_equal(pt_limiter_create(2, 60000, &l), 0);
    fail_n(l, "u:target", 2, T0);
    for (i = 0; i < 100000; i++) {
        snprintf(key, sizeof(key), "a:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        pt_limiter_fail(l, key, T0 + 1);
    }
    assert_int_equal(pt_limiter_check(l, "u:target", T0 + 1), 1);
    /* ...and the table stays usable: new keys still block */
    for (i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "u:user%d", i);
        fail_n(l, key, 2, T0 + 2);
        blocked += pt_limiter_check(l, key, T0 + 2) > 0;
    }
    assert_int_equal(blocked, 1000);
    pt_limiter_free(l);
}

struct worker {
    struct pt_limiter *l;
    int id;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    char key[32];
    int i;

    for (i = 0; i < 50000; i++) {
        snprintf(key, sizeof(key), "k%d", (i + w->id) % 500);
        if (pt_limiter_check(w->l, key, T0 + i) == 0)
            pt_limiter_fail(w->l, key, T0 + i);
        if (i % 97 == 0)
            pt_limiter_success(w->l, key);
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct pt_limiter *l;
    struct worker w[4];
    pthread_t th[4];
    int i;

    (void)state;
    assert_int_equal(pt_limiter_create(3, 1000, &l), 0);
    for (i = 0; i < 4; i++) {
        w[i] = (struct worker){.l = l, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    /* the structure is intact: a fresh key blocks after the burst */
    fail_n(l, "fresh", 3, T0);
    assert_int_equal(pt_limiter_check(l, "fresh", T0), 1);
    pt_limiter_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_and_backoff),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
