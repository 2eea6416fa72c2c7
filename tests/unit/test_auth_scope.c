/*
 * test_auth_scope.c - Docker token scopes: parsing, merging, bounds, formatting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "err.h"
#include "scope.h"

static int parse(const char *s, struct pt_scope *out, size_t max, size_t *n)
{
    return pt_scope_parse(s, strlen(s), out, max, n);
}

static void test_single(void **state)
{
    struct pt_scope sc[PT_SCOPE_MAX];
    size_t n = 99;

    (void)state;
    assert_int_equal(parse("repository:samalba/my-app:pull,push", sc, PT_SCOPE_MAX, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(sc[0].registry, 0);
    assert_string_equal(sc[0].name, "samalba/my-app");
    assert_int_equal(sc[0].actions, PT_ACTION_PULL | PT_ACTION_PUSH);

    assert_int_equal(parse("repository:a:*", sc, PT_SCOPE_MAX, &n), 0);
    assert_int_equal(sc[0].actions, PT_ACTION_PULL | PT_ACTION_PUSH | PT_ACTION_DELETE);

    assert_int_equal(parse(PT_SCOPE_CATALOG, sc, PT_SCOPE_MAX, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(sc[0].registry, 1);
    assert_string_equal(sc[0].name, "catalog");
    assert_int_equal(sc[0].actions, PT_ACTION_PULL | PT_ACTION_PUSH | PT_ACTION_DELETE);

    /* unknown actions grant nothing; admin is not a Docker action */
    assert_int_equal(parse("repository:a:metadata-read,admin,delete", sc, PT_SCOPE_MAX, &n), 0);
    assert_int_equal(sc[0].actions, PT_ACTION_DELETE);
    assert_int_equal(parse("repository:a:", sc, PT_SCOPE_MAX, &n), 0);
    assert_int_equal(sc[0].actions, 0);
}

