/*
 * test_auth_pattern.c - identity names, repository patterns, grants and action lists
 * (node/auth/pattern.c over node/oci/access.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "access.h"
#include "err.h"
#include "pattern.h"

static int name_ok(const char *s)
{
    return pt_auth_name_valid(s, strlen(s));
}

static int pattern_ok(const char *s)
{
    return pt_pattern_valid(s, strlen(s));
}

static int match(const char *pattern, const char *repo)
{
    return pt_pattern_match(pattern, repo, strlen(repo));
}

static void test_names(void **state)
{
    (void)state;
    assert_true(name_ok("a"));
    assert_true(name_ok("alice"));
    assert_true(name_ok("ci-bot_2.prod"));
    assert_true(name_ok("0day"));
    char n[PT_AUTH_NAME_MAX + 2];
    memset(n, 'x', sizeof(n));
    assert_true(pt_auth_name_valid(n, PT_AUTH_NAME_MAX));
    assert_false(pt_auth_name_valid(n, PT_AUTH_NAME_MAX + 1));
    assert_false(name_ok(""));
    assert_false(name_ok("Alice"));
    assert_false(name_ok("-a"));
    assert_false(name_ok(".a"));
    assert_false(name_ok("_a"));
    assert_false(name_ok("a b"));
    assert_false(name_ok("a/b"));
    assert_false(name_ok("a:b"));
    assert_false(pt_auth_name_valid("a\0b", 3));
    assert_false(pt_auth_name_valid(NULL, 0));
    /* key and token ids also take capitals (base64url) */
    assert_true(pt_access_id_valid("Ab-_9.z", 7));
    assert_false(pt_access_id_valid("a b", 3));
    assert_false(pt_access_id_valid("a/b", 3));
    assert_false(pt_access_id_valid("", 0));
}

