/*
 * test_throttle.c - request throttling (node/http/throttle.c): the token bucket's refill,
 * burst, debt and Retry-After arithmetic, the tier presets, and the region's table over
 * replicated settings (no record: nothing counted; a record per identity, else "default";
 * settings changes seen through the generation; anonymous requests counted per address; the
 * number of buckets bounded by evicting the least recently used). Time is passed in, never
 * read.
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
#include "metastore.h"
#include "support/ff_fixture.h"
#include "throttle.h"

static void test_bucket_math(void **state)
{
    (void)state;
    struct pt_bucket b = {0};
    /* 60 per minute: one a second, a minute's burst */
    for (int i = 0; i < 60; i++)
        assert_int_equal(pt_bucket_take(&b, 1.0, 60, 1, 1, 1000), 0);
    assert_int_equal(pt_bucket_take(&b, 1.0, 60, 1, 1, 1000), 1);
    /* half a second later: still one second's wait (rounded up) */
    assert_int_equal(pt_bucket_take(&b, 1.0, 60, 1, 1, 1500), 1);
    /* after the Retry-After: a token */
    assert_int_equal(pt_bucket_take(&b, 1.0, 60, 1, 1, 2000), 0);
    /* a long idle time refills to the burst, no further */
    assert_int_equal(pt_bucket_take(&b, 1.0, 60, 1, 1, 10000000), 0);
    assert_true(b.tokens <= 59.0 + 1e-9);
    /* slow rates: 6 a minute, the wait is 10 s */
    struct pt_bucket s = {0};
    for (int i = 0; i < 6; i++)
        assert_int_equal(pt_bucket_take(&s, 0.1, 6, 1, 1, 5), 0);
    assert_int_equal(pt_bucket_take(&s, 0.1, 6, 1, 1, 5), 10);
    /* bandwidth: admitted while not in debt, then in debt by the transfer's size */
    struct pt_bucket w = {0};
    assert_int_equal(pt_bucket_take(&w, 1000, 1000, 0, 5000, 1), 0);
    assert_true(w.tokens < -3999.0 && w.tokens > -4001.0);
    assert_int_equal(pt_bucket_take(&w, 1000, 1000, 0, 10, 1), 4);
    assert_int_equal(pt_bucket_take(&w, 1000, 1000, 0, 10, 4001), 0);
    /* time going backwards refills nothing */
    struct pt_bucket t = {0};
    assert_int_equal(pt_bucket_take(&t, 1.0, 1, 1, 1, 5000), 0);
    assert_int_equal(pt_bucket_take(&t, 1.0, 1, 1, 1, 1000), 1);
}

static void test_tiers(void **state)
{
    (void)state;
    struct pt_throttle_rec r;
    pt_throttle_tier_limits(PT_THROTTLE_TIER_STANDARD, &r);
    assert_int_equal(r.reads_per_minute, 3000);
    assert_int_equal(r.writes_per_minute, 500);
    assert_int_equal(r.read_bytes_per_second, 60000000);
    assert_int_equal(r.write_bytes_per_second, 20000000);
    pt_throttle_tier_limits(PT_THROTTLE_TIER_BASIC, &r);
    assert_int_equal(r.writes_per_minute, 100);
    pt_throttle_tier_limits(PT_THROTTLE_TIER_PREMIUM, &r);
    assert_int_equal(r.reads_per_minute, 10000);
    pt_throttle_tier_limits(PT_THROTTLE_TIER_CUSTOM, &r);
    assert_int_equal(r.reads_per_minute + r.writes_per_minute, 0);
    assert_int_equal(pt_throttle_tier_parse("premium"), PT_THROTTLE_TIER_PREMIUM);
    assert_int_equal(pt_throttle_tier_parse("gold"), -1);
    assert_string_equal(pt_throttle_tier_name(PT_THROTTLE_TIER_BASIC), "basic");
}

static void put(struct pt_ff_fixture *f, const char *subject, uint32_t reads, uint32_t writes,
                uint64_t read_bps)
{
    struct pt_command_throttle t = {.subject = subject,
                                    .reads_per_minute = reads,
                                    .writes_per_minute = writes,
                                    .read_bytes_per_second = read_bps};
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_put_throttle(&b, &t), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
}

