/*
 * test_replication_status.c - the per-image replication summary (node/replication_status.h:
 * blob and region sets, what each region lacks, the answer document) and the
 * `portolan replication status` client (node/cli.c) against a canned HTTP server on
 * loopback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "replication_status.h"
#include "support/cli_run.h"
#include "support/fake_http.h"

/* ---- helpers ----------------------------------------------------------------------------- */

/* The digest whose hex starts with the number i (distinct i, distinct digests). */
static struct pt_digest digest_n(unsigned i)
{
    struct pt_digest d = {.algo = PT_DIGEST_SHA256};
    snprintf(d.hex, sizeof d.hex, "%08x%056x", i, 0u);
    return d;
}

/* An owned holder list (what pt_metastore_blob_regions hands over) of n names, sorted. */
static char **holders(size_t n, ...)
{
    char **v = calloc(n ? n : 1, sizeof *v);
    va_list ap;

    assert_non_null(v);
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        v[i] = strdup(va_arg(ap, const char *));
        assert_non_null(v[i]);
    }
    va_end(ap);
    return v;
}

static void hold(struct pt_replication_image *img, size_t blob, char **v, size_t n)
{
    img->blobs[blob].holders = v;
    img->blobs[blob].nholders = n;
}

/* ---- sets --------------------------------------------------------------------------------- */

static void test_blobs_once_in_order(void **state)
{
    struct pt_replication_image img;
    struct pt_digest a = digest_n(7), b = digest_n(3), c = digest_n(7 + (1u << 20));

    (void)state;
    pt_replication_image_init(&img);
    assert_int_equal(pt_replication_image_add_blob(&img, &a, 100), 0);
    assert_int_equal(pt_replication_image_add_blob(&img, &b, 20), 0);
    assert_int_equal(pt_replication_image_add_blob(&img, &a, 999), 1); /* first size stays */
    /* Same low hex digits as a: the index must compare whole digests. */
    assert_int_equal(pt_replication_image_add_blob(&img, &c, 5), 0);
    assert_int_equal(pt_replication_image_add_blob(&img, &b, 20), 1);
    assert_int_equal(img.nblobs, 3);
    assert_string_equal(img.blobs[0].digest + 7, a.hex);
    assert_memory_equal(img.blobs[0].digest, "sha256:", 7);
    assert_int_equal(img.blobs[0].size, 100);
    assert_string_equal(img.blobs[1].digest + 7, b.hex);
    assert_string_equal(img.blobs[2].digest + 7, c.hex);
    assert_int_equal(img.blobs[2].nholders, 0);
    pt_replication_image_free(&img);
    assert_int_equal(img.nblobs, 0);
    assert_null(img.blobs);
    pt_replication_image_free(&img); /* twice is harmless */
    pt_replication_image_free(NULL);
}

static void test_blob_limit(void **state)
{
    struct pt_replication_image img;

    (void)state;
    pt_replication_image_init(&img);
    for (unsigned i = 0; i < PT_REPLICATION_IMAGE_BLOBS_MAX; i++) {
        struct pt_digest d = digest_n(i * 2654435761u);
        assert_int_equal(pt_replication_image_add_blob(&img, &d, i), 0);
    }
    struct pt_digest more = digest_n(1), again = digest_n(5 * 2654435761u);
    assert_int_equal(pt_replication_image_add_blob(&img, &more, 1), PT_E_TOO_LARGE);
    /* A blob already listed is still recognised at the limit. */
    assert_int_equal(pt_replication_image_add_blob(&img, &again, 1), 1);
    assert_int_equal(img.nblobs, PT_REPLICATION_IMAGE_BLOBS_MAX);
    assert_int_equal(img.blobs[5].size, 5);
    pt_replication_image_free(&img);
}

static void test_regions_sorted_unique(void **state)
{
    struct pt_replication_image img;
    char long_name[PT_CLUSTER_NAME_MAX + 2];

    (void)state;
    pt_replication_image_init(&img);
    assert_int_equal(pt_replication_image_add_region(&img, "region-c"), 0);
    assert_int_equal(pt_replication_image_add_region(&img, "region-a"), 0);
    assert_int_equal(pt_replication_image_add_region(&img, "region-b"), 0);
    assert_int_equal(pt_replication_image_add_region(&img, "region-a"), 0);
    assert_int_equal(img.nregions, 3);
    assert_string_equal(img.regions[0], "region-a");
    assert_string_equal(img.regions[1], "region-b");
    assert_string_equal(img.regions[2], "region-c");
    assert_int_equal(pt_replication_image_add_region(&img, ""), PT_E_INTERNAL);
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(pt_replication_image_add_region(&img, long_name), PT_E_INTERNAL);
    long_name[PT_CLUSTER_NAME_MAX] = '\0';
    assert_int_equal(pt_replication_image_add_region(&img, long_name), 0);
    for (int i = 0; img.nregions < PT_ADMIN_IMAGE_REGIONS_MAX; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%03d", i);
        assert_int_equal(pt_replication_image_add_region(&img, name), 0);
    }
    assert_int_equal(pt_replication_image_add_region(&img, "r999"), PT_E_TOO_LARGE);
    assert_int_equal(pt_replication_image_add_region(&img, "r000"), 0); /* listed already */
    for (size_t i = 1; i < img.nregions; i++)
        assert_true(strcmp(img.regions[i - 1], img.regions[i]) < 0);
    pt_replication_image_free(&img);
}

