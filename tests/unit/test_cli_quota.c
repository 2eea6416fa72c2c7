/*
 * test_cli_quota.c - `portolan quota|throttle|repo list` (node/cli/quota.c, throttle.c,
 * repo_usage.c): the requests they send (method, target, JSON body) to an in-process fake
 * server (support/fake_http.h), what they print, and the usage errors for bad operands,
 * sizes, subjects and flags given to the wrong verb.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "support/cli_run.h"
#include "support/fake_http.h"

static int setup(void **state)
{
    unsetenv("PORTOLAN_USER");
    unsetenv("PORTOLAN_PASSWORD");
    unsetenv("REGISTRY_AUTH_FILE");
    setenv("HOME", "/nonexistent-pt-home", 1);
    *state = pt_fake_http_start();
    return 0;
}

static int teardown(void **state)
{
    pt_fake_http_stop(*state);
    return 0;
}

/* The last request's JSON body member key as an integer (-1 when absent). */
static long long body_int(struct pt_fake_http *s, const char *key)
{
    json_t *o = json_loads(s->body, 0, NULL);
    assert_non_null(o);
    json_t *v = json_object_get(o, key);
    long long r = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
    json_decref(o);
    return r;
}

static void test_quota(void **state)
{
    struct pt_fake_http *s = *state;
    pt_fake_http_route(s, "POST", "/admin/quotas", 201, "{\"pattern\":\"team/*\"}");
    struct pt_cli_run r = PT_CLI_RUN(pt_cli_quota, "set", "team/*", "10GiB", "--region", s->url);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s->method, "POST");
    assert_int_equal(body_int(s, "limit"), 10LL << 30);
    pt_cli_run_expect_in(r.out, "quota of team/* set to 10.0GiB");
    pt_cli_run_free(&r);

    pt_fake_http_route(s, "GET", "/admin/quotas", 200,
                       "{\"quotas\":[{\"pattern\":\"*\",\"limit\":1000,\"used\":250,"
                       "\"percent\":25.0},{\"pattern\":\"team/*\",\"limit\":2048,\"used\":1024,"
                       "\"percent\":50.0,\"repository\":\"team/app\"}],"
                       "\"registry\":{\"bytes\":250,\"blobs\":2}}");
    r = PT_CLI_RUN(pt_cli_quota, "list", "--region", s->url);
    assert_int_equal(r.rc, 0);
    pt_cli_run_expect_in(r.out, "PATTERN");
    pt_cli_run_expect_in(r.out, "50.0%");
    pt_cli_run_expect_in(r.out, "team/app");
    pt_cli_run_expect_in(r.out, "(registry)");
    pt_cli_run_free(&r);

    pt_fake_http_route(s, "DELETE", "/admin/quotas?pattern=team%2F%2A", 204, "%s", "");
    r = PT_CLI_RUN(pt_cli_quota, "remove", "team/*", "--region", s->url);
    assert_int_equal(r.rc, 0);
    pt_cli_run_free(&r);

    /* the server's refusal reaches the user */
    pt_fake_http_route(s, "POST", "/admin/quotas", 400,
                       "{\"errors\":[{\"code\":\"INVALID\",\"message\":\"bad pattern\"}]}");
    r = PT_CLI_RUN(pt_cli_quota, "set", "x", "1", "--region", s->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "bad pattern");
    pt_cli_run_free(&r);
}

static void test_quota_usage_errors(void **state)
{
    struct pt_fake_http *s = *state;
    unsigned before = s->requests;
    struct pt_cli_run r = PT_CLI_RUN(pt_cli_quota, "set", "Team", "1", "--region", s->url);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);
    r = PT_CLI_RUN(pt_cli_quota, "set", "team", "10XB", "--region", s->url);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);
    r = PT_CLI_RUN(pt_cli_quota, "set", "team", "--region", s->url);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);
    r = PT_CLI_RUN(pt_cli_quota, "grow", "team", "--region", s->url);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);
    r = PT_CLI_RUN(pt_cli_quota, "list");
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_expect_in(r.err, "--region is required");
    pt_cli_run_free(&r);
    r = PT_CLI_RUN(pt_cli_quota, "list", "--tier", "basic", "--region", s->url);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);
    assert_int_equal(s->requests, before);
}