static void test_several(void **state)
{
    struct pt_scope sc[PT_SCOPE_MAX];
    size_t n;

    (void)state;
    assert_int_equal(parse("  repository:a/b:pull   repository:c:push registry:catalog:* "
                           "repository:a/b:delete",
                           sc, PT_SCOPE_MAX, &n),
                     0);
    assert_int_equal(n, 3);
    assert_string_equal(sc[0].name, "a/b");
    assert_int_equal(sc[0].actions, PT_ACTION_PULL | PT_ACTION_DELETE); /* merged */
    assert_string_equal(sc[1].name, "c");
    assert_int_equal(sc[2].registry, 1);

    /* unknown resource types and registry resources are skipped */
    assert_int_equal(
        parse("repository(plugin):x:pull registry:other:* repository:d:pull", sc, PT_SCOPE_MAX, &n),
        0);
    assert_int_equal(n, 1);
    assert_string_equal(sc[0].name, "d");

    assert_int_equal(parse("", sc, PT_SCOPE_MAX, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(parse("    ", sc, PT_SCOPE_MAX, &n), 0);
    assert_int_equal(n, 0);
}

static void test_refusals(void **state)
{
    static const char *bad[] = {
        "repository",         "repository:a",           ":a:pull",
        "repository::pull",   "repository:A:pull",      "repository:a//b:pull",
        "repository:a:pu ll", "repository:a:pull;push", "repository:a:pu*",
        "repository:a:**",    "Repository:a:pull",      "repository:a\tb:pull",
        "repository:-a:pull", "repository:a/:pull",
    };
    struct pt_scope sc[PT_SCOPE_MAX];
    size_t i, n;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = 99;
        assert_int_equal(parse(bad[i], sc, PT_SCOPE_MAX, &n), PT_E_NAME_INVALID);
        assert_int_equal(n, 0);
    }
    /* a bad scope spoils the whole value */
    assert_int_equal(parse("repository:a:pull repository:B:pull", sc, PT_SCOPE_MAX, &n),
                     PT_E_NAME_INVALID);
    assert_int_equal(n, 0);
    /* a NUL inside */
    assert_int_equal(pt_scope_parse("repository:a\0b:pull", 19, sc, PT_SCOPE_MAX, &n),
                     PT_E_NAME_INVALID);
}

static void test_bounds(void **state)
{
    struct pt_scope sc[PT_SCOPE_MAX];
    char text[PT_SCOPE_INPUT_MAX + 64], name[300];
    size_t n, i, pos = 0;

    (void)state;
    for (i = 0; i < PT_SCOPE_MAX; i++)
        pos += (size_t)snprintf(text + pos, sizeof(text) - pos, "repository:r%zu:pull ", i);
    assert_int_equal(pt_scope_parse(text, pos, sc, PT_SCOPE_MAX, &n), 0);
    assert_int_equal(n, PT_SCOPE_MAX);
    assert_string_equal(sc[15].name, "r15");
    pos += (size_t)snprintf(text + pos, sizeof(text) - pos, "repository:more:pull");
    assert_int_equal(pt_scope_parse(text, pos, sc, PT_SCOPE_MAX, &n), PT_E_TOO_LARGE);
    assert_int_equal(n, 0);
    /* max below PT_SCOPE_MAX: the caller's room is respected */
    assert_int_equal(parse("repository:a:pull repository:b:pull", sc, 1, &n), PT_E_TOO_LARGE);

    /* a 255-byte name passes, 256 does not */
    memset(name, 'a', 255);
    snprintf(text, sizeof(text), "repository:%.255s:pull", name);
    assert_int_equal(parse(text, sc, PT_SCOPE_MAX, &n), 0);
    assert_int_equal(strlen(sc[0].name), 255);
    memset(name, 'a', 256);
    snprintf(text, sizeof(text), "repository:%.256s:pull", name);
    assert_int_equal(parse(text, sc, PT_SCOPE_MAX, &n), PT_E_NAME_INVALID);

    /* the whole value is bounded */
    memset(text, ' ', sizeof(text));
    assert_int_equal(pt_scope_parse(text, PT_SCOPE_INPUT_MAX + 1, sc, PT_SCOPE_MAX, &n),
                     PT_E_TOO_LARGE);
}

static void test_format(void **state)
{
    char out[300], acts[8];

    (void)state;
    assert_int_equal(pt_scope_format("a/b", 3, PT_ACTION_PUSH | PT_ACTION_PULL, out, sizeof(out)),
                     (int)strlen("repository:a/b:pull,push"));
    assert_string_equal(out, "repository:a/b:pull,push");
    assert_int_equal(pt_scope_format("a", 1, PT_ACTIONS_ALL, out, sizeof(out)), 29);
    assert_string_equal(out, "repository:a:pull,push,delete");
    assert_int_equal(pt_scope_format("a", 1, PT_ACTION_ADMIN, out, sizeof(out)), 17);
    assert_string_equal(out, "repository:a:pull");
    assert_int_equal(pt_scope_format("A", 1, PT_ACTION_PULL, out, sizeof(out)), PT_E_NAME_INVALID);
    assert_int_equal(pt_scope_format("a", 1, PT_ACTION_PULL, out, 17), PT_E_TOO_LARGE);
    assert_int_equal(pt_scope_format("a", 1, PT_ACTION_PULL, out, 18), 17);

    /* truncation reports the needed length and keeps a NUL */
    assert_int_equal(pt_scope_actions_format(PT_ACTION_PULL | PT_ACTION_DELETE, acts, 8), 11);
    assert_string_equal(acts, "pull,de");
    assert_int_equal(pt_scope_actions_format(0, acts, 8), 0);
    assert_string_equal(acts, "");

    /* format then parse gives the same scope back */
    struct pt_scope sc[1];
    size_t n;
    pt_scope_format("team/app", 8, PT_ACTION_PUSH | PT_ACTION_DELETE, out, sizeof(out));
    assert_int_equal(parse(out, sc, 1, &n), 0);
    assert_string_equal(sc[0].name, "team/app");
    assert_int_equal(sc[0].actions, PT_ACTION_PUSH | PT_ACTION_DELETE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single),   cmocka_unit_test(test_several),
        cmocka_unit_test(test_refusals), cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