static void test_table(void **state)
{
    struct pt_ff_fixture *f = *state;
    struct pt_throttle *t;
    assert_int_equal(pt_throttle_create(f->ms[0], &t), 0);
    /* nothing configured: nothing counted, no bucket */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(pt_throttle_admit(t, "addr:1.2.3.4", "anonymous", PT_THROTTLE_READ, 0, 1),
                         0);
    assert_int_equal(pt_throttle_buckets(t), 0);

    put(f, "default", 120, 0, 0);
    put(f, "user:ci", 0, 60, 0);
    /* default: 120 reads, then 429 for half a second -> 1 */
    for (int i = 0; i < 120; i++)
        assert_int_equal(pt_throttle_admit(t, "user:bob", "user:bob", PT_THROTTLE_READ, 0, 10), 0);
    assert_int_equal(pt_throttle_admit(t, "user:bob", "user:bob", PT_THROTTLE_READ, 0, 10), 1);
    /* writes of bob are not limited; ci's reads are not, its writes are */
    assert_int_equal(pt_throttle_admit(t, "user:bob", "user:bob", PT_THROTTLE_WRITE, 9, 10), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(pt_throttle_admit(t, "user:ci", "user:ci", PT_THROTTLE_READ, 0, 10), 0);
    for (int i = 0; i < 60; i++)
        assert_int_equal(pt_throttle_admit(t, "user:ci", "user:ci", PT_THROTTLE_WRITE, 0, 10), 0);
    assert_int_equal(pt_throttle_admit(t, "user:ci", "user:ci", PT_THROTTLE_WRITE, 0, 10), 1);
    /* anonymous clients: one bucket per address */
    for (int i = 0; i < 120; i++)
        assert_int_equal(pt_throttle_admit(t, "addr:a", "anonymous", PT_THROTTLE_READ, 0, 10), 0);
    assert_int_equal(pt_throttle_admit(t, "addr:a", "anonymous", PT_THROTTLE_READ, 0, 10), 1);
    assert_int_equal(pt_throttle_admit(t, "addr:b", "anonymous", PT_THROTTLE_READ, 0, 10), 0);

    /* a settings change is seen at once: ci's own record gone, the default applies */
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_delete_throttle(&b, "user:ci"), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    assert_int_equal(pt_throttle_admit(t, "user:ci", "user:ci", PT_THROTTLE_WRITE, 0, 10), 0);

    /* read bandwidth: a charge puts the bucket in debt, the next read waits for it */
    put(f, "user:dl", 0, 0, 1000);
    assert_int_equal(pt_throttle_admit(t, "user:dl", "user:dl", PT_THROTTLE_READ, 0, 10), 0);
    pt_throttle_charge(t, "user:dl", "user:dl", 3500, 10);
    assert_int_equal(pt_throttle_admit(t, "user:dl", "user:dl", PT_THROTTLE_READ, 0, 10), 3);
    assert_int_equal(pt_throttle_admit(t, "user:dl", "user:dl", PT_THROTTLE_READ, 0, 2510), 0);

    /* bounded: many addresses never hold more than the table's buckets */
    char key[32];
    for (int i = 0; i < PT_THROTTLE_SHARDS * PT_THROTTLE_SHARD_BUCKETS + 5000; i++) {
        snprintf(key, sizeof(key), "addr:%d", i);
        pt_throttle_admit(t, key, "anonymous", PT_THROTTLE_READ, 0, 20);
    }
    assert_true(pt_throttle_buckets(t) <= PT_THROTTLE_SHARDS * PT_THROTTLE_SHARD_BUCKETS);
    /* the most recent keys are still there: the last address's bucket holds its count */
    for (int i = 0; i < 119; i++)
        assert_int_equal(pt_throttle_admit(t, key, "anonymous", PT_THROTTLE_READ, 0, 20), 0);
    assert_int_equal(pt_throttle_admit(t, key, "anonymous", PT_THROTTLE_READ, 0, 20), 1);
    pt_throttle_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_math),
        cmocka_unit_test(test_tiers),
        cmocka_unit_test_setup_teardown(test_table, pt_ff_setup, pt_ff_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