/* ---- summary ------------------------------------------------------------------------------ */

/* Three regions; blob 0 (config, 10 bytes) everywhere, blob 1 (100) in a and b, blob 2
 * (1000) in a only, blob 3 (5) nowhere yet. */
static void three_regions(struct pt_replication_image *img)
{
    pt_replication_image_init(img);
    snprintf(img->name, sizeof img->name, "team/app");
    snprintf(img->reference, sizeof img->reference, "v1");
    snprintf(img->digest, sizeof img->digest, "sha256:%064x", 0xabcu);
    assert_int_equal(pt_replication_image_add_region(img, "region-c"), 0);
    assert_int_equal(pt_replication_image_add_region(img, "region-b"), 0);
    assert_int_equal(pt_replication_image_add_region(img, "region-a"), 0);
    static const uint64_t sizes[] = {10, 100, 1000, 5};
    for (unsigned i = 0; i < 4; i++) {
        struct pt_digest d = digest_n(i + 1);
        assert_int_equal(pt_replication_image_add_blob(img, &d, sizes[i]), 0);
    }
    hold(img, 0, holders(3, "region-a", "region-b", "region-c"), 3);
    hold(img, 1, holders(2, "region-a", "region-b"), 2);
    hold(img, 2, holders(1, "region-a"), 1);
}

static void test_gap(void **state)
{
    struct pt_replication_image img;
    struct pt_replication_gap g;

    (void)state;
    three_regions(&img);
    assert_true(pt_replication_blob_held_by(&img.blobs[1], "region-b"));
    assert_false(pt_replication_blob_held_by(&img.blobs[1], "region-c"));
    assert_false(pt_replication_blob_held_by(&img.blobs[3], "region-a"));
    pt_replication_image_gap(&img, "region-a", &g);
    assert_int_equal(g.blobs, 1);
    assert_int_equal(g.bytes, 5);
    pt_replication_image_gap(&img, "region-b", &g);
    assert_int_equal(g.blobs, 2);
    assert_int_equal(g.bytes, 1005);
    pt_replication_image_gap(&img, "region-c", &g);
    assert_int_equal(g.blobs, 3);
    assert_int_equal(g.bytes, 1105);
    pt_replication_image_gap(&img, "elsewhere", &g); /* not a region of img: lacks all */
    assert_int_equal(g.blobs, 4);
    assert_int_equal(g.bytes, 1115);
    /* Byte totals saturate instead of wrapping. */
    img.blobs[2].size = UINT64_MAX - 1;
    img.blobs[3].size = UINT64_MAX - 1;
    pt_replication_image_gap(&img, "region-c", &g);
    assert_int_equal(g.blobs, 3);
    assert_int_equal(g.bytes, INT64_MAX);
    pt_replication_image_free(&img);
}