static void test_patterns(void **state)
{
    (void)state;
    const char *good[] = {"*",          "**",      "a",        "library/app", "team/*",  "team/**",
                          "team/app-*", "*/build", "a/*/c/**", "*-x*y*",      "a.b_c-d", "x/y/z"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(pattern_ok(good[i]));
    const char *bad[] = {"",    "/", "/a",  "a/",  "a//b", "**/a",  "a/**/b", "a**",
                         "***", "A", "a b", "a:b", "a\\b", "a/**x", "é"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(pattern_ok(bad[i]));
    assert_false(pt_pattern_valid("a\0b", 3));
    char p[PT_AUTH_PATTERN_MAX + 2];
    memset(p, 'a', sizeof(p));
    assert_true(pt_pattern_valid(p, PT_AUTH_PATTERN_MAX));
    assert_false(pt_pattern_valid(p, PT_AUTH_PATTERN_MAX + 1));
}

static void test_match(void **state)
{
    (void)state;
    /* "*" alone: repositories without a slash */
    assert_true(match("*", "app"));
    assert_false(match("*", "team/app"));
    /* "**" alone: everything */
    assert_true(match("**", "app"));
    assert_true(match("**", "a/b/c/d"));
    assert_false(match("**", ""));
    /* exact */
    assert_true(match("library/app", "library/app"));
    assert_false(match("library/app", "library/app2"));
    assert_false(match("library/app", "library"));
    assert_false(match("library/app", "library/app/x"));
    /* one component */
    assert_true(match("team/*", "team/app"));
    assert_false(match("team/*", "team"));
    assert_false(match("team/*", "team/a/b"));
    assert_false(match("team/*", "teams/app"));
    /* any depth, and the prefix itself */
    assert_true(match("team/**", "team"));
    assert_true(match("team/**", "team/app"));
    assert_true(match("team/**", "team/a/b/c"));
    assert_false(match("team/**", "teams/app"));
    assert_false(match("team/**", "other/team"));
    /* globs inside a component never cross a slash */
    assert_true(match("team/app-*", "team/app-"));
    assert_true(match("team/app-*", "team/app-web"));
    assert_false(match("team/app-*", "team/app"));
    assert_false(match("team/app-*", "team/app-web/x"));
    assert_true(match("*-x*y*", "a-xzzyq"));
    assert_true(match("*-x*y*", "-xy"));
    assert_false(match("*-x*y*", "a-xz"));
    assert_true(match("*/build", "team/build"));
    assert_false(match("*/build", "team/x/build"));
    assert_true(match("a/*/c/**", "a/b/c"));
    assert_true(match("a/*/c/**", "a/b/c/d/e"));
    assert_false(match("a/*/c/**", "a/b/d"));
    /* backtracking glob */
    assert_true(match("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaab"));
    assert_false(match("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaa"));
    /* an invalid pattern matches nothing; repo length is what counts, not its NUL */
    assert_false(match("a//b", "a//b"));
    assert_false(match("A", "A"));
    assert_true(pt_pattern_match("team/*", "team/app-and-more", 8));
    assert_false(pt_pattern_match("team/*", "team/app\0x", 10));
    assert_false(pt_pattern_match(NULL, "a", 1));
}

static void grant(const char *text, const char *want_pattern, unsigned want_actions)
{
    char p[PT_AUTH_PATTERN_MAX + 1];
    unsigned a = 0;
    assert_int_equal(pt_grant_parse(text, p, sizeof(p), &a), 0);
    assert_string_equal(p, want_pattern);
    assert_int_equal(a, want_actions);
}

static void grant_bad(const char *text)
{
    char p[PT_AUTH_PATTERN_MAX + 1];
    unsigned a = 0;
    assert_int_equal(pt_grant_parse(text, p, sizeof(p), &a), PT_E_CONFIG);
}

static void test_grants(void **state)
{
    (void)state;
    grant("team/*:pull,push", "team/*", PT_ACTION_PULL | PT_ACTION_PUSH);
    grant("library/app:pull", "library/app", PT_ACTION_PULL);
    grant("**:delete", "**", PT_ACTION_DELETE);
    grant("x:*", "x", PT_ACTION_PULL | PT_ACTION_PUSH | PT_ACTION_DELETE);
    grant("x:pull,pull", "x", PT_ACTION_PULL);
    grant("admin", "**", PT_ACTION_ADMIN);
    grant("*:admin", "**", PT_ACTION_ADMIN);
    grant("**:admin", "**", PT_ACTION_ADMIN);
    grant("**:pull,admin", "**", PT_ACTION_PULL | PT_ACTION_ADMIN);
    grant_bad("");
    grant_bad("team/*");
    grant_bad("team/*:");
    grant_bad(":pull");
    grant_bad("x:pul");
    grant_bad("x:pull,");
    grant_bad("x:,pull");
    grant_bad("x:PULL");
    grant_bad("x: pull");
    grant_bad("x:pull:push");
    grant_bad("team/*:admin"); /* admin is registry-wide */
    grant_bad("Team:pull");
    grant_bad("a//b:pull");
    grant_bad("administrator");
    /* bounds: the longest pattern fits, one more byte does not; a small buffer is refused */
    char text[PT_AUTH_PATTERN_MAX + 16], p[PT_AUTH_PATTERN_MAX + 1];
    memset(text, 'a', PT_AUTH_PATTERN_MAX);
    strcpy(text + PT_AUTH_PATTERN_MAX, ":pull");
    unsigned a;
    assert_int_equal(pt_grant_parse(text, p, sizeof(p), &a), 0);
    assert_int_equal(strlen(p), PT_AUTH_PATTERN_MAX);
    assert_int_equal(pt_grant_parse(text, p, 10, &a), PT_E_CONFIG);
    memset(text, 'a', PT_AUTH_PATTERN_MAX + 1);
    strcpy(text + PT_AUTH_PATTERN_MAX + 1, ":pull");
    assert_int_equal(pt_grant_parse(text, p, sizeof(p), &a), PT_E_CONFIG);
    assert_int_equal(pt_grant_parse(NULL, p, sizeof(p), &a), PT_E_CONFIG);
}

static void test_actions(void **state)
{
    (void)state;
    char buf[64];
    pt_actions_format(PT_ACTION_PULL | PT_ACTION_PUSH, buf, sizeof(buf));
    assert_string_equal(buf, "pull,push");
    pt_actions_format(PT_ACTIONS_ALL, buf, sizeof(buf));
    assert_string_equal(buf, "pull,push,delete,admin");
    pt_actions_format(PT_ACTION_DELETE, buf, sizeof(buf));
    assert_string_equal(buf, "delete");
    pt_actions_format(0, buf, sizeof(buf));
    assert_string_equal(buf, "");
    pt_actions_format(PT_ACTION_PULL | 64, buf, sizeof(buf));
    assert_string_equal(buf, "pull");
    pt_actions_format(PT_ACTIONS_ALL, buf, 7); /* truncated, still terminated */
    assert_true(strlen(buf) < 7);
    pt_actions_format(PT_ACTIONS_ALL, buf, 0); /* writes nothing */

    assert_true(pt_actions_valid(PT_ACTION_PULL));
    assert_true(pt_actions_valid(PT_ACTIONS_ALL));
    assert_false(pt_actions_valid(0));
    assert_false(pt_actions_valid(16));
    assert_int_equal(pt_actions_effective(PT_ACTION_ADMIN), PT_ACTIONS_ALL);
    assert_int_equal(pt_actions_effective(PT_ACTION_PUSH | 32), PT_ACTION_PUSH);
}

static void test_stored_forms(void **state)
{
    (void)state;
    assert_true(pt_access_password_hash_valid(
        "$y$j9T$ndkvEwjvdFy/Tb4A0vBMa0$IhOBvx2OXR9h8B/nJ1NfVuDwSFyW8CGLI/ETz0Q1qF7"));
    assert_false(pt_access_password_hash_valid("$y$j9T$salt"));
    assert_false(pt_access_password_hash_valid("$y$j9T$salt$"));
    assert_false(pt_access_password_hash_valid("$2b$10$abc$def"));
    assert_false(pt_access_password_hash_valid(NULL));
    assert_true(pt_access_secret_hash_valid(
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    assert_false(pt_access_secret_hash_valid(
        "sha256:BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    assert_false(pt_access_secret_hash_valid(
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"));
    assert_false(pt_access_secret_hash_valid(
        "sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),   cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_match),   cmocka_unit_test(test_grants),
        cmocka_unit_test(test_actions), cmocka_unit_test(test_stored_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
