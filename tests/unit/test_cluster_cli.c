/*
 * test_cluster_cli.c - the `portolan cluster` client (node/cli/) that reads and changes a
 * cluster's membership.
 *
 * The client is driven against small in-process HTTP servers (support/fake_http.h: one thread
 * each, one request per connection) that answer canned admin API responses and record what
 * they received, so the tests see the real requests libcurl sends and the real output.
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
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "support/cli_run.h"
#include "support/fake_http.h"

/* ---- running the client ---------------------------------------------------------------- */

#define RUN(...) PT_CLI_RUN(pt_cli_cluster, __VA_ARGS__)

/* The /admin/cluster/self body of one region. */
static void self_json(char *buf, size_t len, const char *region, int id, const char *role, int term,
                      int commit, int applied, int contact, const char *url)
{
    snprintf(buf, len,
             "{\"cluster_id\":\"c1\",\"region\":\"%s\",\"id\":%d,\"role\":\"%s\",\"term\":%d,"
             "\"commit_index\":%d,\"applied_index\":%d,\"leader_id\":1,"
             "\"leader_region\":\"region-a\",\"last_contact_ms\":%d,"
             "\"address\":\"127.0.0.1:700%d\",\"url\":\"%s\"}",
             region, id, role, term, commit, applied, contact, id, url);
}

/*
 * Three regions: a (leader, answers --region), b (follower 5 entries behind), c (nothing
 * listens), plus d, whose URL answers as another region.
 */
struct cluster {
    struct pt_fake_http *a, *b, *d;
    char c_url[64];
};

static void cluster_up(struct cluster *cl)
{
    char self_a[1024], self_b[1024], self_d[1024];

    cl->a = pt_fake_http_start();
    cl->b = pt_fake_http_start();
    cl->d = pt_fake_http_start();
    pt_fake_http_dead_url(cl->c_url, sizeof cl->c_url);
    self_json(self_a, sizeof self_a, "region-a", 1, "leader", 7, 120, 118, 0, cl->a->url);
    self_json(self_b, sizeof self_b, "region-b", 2, "follower", 7, 117, 115, 40, cl->b->url);
    self_json(self_d, sizeof self_d, "region-x", 9, "follower", 7, 120, 120, 10, cl->d->url);
    pt_fake_http_route(
        cl->a, "GET", "/admin/cluster", 200,
        "{\"cluster_id\":\"c1\",\"self\":%s,\"regions\":["
        "{\"name\":\"region-a\",\"id\":1,\"address\":\"127.0.0.1:7001\",\"url\":\"%s\","
        "\"role\":\"voter\"},"
        "{\"name\":\"region-b\",\"id\":2,\"address\":\"127.0.0.1:7002\",\"url\":\"%s/\","
        "\"role\":\"voter\"},"
        "{\"name\":\"region-c\",\"id\":3,\"address\":\"127.0.0.1:7003\",\"url\":\"%s\","
        "\"role\":\"standby\"},"
        "{\"name\":\"region-d\",\"id\":4,\"address\":\"127.0.0.1:7004\",\"url\":\"%s\","
        "\"role\":\"voter\"}]}",
        self_a, cl->a->url, cl->b->url, cl->c_url, cl->d->url);
    pt_fake_http_route(cl->b, "GET", "/admin/cluster/self", 200, "%s", self_b);
    pt_fake_http_route(cl->d, "GET", "/admin/cluster/self", 200, "%s", self_d);
}

static void cluster_down(struct cluster *cl)
{
    pt_fake_http_stop(cl->a);
    pt_fake_http_stop(cl->b);
    pt_fake_http_stop(cl->d);
}

/* ---- client tests ---------------------------------------------------------------------- */

