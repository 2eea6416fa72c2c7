/*
 * test_range.c - Content-Range (uploads) and Range (downloads) parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "err.h"
#include "range.h"

static int cr(const char *s, uint64_t *a, uint64_t *b)
{
    return pt_content_range_parse(s, strlen(s), a, b);
}

static int rg(const char *s, uint64_t size, uint64_t *a, uint64_t *b)
{
    return pt_range_parse(s, strlen(s), size, a, b);
}

static void test_content_range_valid(void **state)
{
    uint64_t a = 1, b = 1;

    (void)state;
    assert_int_equal(cr("0-0", &a, &b), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 0);
    assert_int_equal(cr("0-1023", &a, &b), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 1023);
    assert_int_equal(cr("1024-2047", &a, &b), 0);
    assert_int_equal(a, 1024);
    assert_int_equal(b, 2047);
    assert_int_equal(cr("bytes 5-9/10", &a, &b), 0);
    assert_int_equal(a, 5);
    assert_int_equal(b, 9);
    assert_int_equal(cr("bytes 5-9/*", &a, &b), 0);
    assert_int_equal(a, 5);
    assert_int_equal(b, 9);
    assert_int_equal(cr("Bytes 1-2/3", &a, &b), 0);
    assert_int_equal(cr("bytes=7-7", &a, &b), 0);
    assert_int_equal(a, 7);
    assert_int_equal(b, 7);
    assert_int_equal(cr("18446744073709551614-18446744073709551615", &a, &b), 0);
    assert_true(a == UINT64_MAX - 1);
    assert_true(b == UINT64_MAX);
    assert_int_equal(cr("007-010", &a, &b), 0);
    assert_int_equal(a, 7);
    assert_int_equal(b, 10);
}

static void test_content_range_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "-",
        "0",
        "0-",
        "-5",
        "5-4",
        "1-0",
        " 0-1",
        "0-1 ",
        "0 -1",
        "0- 1",
        "+0-1",
        "0-+1",
        "-0-1",
        "0x10-0x20",
        "a-b",
        "1.5-2",
        "0-1,2-3",
        "0-1/10",
        "bytes 0-1",
        "bytes 0-1/",
        "bytes 0-1/1",
        "bytes 0-9/9",
        "bytes 0-1/x",
        "bytes 0-1/**",
        "bytes 0-1/10x",
        "bytes=0-1/10",
        "bytes=0-",
        "bytes=-1",
        "bytes  0-1/2",
        "bytes=",
        "bits 0-1/2",
        "items=0-1",
        "18446744073709551616-18446744073709551617",
        "0-18446744073709551616",
        "0-99999999999999999999999999",
        "bytes 0-1/18446744073709551616",
        "0\x00-1",
    };
    uint64_t a = 77, b = 88;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cr(bad[i], &a, &b) != PT_E_RANGE_INVALID)
            fail_msg("expected RANGE_INVALID for \"%s\"", bad[i]);
    }
    assert_int_equal(a, 77);
    assert_int_equal(b, 88);
    assert_int_equal(pt_content_range_parse("0\0-1", 4, &a, &b), PT_E_RANGE_INVALID);
    assert_int_equal(pt_content_range_parse(NULL, 0, &a, &b), PT_E_RANGE_INVALID);
}

static void test_content_range_limits(void **state)
{
    char buf[PT_RANGE_HEADER_MAX + 8];
    uint64_t a, b;

    (void)state;
    /* leading zeros up to the header limit are read, beyond it refused */
    memset(buf, '0', sizeof(buf));
    buf[PT_RANGE_HEADER_MAX - 2] = '-';
    buf[PT_RANGE_HEADER_MAX - 1] = '5';
    assert_int_equal(pt_content_range_parse(buf, PT_RANGE_HEADER_MAX, &a, &b), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 5);
    memset(buf, '0', sizeof(buf));
    buf[PT_RANGE_HEADER_MAX - 1] = '-';
    buf[PT_RANGE_HEADER_MAX] = '5';
    assert_int_equal(pt_content_range_parse(buf, PT_RANGE_HEADER_MAX + 1, &a, &b),
                     PT_E_RANGE_INVALID);
    /* only s[0..len) is read */
    assert_int_equal(pt_content_range_parse("0-19", 3, &a, &b), 0);
    assert_int_equal(b, 1);
}

static void test_range_valid(void **state)
{
    uint64_t a = 0, b = 0;

    (void)state;
    assert_int_equal(rg("bytes=0-9", 100, &a, &b), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 9);
    assert_int_equal(rg("bytes=10-", 100, &a, &b), 0);
    assert_int_equal(a, 10);
    assert_int_equal(b, 99);
    assert_int_equal(rg("bytes=-10", 100, &a, &b), 0);
    assert_int_equal(a, 90);
    assert_int_equal(b, 99);
    assert_int_equal(rg("bytes=99-99", 100, &a, &b), 0);
    assert_int_equal(a, 99);
    assert_int_equal(b, 99);
    assert_int_equal(rg("BYTES=1-2", 100, &a, &b), 0);
    assert_int_equal(a, 1);
    assert_int_equal(b, 2);
    assert_int_equal(rg("bytes=0-0", 1, &a, &b), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 0);
}

