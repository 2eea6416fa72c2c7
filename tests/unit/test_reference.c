/*
 * test_reference.c - repository name and tag validation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "err.h"
#include "reference.h"

static int name(const char *s)
{
    return pt_name_validate(s, strlen(s));
}

static int tag(const char *s)
{
    return pt_tag_validate(s, strlen(s));
}

static void test_name_valid(void **state)
{
    static const char *const ok[] = {
        "a",
        "0",
        "library/ubuntu",
        "my-org/my-app",
        "a/b/c/d/e/f",
        "a.b",
        "a_b",
        "a__b",
        "a-b",
        "a--b",
        "a-----b",
        "a.b_c__d-e---f/g",
        "123/456",
        "registry.example.com/team/app",
        "x0/y1_z2",
        "tags/list",
        "a/manifests",
        "blobs/uploads",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (name(ok[i]) != 0)
            fail_msg("expected valid name: %s", ok[i]);
    }
}

static void test_name_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "A",
        "Library/ubuntu",
        "library/Ubuntu",
        "/a",
        "a/",
        "a//b",
        "/",
        ".",
        "..",
        "../a",
        "a/..",
        "a/../b",
        "a/./b",
        "./a",
        ".a",
        "a.",
        "a..b",
        "_a",
        "a_",
        "a___b",
        "-a",
        "a-",
        "a.-b",
        "a-.b",
        "a_-b",
        "a-_b",
        "a._b",
        "a b",
        "a\tb",
        "a:b",
        "a@b",
        "a%2fb",
        "%2e%2e",
        "a\\b",
        "a+b",
        "a\xc3\xa9",
        "a\nb",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (name(bad[i]) != PT_E_NAME_INVALID)
            fail_msg("expected invalid name: \"%s\"", bad[i]);
    }
}

static void test_name_length(void **state)
{
    char buf[300];

    (void)state;
    memset(buf, 'a', sizeof(buf));
    assert_int_equal(pt_name_validate(buf, PT_NAME_MAX), 0);
    assert_int_equal(pt_name_validate(buf, PT_NAME_MAX + 1), PT_E_NAME_INVALID);
    assert_int_equal(pt_name_validate(buf, sizeof(buf)), PT_E_NAME_INVALID);
    /* 255 with separators: a/a/a/.../a */
    for (size_t i = 1; i < PT_NAME_MAX; i += 2)
        buf[i] = '/';
    assert_int_equal(pt_name_validate(buf, PT_NAME_MAX), 0);
    assert_int_equal(pt_name_validate(buf, PT_NAME_MAX - 1), PT_E_NAME_INVALID); /* ends '/' */
    assert_int_equal(pt_name_validate(NULL, 0), PT_E_NAME_INVALID);
}

static void test_name_length_delimited(void **state)
{
    char buf[] = "abc/def";
    char nul[] = {'a', '\0', 'b'};

    (void)state;
    assert_int_equal(pt_name_validate(buf, 3), 0);
    assert_int_equal(pt_name_validate(buf, 4), PT_E_NAME_INVALID);
    assert_int_equal(pt_name_validate(nul, sizeof(nul)), PT_E_NAME_INVALID);
    assert_int_equal(pt_name_validate(nul, 1), 0);
}

static void test_tag_valid(void **state)
{
    static const char *const ok[] = {
        "latest", "v1", "V1.2.3", "_", "_x", "1", "a-b_c.d", "A", "x..y", "x--", "sha256-abc",
    };
    char buf[PT_TAG_MAX];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (tag(ok[i]) != 0)
            fail_msg("expected valid tag: %s", ok[i]);
    }
    memset(buf, 'z', sizeof(buf));
    assert_int_equal(pt_tag_validate(buf, PT_TAG_MAX), 0);
}

static void test_tag_invalid(void **state)
{
    static const char *const bad[] = {
        "",     ".",    "..",  "-",   ".latest", "-latest", "a/b",  "a:b", "sha256:a", "a b",
        "a%2e", "a\tb", "a+b", "a@b", "é",       "a\xff",   "../x", "a\n", "~",        "a*",
    };
    char buf[PT_TAG_MAX + 2];
    char nul[] = {'a', '\0'};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (tag(bad[i]) != PT_E_TAG_INVALID)
            fail_msg("expected invalid tag: \"%s\"", bad[i]);
    }
    memset(buf, 'z', sizeof(buf));
    assert_int_equal(pt_tag_validate(buf, PT_TAG_MAX + 1), PT_E_TAG_INVALID);
    assert_int_equal(pt_tag_validate(buf, PT_TAG_MAX + 2), PT_E_TAG_INVALID);
    assert_int_equal(pt_tag_validate(nul, sizeof(nul)), PT_E_TAG_INVALID);
    assert_int_equal(pt_tag_validate(NULL, 0), PT_E_TAG_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_valid),  cmocka_unit_test(test_name_invalid),
        cmocka_unit_test(test_name_length), cmocka_unit_test(test_name_length_delimited),
        cmocka_unit_test(test_tag_valid),   cmocka_unit_test(test_tag_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