static void test_cli_status_table(void **state)
{
    struct cluster cl;
    struct pt_cli_run r;

    (void)state;
    cluster_up(&cl);
    r = RUN("status", "--region", cl.a->url);
    if (r.rc != PT_CLI_OK)
        fail_msg("rc %d: %s", r.rc, r.err);
    pt_cli_run_expect_in(r.out, "cluster c1: leader region-a (id 1), term 7\n");
    pt_cli_run_expect_in(r.out, "REGION");
    pt_cli_run_expect_in(r.out, "LAST-CONTACT");
    /* Lines are "name id role term commit applied lag contact address". */
    char name[64], role[32], term[16], commit[16], applied[16], lag[16], contact[16], addr[64];
    unsigned long id;
    int rows = 0;
    for (char *line = strtok(r.out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (sscanf(line, "%63s %lu %31s %15s %15s %15s %15s %15s %63s", name, &id, role, term,
                   commit, applied, lag, contact, addr) != 9)
            continue;
        rows++;
        if (strcmp(name, "region-a") == 0) {
            assert_string_equal(role, "leader");
            assert_string_equal(commit, "120");
            assert_string_equal(applied, "118");
            assert_string_equal(lag, "2");
            assert_string_equal(contact, "-");
        } else if (strcmp(name, "region-b") == 0) {
            assert_int_equal(id, 2);
            assert_string_equal(role, "voter");
            assert_string_equal(term, "7");
            assert_string_equal(lag, "5"); /* leader commit 120 - applied 115 */
            assert_string_equal(contact, "40");
            assert_string_equal(addr, "127.0.0.1:7002");
        } else if (strcmp(name, "region-c") == 0) {
            assert_string_equal(role, "unreachable");
            assert_string_equal(term, "-");
            assert_string_equal(lag, "-");
            assert_string_equal(addr, "127.0.0.1:7003");
        } else if (strcmp(name, "region-d") == 0) {
            assert_string_equal(role, "unreachable");
        } else {
            fail_msg("unexpected row %s", line);
        }
    }
    assert_int_equal(rows, 4);
    pt_cli_run_free(&r);

    /* The reasons for unreachable regions follow the table; the queried region was asked
     * once (its own view came with /admin/cluster). */
    r = RUN("status", "--region", cl.a->url);
    pt_cli_run_expect_in(r.out, "region-c: ");
    pt_cli_run_expect_in(r.out, "region-d: its URL answers as id 9 (region-x), not id 4");
    pt_cli_run_free(&r);
    assert_int_equal(cl.a->requests, 2);
    assert_string_equal(cl.a->target, "/admin/cluster");
    assert_int_equal(cl.b->requests, 2);
    assert_string_equal(cl.b->target, "/admin/cluster/self");
    cluster_down(&cl);
}

static void test_cli_status_json(void **state)
{
    struct cluster cl;
    struct pt_cli_run r;
    json_t *doc, *regions;

    (void)state;
    cluster_up(&cl);
    r = RUN("status", "--json", "--region", cl.a->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    doc = json_loads(r.out, 0, NULL);
    if (doc == NULL)
        fail_msg("not JSON: %s", r.out);
    assert_string_equal(json_string_value(json_object_get(doc, "cluster_id")), "c1");
    assert_string_equal(json_string_value(json_object_get(doc, "queried")), cl.a->url);
    json_t *leader = json_object_get(doc, "leader");
    assert_string_equal(json_string_value(json_object_get(leader, "region")), "region-a");
    assert_int_equal(json_integer_value(json_object_get(leader, "commit_index")), 120);
    regions = json_object_get(doc, "regions");
    assert_int_equal(json_array_size(regions), 4);
    json_t *b = json_array_get(regions, 1), *c = json_array_get(regions, 2);
    assert_string_equal(json_string_value(json_object_get(b, "state")), "voter");
    assert_int_equal(json_integer_value(json_object_get(b, "lag")), 5);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(b, "self"), "applied_index")), 115);
    assert_string_equal(json_string_value(json_object_get(c, "state")), "unreachable");
    assert_string_equal(json_string_value(json_object_get(c, "role")), "standby");
    assert_true(json_is_null(json_object_get(c, "self")));
    assert_true(json_is_null(json_object_get(c, "lag")));
    assert_true(json_string_length(json_object_get(c, "error")) > 0);
    json_decref(doc);
    pt_cli_run_free(&r);
    cluster_down(&cl);
}