static void test_json(void **state)
{
    struct pt_replication_image img;

    (void)state;
    three_regions(&img);
    /* Once blob 3 reached every region, region-a is complete. */
    hold(&img, 3, holders(3, "region-a", "region-b", "region-c"), 3);
    json_t *doc = pt_replication_image_json(&img);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "name")), "team/app");
    assert_string_equal(json_string_value(json_object_get(doc, "reference")), "v1");
    assert_string_equal(json_string_value(json_object_get(doc, "digest")), img.digest);
    json_t *regions = json_object_get(doc, "regions");
    assert_int_equal(json_array_size(regions), 3);
    assert_string_equal(json_string_value(json_array_get(regions, 0)), "region-a");
    assert_string_equal(json_string_value(json_array_get(regions, 2)), "region-c");
    json_t *blobs = json_object_get(doc, "blobs");
    assert_int_equal(json_array_size(blobs), 4);
    json_t *b1 = json_array_get(blobs, 1);
    assert_string_equal(json_string_value(json_object_get(b1, "digest")), img.blobs[1].digest);
    assert_int_equal(json_integer_value(json_object_get(b1, "size")), 100);
    assert_int_equal(json_array_size(json_object_get(b1, "regions")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(b1, "regions"), 1)),
                        "region-b");
    json_t *complete = json_object_get(doc, "complete");
    assert_int_equal(json_array_size(complete), 1);
    assert_string_equal(json_string_value(json_array_get(complete, 0)), "region-a");
    json_t *missing = json_object_get(doc, "missing");
    assert_int_equal(json_object_size(missing), 2);
    assert_null(json_object_get(missing, "region-a"));
    json_t *mb = json_object_get(missing, "region-b");
    assert_int_equal(json_integer_value(json_object_get(mb, "blobs")), 1);
    assert_int_equal(json_integer_value(json_object_get(mb, "bytes")), 1000);
    json_t *mc = json_object_get(missing, "region-c");
    assert_int_equal(json_integer_value(json_object_get(mc, "blobs")), 2);
    assert_int_equal(json_integer_value(json_object_get(mc, "bytes")), 1100);
    json_decref(doc);
    pt_replication_image_free(&img);
}

static void test_json_no_blobs(void **state)
{
    struct pt_replication_image img;

    (void)state;
    pt_replication_image_init(&img);
    snprintf(img.name, sizeof img.name, "x");
    snprintf(img.reference, sizeof img.reference, "latest");
    assert_int_equal(pt_replication_image_add_region(&img, "solo"), 0);
    json_t *doc = pt_replication_image_json(&img);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "blobs")), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "complete")), 1);
    assert_true(json_is_object(json_object_get(doc, "missing")));
    assert_int_equal(json_object_size(json_object_get(doc, "missing")), 0);
    json_decref(doc);
    pt_replication_image_free(&img);
}

/* ---- running the client -------------------------------------------------------------------- */

#define RUN(...) PT_CLI_RUN(pt_cli_replication, __VA_ARGS__)

#define STATUS_FMT                                                                                 \
    "{\"region\":\"%s\",\"in_sync\":%s,\"blobs_behind\":%d,\"bytes_behind\":%d,"                   \
    "\"oldest_missing_age_s\":%s,\"active\":[%s],\"bytes_received_total\":0,"                      \
    "\"bytes_sent_total\":0,\"blobs_fetched_total\":0,\"verify_failures_total\":0,"                \
    "\"resumed_total\":0}"

#define ACTIVE_ONE "{\"digest\":\"sha256:00\",\"size\":10,\"offset\":4,\"from\":\"region-a\"}"

static void test_cli_single_region(void **state)
{
    struct pt_fake_http *f = pt_fake_http_start();
    struct pt_cli_run r;

    (void)state;
    pt_fake_http_route(f, NULL, "/admin/cluster", 200, "{\"role\":\"single\",\"applied_index\":4}");
    pt_fake_http_route(f, NULL, "/admin/replication", 200, STATUS_FMT, "solo", "true", 0, 0, "0",
                       "");
    r = RUN("status", "--region", f->url);
    if (r.rc != PT_CLI_OK)
        fail_msg("rc %d: %s", r.rc, r.err);
    pt_cli_run_expect_in(r.out, "replication: 1 of 1 region in sync\n");
    pt_cli_run_expect_in(r.out,
                         "REGION  STATE    BLOBS-BEHIND  BYTES-BEHIND  OLDEST-MISSING  ACTIVE\n");
    pt_cli_run_expect_in(r.out, "solo    in-sync  0             0B            -               0\n");
    pt_cli_run_free(&r);

    r = RUN("status", "--region", f->url, "--json");
    assert_int_equal(r.rc, PT_CLI_OK);
    json_t *doc = json_loads(r.out, 0, NULL);
    assert_non_null(doc);
    json_t *regions = json_object_get(doc, "regions");
    assert_int_equal(json_array_size(regions), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(regions, 0), "region")),
                        "solo");
    assert_true(json_is_true(json_object_get(json_array_get(regions, 0), "in_sync")));
    json_decref(doc);
    pt_cli_run_free(&r);
    pt_fake_http_stop(f);

    /* A single region whose status route fails is unreachable, named by nobody. */
    f = pt_fake_http_start();
    pt_fake_http_route(f, NULL, "/admin/cluster", 200, "{\"role\":\"single\",\"applied_index\":4}");
    r = RUN("status", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.out, "replication: 0 of 1 region in sync\n");
    pt_cli_run_expect_in(r.out, "?       unreachable  -");
    pt_cli_run_expect_in(r.out, "?: HTTP 404 NOT_FOUND\n");
    pt_cli_run_free(&r);
    r = RUN("status", "--region", f->url, "--json");
    assert_int_equal(r.rc, PT_CLI_FAILED);
    doc = json_loads(r.out, 0, NULL);
    assert_non_null(doc);
    json_t *only = json_array_get(json_object_get(doc, "regions"), 0);
    assert_true(json_is_null(json_object_get(only, "region")));
    assert_string_equal(json_string_value(json_object_get(only, "url")), f->url);
    assert_string_equal(json_string_value(json_object_get(only, "error")), "HTTP 404 NOT_FOUND");
    json_decref(doc);
    pt_cli_run_free(&r);
    pt_fake_http_stop(f);
}