static void test_throttle(void **state)
{
    struct pt_fake_http *s = *state;
    pt_fake_http_route(s, "POST", "/admin/throttles", 201,
                       "{\"subject\":\"user:ci\",\"tier\":\"custom\",\"reads_per_minute\":3000,"
                       "\"writes_per_minute\":600,\"read_bytes_per_second\":0,"
                       "\"write_bytes_per_second\":1048576}");
    struct pt_cli_run r =
        PT_CLI_RUN(pt_cli_throttle, "set", "user:ci", "--tier", "standard", "--writes-per-minute",
                   "600", "--write-bytes-per-second", "1MiB", "--region", s->url);
    assert_int_equal(r.rc, 0);
    assert_int_equal(body_int(s, "writes_per_minute"), 600);
    assert_int_equal(body_int(s, "write_bytes_per_second"), 1 << 20);
    assert_int_equal(body_int(s, "reads_per_minute"), -1); /* the tier's, on the server */
    assert_non_null(strstr(s->body, "\"tier\":\"standard\""));
    pt_cli_run_expect_in(r.out, "writes 600/min");
    pt_cli_run_free(&r);

    pt_fake_http_route(s, "GET", "/admin/throttles", 200,
                       "{\"throttles\":[{\"subject\":\"default\",\"tier\":\"basic\","
                       "\"reads_per_minute\":1000,\"writes_per_minute\":100,"
                       "\"read_bytes_per_second\":30000000,\"write_bytes_per_second\":0}],"
                       "\"tiers\":{}}");
    r = PT_CLI_RUN(pt_cli_throttle, "list", "--region", s->url);
    assert_int_equal(r.rc, 0);
    pt_cli_run_expect_in(r.out, "default");
    pt_cli_run_expect_in(r.out, "1000/min");
    pt_cli_run_free(&r);

    pt_fake_http_route(s, "DELETE", "/admin/throttles?subject=token%3AAbC", 204, "%s", "");
    r = PT_CLI_RUN(pt_cli_throttle, "remove", "token:AbC", "--region", s->url);
    assert_int_equal(r.rc, 0);
    pt_cli_run_free(&r);

    unsigned before = s->requests;
    r = PT_CLI_RUN(pt_cli_throttle, "set", "user ci", "--region", s->url);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);
    r = PT_CLI_RUN(pt_cli_throttle, "set", "default", "--reads-per-minute", "-1", "--region",
                   s->url);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);
    r = PT_CLI_RUN(pt_cli_throttle, "remove", "default", "--tier", "basic", "--region", s->url);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);
    assert_int_equal(s->requests, before);
}

static void test_repo_list(void **state)
{
    struct pt_fake_http *s = *state;
    pt_fake_http_route(s, "GET", "/admin/repos?n=2", 200,
                       "{\"repositories\":[{\"name\":\"a\",\"bytes\":2048,\"blobs\":2,"
                       "\"manifests\":1,\"tags\":1},{\"name\":\"b\",\"bytes\":1,\"blobs\":1,"
                       "\"manifests\":0,\"tags\":0}],\"next\":\"b\"}");
    struct pt_cli_run r = PT_CLI_RUN(pt_cli_repo_list, "--usage", "--n", "2", "--region", s->url);
    assert_int_equal(r.rc, 0);
    pt_cli_run_expect_in(r.out, "REPOSITORY");
    pt_cli_run_expect_in(r.out, "2.0KiB");
    pt_cli_run_expect_in(r.err, "--last b");
    pt_cli_run_free(&r);
    r = PT_CLI_RUN(pt_cli_repo_list, "--n", "0", "--region", s->url);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repo_list, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