static void test_cli_status_failures(void **state)
{
    struct pt_fake_http *f = pt_fake_http_start();
    char url[64];
    struct pt_cli_run r;

    (void)state;
    /* Nothing listens. */
    pt_fake_http_dead_url(url, sizeof url);
    r = RUN("status", "--region", url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "/admin/cluster");
    pt_cli_run_free(&r);
    /* The node has no cluster admin API: the OCI error body is shown. */
    r = RUN("status", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "HTTP 404 NOT_FOUND: no such route");
    pt_cli_run_free(&r);
    /* Not a cluster document. */
    pt_fake_http_route(f, "GET", "/admin/cluster", 200, "{\"cluster_id\":\"c1\",\"regions\":{}}");
    r = RUN("status", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "not a cluster document");
    pt_cli_run_free(&r);
    pt_fake_http_stop(f);

    /* A 503 with a body that is not JSON is quoted, cleaned of control characters. */
    f = pt_fake_http_start();
    pt_fake_http_route(f, "GET", "/admin/cluster", 503, "raft \x1b[31mdown\x1b[0m");
    r = RUN("status", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "HTTP 503: raft ?[31mdown?[0m");
    pt_cli_run_free(&r);
    pt_fake_http_stop(f);

    /* Members with bad entries are listed as such; valid ones are still asked. */
    f = pt_fake_http_start();
    pt_fake_http_route(
        f, "GET", "/admin/cluster", 200,
        "{\"cluster_id\":\"c1\",\"self\":{},\"regions\":["
        "{\"name\":\"ok\",\"id\":1,\"address\":\"127.0.0.1:1\",\"url\":\"%s\"},"
        "{\"name\":\"bad\",\"id\":2,\"address\":\"127.0.0.1:2\",\"url\":\"file:///x\"},"
        "{\"name\":\"neg\",\"id\":-3,\"address\":\"127.0.0.1:3\",\"url\":\"%s\"},"
        "{\"name\":\"\",\"id\":4,\"address\":\"127.0.0.1:4\",\"url\":\"\"}]}",
        f->url, f->url);
    pt_fake_http_route(f, "GET", "/admin/cluster/self", 200,
                       "{\"cluster_id\":\"other\",\"id\":1,\"role\":\"leader\"}");
    r = RUN("status", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "no leader reachable");
    pt_cli_run_expect_in(r.out, "ok: it belongs to cluster \"other\", not \"c1\"");
    pt_cli_run_expect_in(r.out,
                         "bad: incomplete member entry: url: must start with http:// or https://");
    pt_cli_run_expect_in(r.out,
                         "neg: incomplete member entry: id: missing or not a positive integer");
    /* A member known only by id and address keeps them in its row. */
    pt_cli_run_expect_in(r.out, "#4: incomplete member entry: name: must not be empty");
    pt_cli_run_expect_in(r.out, "\n#4      4   unreachable");
    pt_cli_run_expect_in(r.out, "127.0.0.1:4\n");
    pt_cli_run_free(&r);
    pt_fake_http_stop(f);
}

static void test_cli_changes(void **state)
{
    struct pt_fake_http *f = pt_fake_http_start();
    struct pt_cli_run r;
    json_t *body;

    (void)state;
    pt_fake_http_route(
        f, "POST", "/admin/cluster/regions", 201,
        "{\"name\":\"region-e\",\"id\":5,\"address\":\"e:7005\",\"url\":\"http://e\","
        "\"role\":\"standby\"}");
    pt_fake_http_route(f, "DELETE", "/admin/cluster/regions/3", 202, "%s", "");
    pt_fake_http_route(f, "POST", "/admin/cluster/transfer-leader", 202, "%s", "");

    r = RUN("add", "--region", f->url, "--name", "region-e", "--id=5", "--address", "e:7005",
            "--url", "http://e/", "--role", "standby");
    if (r.rc != PT_CLI_OK)
        fail_msg("rc %d: %s", r.rc, r.err);
    pt_cli_run_expect_in(r.out, "added region region-e (id 5, standby)");
    assert_string_equal(f->method, "POST");
    body = json_loads(f->body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "name")), "region-e");
    assert_int_equal(json_integer_value(json_object_get(body, "id")), 5);
    assert_string_equal(json_string_value(json_object_get(body, "address")), "e:7005");
    assert_string_equal(json_string_value(json_object_get(body, "url")), "http://e");
    assert_string_equal(json_string_value(json_object_get(body, "role")), "standby");
    json_decref(body);
    pt_cli_run_free(&r);

    /* --json prints the answer; role defaults to voter. */
    r = RUN("add", "--json", "--region", f->url, "--name", "region-f", "--id", "6", "--address",
            "f:7006", "--url", "http://f");
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "\"region-e\""); /* the canned answer */
    body = json_loads(f->body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(body, "role")), "voter");
    json_decref(body);
    pt_cli_run_free(&r);

    r = RUN("remove", "--region", f->url, "--id", "3");
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "removal of region id 3 accepted (HTTP 202)");
    assert_string_equal(f->method, "DELETE");
    assert_string_equal(f->target, "/admin/cluster/regions/3");
    pt_cli_run_free(&r);

    r = RUN("transfer-leader", "--region", f->url, "--id", "2");
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "leadership transfer to id 2 accepted");
    assert_string_equal(f->body, "{\"id\":2}");
    pt_cli_run_free(&r);
    r = RUN("transfer-leader", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "leadership transfer accepted");
    assert_string_equal(f->body, "{}");
    pt_cli_run_free(&r);

    /* Refusals print every OCI error entry and exit 1. */
    r = RUN("remove", "--region", f->url, "--id", "4");
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "/admin/cluster/regions/4: HTTP 404 NOT_FOUND: no such route");
    pt_cli_run_free(&r);
    pt_fake_http_stop(f);

    f = pt_fake_http_start();
    pt_fake_http_route(f, "POST", "/admin/cluster/regions", 409,
                       "{\"errors\":[{\"code\":\"CONFLICT\",\"message\":\"id 1 is region-a\"},"
                       "{\"code\":\"DENIED\",\"message\":\"second\"}]}");
    r = RUN("add", "--region", f->url, "--name", "x", "--id", "1", "--address", "x:1", "--url",
            "http://x");
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "HTTP 409 CONFLICT: id 1 is region-a\n  DENIED: second\n");
    pt_cli_run_free(&r);
    pt_fake_http_stop(f);
}