static void test_cli_cluster_regions(void **state)
{
    struct pt_fake_http *a = pt_fake_http_start(), *b = pt_fake_http_start(),
                        *d = pt_fake_http_start();
    char c_url[64];
    struct pt_cli_run r;

    (void)state;
    pt_fake_http_dead_url(c_url, sizeof c_url);
    pt_fake_http_route(
        a, NULL, "/admin/cluster", 200,
        "{\"cluster_id\":\"c1\",\"self\":{},\"regions\":["
        "{\"name\":\"region-a\",\"id\":1,\"address\":\"127.0.0.1:7001\",\"url\":\"%s\","
        "\"role\":\"voter\"},"
        "{\"name\":\"region-b\",\"id\":2,\"address\":\"127.0.0.1:7002\",\"url\":\"%s\","
        "\"role\":\"voter\"},"
        "{\"name\":\"region-c\",\"id\":3,\"address\":\"127.0.0.1:7003\",\"url\":\"%s\","
        "\"role\":\"voter\"},"
        "{\"name\":\"region-d\",\"id\":4,\"address\":\"127.0.0.1:7004\",\"url\":\"%s\","
        "\"role\":\"standby\"}]}",
        a->url, b->url, c_url, d->url);
    pt_fake_http_route(a, NULL, "/admin/replication", 200, STATUS_FMT, "region-a", "true", 0, 0,
                       "0", "");
    pt_fake_http_route(b, NULL, "/admin/replication", 200, STATUS_FMT, "region-b", "false", 3, 1536,
                       "75.5", ACTIVE_ONE "," ACTIVE_ONE);
    /* d's URL answers as another region. */
    pt_fake_http_route(d, NULL, "/admin/replication", 200, STATUS_FMT, "region-x", "true", 0, 0,
                       "0", "");

    r = RUN("status", "--region", a->url);
    assert_int_equal(r.rc, PT_CLI_FAILED); /* c and d did not answer as themselves */
    pt_cli_run_expect_in(r.out, "replication: 1 of 4 regions in sync\n");
    pt_cli_run_expect_in(r.out,
                         "region-a  in-sync      0             0B            -               0\n");
    pt_cli_run_expect_in(r.out,
                         "region-b  behind       3             1.5KiB        1m15s           2\n");
    pt_cli_run_expect_in(r.out,
                         "region-c  unreachable  -             -             -               -\n");
    pt_cli_run_expect_in(r.out, "region-c: ");
    pt_cli_run_expect_in(r.out, "region-d: its URL answers as region region-x\n");
    pt_cli_run_free(&r);

    r = RUN("status", "--json", "--region", a->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    json_t *doc = json_loads(r.out, 0, NULL);
    assert_non_null(doc);
    json_t *regions = json_object_get(doc, "regions");
    assert_int_equal(json_array_size(regions), 4);
    json_t *rb = json_array_get(regions, 1), *rc = json_array_get(regions, 2);
    assert_int_equal(json_integer_value(json_object_get(rb, "bytes_behind")), 1536);
    assert_string_equal(json_string_value(json_object_get(rc, "region")), "region-c");
    assert_string_equal(json_string_value(json_object_get(rc, "url")), c_url);
    assert_non_null(json_string_value(json_object_get(rc, "error")));
    json_decref(doc);
    pt_cli_run_free(&r);
    pt_fake_http_stop(a);
    pt_fake_http_stop(b);
    pt_fake_http_stop(d);
}

#define IMAGE_DOC                                                                                  \
    "{\"name\":\"team/app\",\"reference\":\"v1\",\"digest\":\"sha256:%064x\","                     \
    "\"regions\":[\"region-a\",\"region-b\"],"                                                     \
    "\"blobs\":[{\"digest\":\"sha256:%064x\",\"size\":10,\"regions\":[\"region-a\","               \
    "\"region-b\"]},{\"digest\":\"sha256:%064x\",\"size\":2048,\"regions\":[\"region-a\"]}],"      \
    "\"complete\":[\"region-a\"],\"missing\":{\"region-b\":{\"blobs\":1,\"bytes\":2048}}}"

static void test_cli_image(void **state)
{
    struct pt_fake_http *f = pt_fake_http_start();
    struct pt_cli_run r;

    (void)state;
    pt_fake_http_route(f, NULL, "/admin/replication/image?name=team/app&reference=v1", 200,
                       IMAGE_DOC, 0xau, 0x1u, 0x2u);
    pt_fake_http_route(
        f, NULL, "/admin/replication/image?name=team/app&reference=gone", 404,
        "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}");
    r = RUN("status", "team/app:v1", "--region", f->url);
    if (r.rc != PT_CLI_OK)
        fail_msg("rc %d: %s", r.rc, r.err);
    pt_cli_run_expect_in(r.out, "image team/app:v1 (sha256:0000");
    pt_cli_run_expect_in(r.out, "): 2 blobs, 2.0KiB\n");
    pt_cli_run_expect_in(r.out, "REGION    STATE     BLOBS-MISSING  BYTES-MISSING\n");
    pt_cli_run_expect_in(r.out, "region-a  complete  0              0B\n");
    pt_cli_run_expect_in(r.out, "region-b  missing   1              2.0KiB\n");
    pt_cli_run_expect_in(
        r.out, "region-b lacks: sha256:00000000000000000000000000000000000000000000000000000"
               "00000000002\n");
    pt_cli_run_free(&r);

    r = RUN("status", "--region", f->url, "--json", "team/app:v1");
    assert_int_equal(r.rc, PT_CLI_OK);
    json_t *doc = json_loads(r.out, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "complete")), 1);
    json_decref(doc);
    pt_cli_run_free(&r);

    r = RUN("status", "team/app:gone", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "HTTP 404 MANIFEST_UNKNOWN");
    pt_cli_run_free(&r);

    /* By digest, and a bare name reads as NAME:latest. */
    r = RUN("status",
            "team/app@sha256:00000000000000000000000000000000000000000000000000000000000"
            "0000a",
            "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_FAILED); /* no such route in the fake */
    pt_cli_run_expect_in(f->target, "/admin/replication/image?name=team/app&reference=sha256:0000");
    pt_cli_run_free(&r);
    r = RUN("status", "team/app", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    assert_string_equal(f->target, "/admin/replication/image?name=team/app&reference=latest");
    pt_cli_run_free(&r);
    pt_fake_http_stop(f);
}

static void test_cli_usage(void **state)
{
    static const struct {
        int argc;
        char *argv[6];
        const char *needle;
    } bad[] = {
        {1, {"status"}, "--region is required"},
        {1, {"bogus"}, "unknown command"},
        {3, {"status", "--region", "ftp://a"}, "--region"},
        {4, {"status", "Team/App:v1", "--region", "http://a"}, "not NAME:TAG or NAME@DIGEST"},
        {4, {"status", "app:v!", "--region", "http://a"}, "not a valid tag"},
        {4, {"status", "app@sha256:12", "--region", "http://a"}, "not a sha256 digest"},
        {5, {"status", "app:v1", "app:v2", "--region", "http://a"}, "unexpected argument"},
        {4, {"status", "--region", "http://a", "--id=3"}, "unknown flag \"--id\""},
        {4, {"status", "-x", "--region", "http://a"}, "unexpected argument"},
    };
    struct pt_cli_run r;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = pt_cli_run_capture(pt_cli_replication, bad[i].argc, (char **)bad[i].argv);
        if (r.rc != PT_CLI_USAGE)
            fail_msg("case %zu: rc %d, err %s", i, r.rc, r.err);
        pt_cli_run_expect_in(r.err, bad[i].needle);
        pt_cli_run_expect_in(r.err, "portolan replication");
        pt_cli_run_free(&r);
    }
    r = pt_cli_run_capture(pt_cli_replication, 0, NULL);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_expect_in(r.err, "usage: portolan replication status");
    pt_cli_run_free(&r);
    r = RUN("help");
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "NAME@DIGEST");
    pt_cli_run_expect_in(r.out, "exit status");
    pt_cli_run_free(&r);
    r = RUN("status", "--help");
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "--region URL");
    pt_cli_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blobs_once_in_order),
        cmocka_unit_test(test_blob_limit),
        cmocka_unit_test(test_regions_sorted_unique),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_no_blobs),
        cmocka_unit_test(test_cli_single_region),
        cmocka_unit_test(test_cli_cluster_regions),
        cmocka_unit_test(test_cli_image),
        cmocka_unit_test(test_cli_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