static void test_range_clamping(void **state)
{
    uint64_t a = 0, b = 0;

    (void)state;
    /* last-pos past the end */
    assert_int_equal(rg("bytes=50-1000", 100, &a, &b), 0);
    assert_int_equal(a, 50);
    assert_int_equal(b, 99);
    /* suffix longer than the blob */
    assert_int_equal(rg("bytes=-1000", 100, &a, &b), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 99);
    assert_int_equal(rg("bytes=-100", 100, &a, &b), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 99);
    /* overflowing numbers saturate */
    assert_int_equal(rg("bytes=0-99999999999999999999999999", 100, &a, &b), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 99);
    assert_int_equal(rg("bytes=-99999999999999999999999999", 100, &a, &b), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 99);
    assert_int_equal(rg("bytes=0-18446744073709551615", UINT64_MAX, &a, &b), 0);
    assert_true(b == UINT64_MAX - 1);
}

static void test_range_unsatisfiable(void **state)
{
    uint64_t a = 5, b = 6;

    (void)state;
    assert_int_equal(rg("bytes=100-", 100, &a, &b), PT_E_RANGE_INVALID);
    assert_int_equal(rg("bytes=100-200", 100, &a, &b), PT_E_RANGE_INVALID);
    assert_int_equal(rg("bytes=1000-", 100, &a, &b), PT_E_RANGE_INVALID);
    assert_int_equal(rg("bytes=-0", 100, &a, &b), PT_E_RANGE_INVALID);
    assert_int_equal(rg("bytes=0-0", 0, &a, &b), PT_E_RANGE_INVALID);
    assert_int_equal(rg("bytes=0-", 0, &a, &b), PT_E_RANGE_INVALID);
    assert_int_equal(rg("bytes=-5", 0, &a, &b), PT_E_RANGE_INVALID);
    assert_int_equal(rg("bytes=99999999999999999999999-", 100, &a, &b), PT_E_RANGE_INVALID);
    assert_int_equal(rg("bytes=99999999999999999999999-99999999999999999999999", 100, &a, &b),
                     PT_E_RANGE_INVALID);
    assert_int_equal(a, 5);
    assert_int_equal(b, 6);
}

static void test_range_ignored(void **state)
{
    static const char *const ignored[] = {
        "",
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=5",
        "bytes=a-b",
        "bytes=1-0",
        "bytes=10-5",
        "bytes=0-1,5-6",
        "bytes=0-1, 5-6",
        "bytes=0-1,",
        "bytes=,0-1",
        "bytes= 0-1",
        "bytes=0 -1",
        "bytes=0-1 ",
        "bytes =0-1",
        "bytes:0-1",
        "bytes 0-1",
        "0-1",
        "items=0-1",
        "bits=0-1",
        "bytes=+0-1",
        "bytes=0--1",
        "bytes=--1",
        "bytes=0x0-0x1",
        "bytes=1.0-2",
        "bytes=0-1/100",
        "bytes=-1-2",
    };
    uint64_t a = 5, b = 6;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        if (rg(ignored[i], 100, &a, &b) != 1)
            fail_msg("expected 1 (ignore) for \"%s\"", ignored[i]);
    }
    assert_int_equal(a, 5);
    assert_int_equal(b, 6);
    assert_int_equal(pt_range_parse("bytes=0\0-1", 10, 100, &a, &b), 1);
    assert_int_equal(pt_range_parse(NULL, 0, 100, &a, &b), 1);
}

static void test_range_limits(void **state)
{
    char buf[PT_RANGE_HEADER_MAX + 1];
    uint64_t a, b;

    (void)state;
    memset(buf, '0', sizeof(buf));
    memcpy(buf, "bytes=", 6);
    buf[PT_RANGE_HEADER_MAX - 1] = '-';
    assert_int_equal(pt_range_parse(buf, PT_RANGE_HEADER_MAX, 10, &a, &b), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 9);
    buf[PT_RANGE_HEADER_MAX - 1] = '0';
    buf[PT_RANGE_HEADER_MAX] = '-';
    assert_int_equal(pt_range_parse(buf, PT_RANGE_HEADER_MAX + 1, 10, &a, &b), 1);
    /* only s[0..len) is read */
    assert_int_equal(pt_range_parse("bytes=0-1,2-3", 9, 10, &a, &b), 0);
    assert_int_equal(b, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_range_valid),  cmocka_unit_test(test_content_range_invalid),
        cmocka_unit_test(test_content_range_limits), cmocka_unit_test(test_range_valid),
        cmocka_unit_test(test_range_clamping),       cmocka_unit_test(test_range_unsatisfiable),
        cmocka_unit_test(test_range_ignored),        cmocka_unit_test(test_range_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