/* A follower that redirects a change to the leader: method and body are kept. */
static void test_cli_redirect(void **state)
{
    struct pt_fake_http *leader = pt_fake_http_start(), *follower = pt_fake_http_start();
    struct pt_cli_run r;

    (void)state;
    pt_fake_http_route(leader, "POST", "/admin/cluster/transfer-leader", 202, "%s", "");
    pt_fake_http_route(follower, "POST", "/admin/cluster/transfer-leader", 307, "%s", "");
    snprintf(follower->routes[0].location, sizeof follower->routes[0].location,
             "%s/admin/cluster/transfer-leader", leader->url);
    r = RUN("transfer-leader", "--region", follower->url, "--id", "3");
    if (r.rc != PT_CLI_OK)
        fail_msg("rc %d: %s", r.rc, r.err);
    /* First the leader lookup (GET /admin/cluster/self: unknown here), then the change. */
    assert_int_equal(follower->requests, 2);
    assert_int_equal(leader->requests, 1);
    assert_string_equal(leader->method, "POST");
    assert_string_equal(leader->body, "{\"id\":3}");
    pt_cli_run_free(&r);

    /* A redirect loop stops. */
    snprintf(follower->routes[0].location, sizeof follower->routes[0].location,
             "%s/admin/cluster/transfer-leader", follower->url);
    r = RUN("transfer-leader", "--region", follower->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    assert_int_equal(follower->requests, 2 + 1 + 4);
    pt_cli_run_free(&r);
    pt_fake_http_stop(leader);
    pt_fake_http_stop(follower);
}

static void test_cli_usage(void **state)
{
    static const struct {
        int argc;
        char *argv[8];
        const char *needle;
    } bad[] = {
        {1, {"status"}, "--region is required"},
        {1, {"bogus"}, "unknown command"},
        {2, {"status", "--region"}, "--region: missing value"},
        {3, {"status", "--region", "127.0.0.1:5000"}, "http://"},
        {3, {"status", "--region", "http://a/v2"}, "no path"},
        {4, {"status", "--region=http://a", "--name", "x"}, "unknown flag \"--name\""},
        {3, {"status", "--region=http://a", "-v"}, "unexpected argument"},
        {3, {"status", "--region=http://a", "--json=yes"}, "takes no value"},
        {3, {"status", "--region=http://a", "--timeout=0"}, "--timeout"},
        {3, {"status", "--region=http://a", "--timeout=2d"}, "--timeout"},
        {2, {"remove", "--region=http://a"}, "--id is required"},
        {4, {"remove", "--region=http://a", "--id", "0"}, "--id"},
        {4, {"remove", "--region=http://a", "--id", "-2"}, "--id: \"-2\""},
        {5,
         {"add", "--region=http://a", "--name=a", "--id=1", "--address=a:1"},
         "--url is required"},
        {6,
         {"add", "--region=http://a", "--name=A", "--id=1", "--address=a:1", "--url=http://a"},
         "--name"},
        {6,
         {"add", "--region=http://a", "--name=a", "--id=1", "--address=0.0.0.0:1",
          "--url=http://a"},
         "--address"},
        {7,
         {"add", "--region=http://a", "--name=a", "--id=1", "--address=a:1", "--url=http://a",
          "--role=spare"},
         "voter or standby"},
        {3, {"transfer-leader", "--region=http://a", "--cacert="}, "--cacert"},
    };
    struct pt_cli_run r;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = pt_cli_run_capture(pt_cli_cluster, bad[i].argc, (char **)bad[i].argv);
        if (r.rc != PT_CLI_USAGE)
            fail_msg("case %zu: rc %d, err %s", i, r.rc, r.err);
        pt_cli_run_expect_in(r.err, bad[i].needle);
        pt_cli_run_free(&r);
    }
    r = pt_cli_run_capture(pt_cli_cluster, 0, NULL);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_expect_in(r.err, "usage: portolan cluster");
    pt_cli_run_free(&r);
    r = RUN("help");
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "transfer-leader");
    pt_cli_run_expect_in(r.out, "exit status");
    pt_cli_run_free(&r);
    r = RUN("add", "--help");
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "--role voter|standby");
    pt_cli_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_status_table),    cmocka_unit_test(test_cli_status_json),
        cmocka_unit_test(test_cli_status_failures), cmocka_unit_test(test_cli_changes),
        cmocka_unit_test(test_cli_redirect),        cmocka_unit_test(test_cli_usage),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
