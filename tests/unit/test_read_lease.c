/*
 * test_read_lease.c - the read lease's arithmetic (replication/read_lease.h): its length from
 * the election timeout, drift and margin; when it holds; renewal; confirmations out of order,
 * in a later term or epoch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "read_lease.h"

#define MS 1000000ull

static void test_end_from_election_timeout(void **state)
{
    (void)state;
    uint64_t t0 = 5000 * MS;
    /* 1000 ms, 10 % drift, 100 ms margin: 800 ms */
    assert_int_equal(pt_read_lease_end(t0, 1000, 100000, 100), t0 + 800 * MS);
    /* no drift, no margin: the whole election timeout, never more */
    assert_int_equal(pt_read_lease_end(t0, 1000, 0, 0), t0 + 1000 * MS);
    /* the project's settings stay strictly inside the election timeout */
    uint64_t end = pt_read_lease_end(t0, 1000, PT_READ_LEASE_DRIFT_PPM, PT_READ_LEASE_MARGIN_MS);
    assert_true(end > t0);
    assert_true(end < t0 + 1000 * MS);
    /* rounding is down: 999 ms * 0.9 = 899.1 -> 899, minus 100 */
    assert_int_equal(pt_read_lease_end(t0, 999, 100000, 100), t0 + 799 * MS);
}

static void test_end_without_lease(void **state)
{
    (void)state;
    /* the margin eats the whole shortened timeout: no lease */
    assert_int_equal(pt_read_lease_end(MS, 100, 100000, 90), 0);
    assert_int_equal(pt_read_lease_end(MS, 100, 100000, 200), 0);
    /* drift of 100 % or more: no lease */
    assert_int_equal(pt_read_lease_end(MS, 1000, 1000000, 0), 0);
    assert_int_equal(pt_read_lease_end(MS, 1000, 2000000, 0), 0);
    /* no election timeout */
    assert_int_equal(pt_read_lease_end(MS, 0, 0, 0), 0);
    /* a start at the end of time (a clock that failed) or at 0 grants nothing */
    assert_int_equal(pt_read_lease_end(UINT64_MAX, 1000, 100000, 100), 0);
    assert_int_equal(pt_read_lease_end(UINT64_MAX - 800 * MS + 1, 1000, 100000, 100), 0);
    assert_int_equal(pt_read_lease_end(UINT64_MAX - 800 * MS, 1000, 100000, 100), UINT64_MAX);
    assert_int_equal(pt_read_lease_end(0, 1000, 100000, 100), 0);
}

static void test_holds(void **state)
{
    (void)state;
    struct pt_read_lease l = {0};
    assert_false(pt_read_lease_holds(&l, 1, 0, 0)); /* never confirmed */
    pt_read_lease_confirm(&l, 1800 * MS, 7, 3);
    assert_true(pt_read_lease_holds(&l, 1000 * MS, 7, 3));
    assert_true(pt_read_lease_holds(&l, 1800 * MS - 1, 7, 3));
    assert_false(pt_read_lease_holds(&l, 1800 * MS, 7, 3)); /* ends at its end */
    assert_false(pt_read_lease_holds(&l, 5000 * MS, 7, 3)); /* a stalled loop */
    assert_false(pt_read_lease_holds(&l, 1000 * MS, 8, 3)); /* a new term */
    assert_false(pt_read_lease_holds(&l, 1000 * MS, 7, 4)); /* dropped (epoch) */
}

static void test_confirm_order(void **state)
{
    (void)state;
    struct pt_read_lease l = {0};
    pt_read_lease_confirm(&l, 2000 * MS, 7, 3);
    /* an older round completing later does not shorten it */
    pt_read_lease_confirm(&l, 1500 * MS, 7, 3);
    assert_int_equal(l.end_ns, 2000 * MS);
    pt_read_lease_confirm(&l, 2500 * MS, 7, 3);
    assert_int_equal(l.end_ns, 2500 * MS);
    /* a new term or epoch replaces it, even with an earlier end */
    pt_read_lease_confirm(&l, 2100 * MS, 8, 3);
    assert_int_equal(l.end_ns, 2100 * MS);
    assert_int_equal(l.term, 8);
    pt_read_lease_confirm(&l, 2050 * MS, 8, 4);
    assert_int_equal(l.end_ns, 2050 * MS);
    assert_int_equal(l.epoch, 4);
    /* a round that gave no lease changes nothing */
    pt_read_lease_confirm(&l, 0, 9, 9);
    assert_int_equal(l.term, 8);
    assert_int_equal(l.end_ns, 2050 * MS);
}

static void test_renewal(void **state)
{
    (void)state;
    struct pt_read_lease l = {0};
    uint64_t len = 800 * MS;
    assert_true(pt_read_lease_wants_renewal(&l, 1, len)); /* none */
    pt_read_lease_confirm(&l, 1800 * MS, 1, 0);
    assert_false(pt_read_lease_wants_renewal(&l, 1000 * MS, len)); /* 800 ms left */
    assert_false(pt_read_lease_wants_renewal(&l, 1400 * MS, len)); /* exactly half */
    assert_true(pt_read_lease_wants_renewal(&l, 1400 * MS + 1, len));
    assert_true(pt_read_lease_wants_renewal(&l, 1800 * MS, len)); /* over */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_end_from_election_timeout),
        cmocka_unit_test(test_end_without_lease),
        cmocka_unit_test(test_holds),
        cmocka_unit_test(test_confirm_order),
        cmocka_unit_test(test_renewal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
