/*
 * test_query.c - query string lookups and pagination parameters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "query.h"

static int get(const char *q, const char *key, size_t idx, char *out, size_t cap)
{
    return pt_query_get(q, strlen(q), key, idx, out, cap);
}

static void test_get_basic(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(get("n=10&last=abc", "n", 0, out, sizeof(out)), 2);
    assert_string_equal(out, "10");
    assert_int_equal(get("n=10&last=abc", "last", 0, out, sizeof(out)), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(get("n=10&last=abc", "x", 0, out, sizeof(out)), PT_E_NOT_FOUND);
    assert_int_equal(get("", "n", 0, out, sizeof(out)), PT_E_NOT_FOUND);
    /* keys match whole, not by prefix */
    assert_int_equal(get("nn=1&lastx=2", "n", 0, out, sizeof(out)), PT_E_NOT_FOUND);
    assert_int_equal(get("nn=1&lastx=2", "last", 0, out, sizeof(out)), PT_E_NOT_FOUND);
    assert_int_equal(get("n=1", "nn", 0, out, sizeof(out)), PT_E_NOT_FOUND);
    /* keys are case-sensitive */
    assert_int_equal(get("N=1", "n", 0, out, sizeof(out)), PT_E_NOT_FOUND);
}

static void test_get_empty_and_bare(void **state)
{
    char out[16];

    (void)state;
    memset(out, 'x', sizeof(out));
    assert_int_equal(get("digest=", "digest", 0, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    memset(out, 'x', sizeof(out));
    assert_int_equal(get("a&digest&b=1", "digest", 0, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(get("&&a=1&&", "a", 0, out, sizeof(out)), 1);
    assert_string_equal(out, "1");
    /* value may contain '=' */
    assert_int_equal(get("a=b=c", "a", 0, out, sizeof(out)), 3);
    assert_string_equal(out, "b=c");
}

static void test_get_occurrences(void **state)
{
    const char *q = "mount=x&from=a&mount=y&z=0&mount=z%21";
    char out[16];

    (void)state;
    assert_int_equal(get(q, "mount", 0, out, sizeof(out)), 1);
    assert_string_equal(out, "x");
    assert_int_equal(get(q, "mount", 1, out, sizeof(out)), 1);
    assert_string_equal(out, "y");
    assert_int_equal(get(q, "mount", 2, out, sizeof(out)), 2);
    assert_string_equal(out, "z!");
    assert_int_equal(get(q, "mount", 3, out, sizeof(out)), PT_E_NOT_FOUND);
    assert_int_equal(get(q, "from", 1, out, sizeof(out)), PT_E_NOT_FOUND);
}

static void test_get_decoding(void **state)
{
    char out[128];

    (void)state;
    assert_int_equal(get("digest=sha256%3Aabc", "digest", 0, out, sizeof(out)), 10);
    assert_string_equal(out, "sha256:abc");
    assert_int_equal(get("digest=sha256%3aabc", "digest", 0, out, sizeof(out)), 10);
    assert_string_equal(out, "sha256:abc");
    assert_int_equal(get("from=a%2Fb", "from", 0, out, sizeof(out)), 3);
    assert_string_equal(out, "a/b");
    assert_int_equal(get("t=a+b+c", "t", 0, out, sizeof(out)), 5);
    assert_string_equal(out, "a b c");
    assert_int_equal(get("t=%2B", "t", 0, out, sizeof(out)), 1);
    assert_string_equal(out, "+");
    assert_int_equal(get("t=%C3%A9", "t", 0, out, sizeof(out)), 2);
    assert_string_equal(out, "\xc3\xa9");
    /* encoded keys are decoded before comparison */
    assert_int_equal(get("artifact%54ype=x", "artifactType", 0, out, sizeof(out)), 1);
    assert_int_equal(get("a+b=1", "a b", 0, out, sizeof(out)), 1);
    /* a badly encoded key never matches but does not hide later pairs */
    assert_int_equal(get("n%zz=1&n=2", "n", 0, out, sizeof(out)), 1);
    assert_string_equal(out, "2");
    assert_int_equal(get("n%00=1", "n", 0, out, sizeof(out)), PT_E_NOT_FOUND);
}

static void test_get_bad_escapes(void **state)
{
    static const char *const bad[] = {
        "v=%", "v=%2", "v=%zz", "v=%2g", "v=%g2", "v=abc%", "v=a%-1", "v=%00", "v=a%00b",
    };
    char out[32];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (get(bad[i], "v", 0, out, sizeof(out)) != PT_E_TOO_LARGE)
            fail_msg("expected error for \"%s\"", bad[i]);
    }
    /* an escape cut by the end of the pair, not of the string */
    assert_int_equal(get("v=%2&w=1", "v", 0, out, sizeof(out)), PT_E_TOO_LARGE);
    assert_int_equal(get("v=%2&w=1", "w", 0, out, sizeof(out)), 1);
}

static void test_get_capacity(void **state)
{
    char out[8];

    (void)state;
    memset(out, 'x', sizeof(out));
    assert_int_equal(get("v=1234567", "v", 0, out, sizeof(out)), 7);
    assert_string_equal(out, "1234567");
    assert_int_equal(get("v=12345678", "v", 0, out, sizeof(out)), PT_E_TOO_LARGE);
    /* capacity counts decoded bytes */
    assert_int_equal(get("v=%31%32%33%34%35%36%37", "v", 0, out, sizeof(out)), 7);
    assert_string_equal(out, "1234567");
    assert_int_equal(get("v=", "v", 0, out, 1), 0);
    assert_string_equal(out, "");
    assert_int_equal(get("v=a", "v", 0, out, 1), PT_E_TOO_LARGE);
    assert_int_equal(get("v=", "v", 0, out, 0), PT_E_TOO_LARGE);
}

static void test_get_length_delimited(void **state)
{
    const char *q = "n=12#fragment";
    char out[16];

    (void)state;
    assert_int_equal(pt_query_get(q, 4, "n", 0, out, sizeof(out)), 2);
    assert_string_equal(out, "12");
    assert_int_equal(pt_query_get(q, 2, "n", 0, out, sizeof(out)), 0);
    assert_int_equal(pt_query_get(q, 1, "n", 0, out, sizeof(out)), 0);
    assert_int_equal(pt_query_get(NULL, 0, "n", 0, out, sizeof(out)), PT_E_NOT_FOUND);
}

static void test_get_query_limit(void **state)
{
    size_t len = PT_QUERY_MAX + 1;
    char *q = malloc(len);
    char out[8];

    (void)state;
    assert_non_null(q);
    memset(q, 'x', len);
    memcpy(q, "n=1&", 4);
    assert_int_equal(pt_query_get(q, PT_QUERY_MAX, "n", 0, out, sizeof(out)), 1);
    assert_int_equal(pt_query_get(q, len, "n", 0, out, sizeof(out)), PT_E_TOO_LARGE);
    free(q);
}

static int pag(const char *q, size_t *n, char *last, size_t cap)
{
    return pt_query_pagination(q, strlen(q), 100, 1000, n, last, cap);
}

static void test_pagination_defaults(void **state)
{
    size_t n = 7;
    char last[64] = "junk";

    (void)state;
    assert_int_equal(pag("", &n, last, sizeof(last)), 0);
    assert_int_equal(n, 100);
    assert_string_equal(last, "");
    assert_int_equal(pt_query_pagination(NULL, 0, 5, 10, &n, last, sizeof(last)), 0);
    assert_int_equal(n, 5);
    assert_int_equal(pag("other=1", &n, last, sizeof(last)), 0);
    assert_int_equal(n, 100);
}

static void test_pagination_values(void **state)
{
    size_t n = 0;
    char last[64];

    (void)state;
    assert_int_equal(pag("n=20&last=library%2Fubuntu", &n, last, sizeof(last)), 0);
    assert_int_equal(n, 20);
    assert_string_equal(last, "library/ubuntu");
    assert_int_equal(pag("last=v1.0&n=0", &n, last, sizeof(last)), 0);
    assert_int_equal(n, 0);
    assert_string_equal(last, "v1.0");
    assert_int_equal(pag("n=1000", &n, last, sizeof(last)), 0);
    assert_int_equal(n, 1000);
    assert_int_equal(pag("n=0000000007", &n, last, sizeof(last)), 0);
    assert_int_equal(n, 7);
    /* clamped */
    assert_int_equal(pag("n=1001", &n, last, sizeof(last)), 0);
    assert_int_equal(n, 1000);
    assert_int_equal(pag("n=9999999999", &n, last, sizeof(last)), 0);
    assert_int_equal(n, 1000);
    /* first occurrence wins */
    assert_int_equal(pag("n=3&n=x&last=a&last=b", &n, last, sizeof(last)), 0);
    assert_int_equal(n, 3);
    assert_string_equal(last, "a");
    /* an empty last is the same as none */
    assert_int_equal(pag("last=", &n, last, sizeof(last)), 0);
    assert_string_equal(last, "");
}

static void test_pagination_invalid(void **state)
{
    static const char *const bad[] = {
        "n=",   "n",      "n=-1",     "n=+1",          "n= 1",
        "n=1 ", "n=1.5",  "n=0x10",   "n=abc",         "n=1e3",
        "n=%",  "n=%31%", "n=1%00",   "n=12345678901", "n=99999999999999999999999",
        "n=+",  "n=1,2",  "last=%zz", "last=a%00",     "n=10&last=%",
    };
    size_t n = 42;
    char last[64];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (pag(bad[i], &n, last, sizeof(last)) != PT_E_PAGINATION_NUMBER_INVALID)
            fail_msg("expected PAGINATION_NUMBER_INVALID for \"%s\"", bad[i]);
    }
}

static void test_pagination_last_capacity(void **state)
{
    size_t n;
    char last[4];

    (void)state;
    assert_int_equal(pag("last=abc", &n, last, sizeof(last)), 0);
    assert_string_equal(last, "abc");
    assert_int_equal(pag("last=abcd", &n, last, sizeof(last)), PT_E_PAGINATION_NUMBER_INVALID);
    assert_int_equal(pag("", &n, last, 0), PT_E_PAGINATION_NUMBER_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_basic),
        cmocka_unit_test(test_get_empty_and_bare),
        cmocka_unit_test(test_get_occurrences),
        cmocka_unit_test(test_get_decoding),
        cmocka_unit_test(test_get_bad_escapes),
        cmocka_unit_test(test_get_capacity),
        cmocka_unit_test(test_get_length_delimited),
        cmocka_unit_test(test_get_query_limit),
        cmocka_unit_test(test_pagination_defaults),
        cmocka_unit_test(test_pagination_values),
        cmocka_unit_test(test_pagination_invalid),
        cmocka_unit_test(test_pagination_last_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
