/*
 * test_router.c - path to route matching.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "err.h"
#include "reference.h"
#include "router.h"

#define HEX    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define DIGEST "sha256:" HEX

static int match(const char *path, struct pt_route *r)
{
    return pt_router_match(path, strlen(path), r);
}

static void assert_span(const char *p, size_t len, const char *want)
{
    assert_non_null(p);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(p, want, len);
}

static void test_fixed_routes(void **state)
{
    struct pt_route r;

    (void)state;
    assert_int_equal(match("/v2/", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_BASE);
    assert_null(r.name);
    assert_int_equal(match("/v2", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_BASE);
    assert_int_equal(match("/v2/_catalog", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_CATALOG);
    assert_null(r.name);
    assert_int_equal(match("/healthz", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_HEALTHZ);
    assert_int_equal(match("/readyz", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_READYZ);
    assert_int_equal(match("/metrics", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_METRICS);
}

static void test_not_found(void **state)
{
    static const char *const paths[] = {
        "",
        "/",
        "/v1/",
        "/v2x",
        "/v22/",
        "v2/",
        "//v2/",
        "/V2/",
        "/healthz/",
        "/healthzz",
        "/readyz/",
        "/readyzz",
        "/readyz%20",
        "/metrics/",
        "/v2/_catalog/",
        "/v2/_catalog%20",
        "/v2/a",
        "/v2/a/",
        "/v2/a/b",
        "/v2/a/tags",
        "/v2/a/tags/",
        "/v2/a/tags/list/",
        "/v2/a/tags/lists",
        "/v2/a/manifests",
        "/v2/a/manifests/",
        "/v2/a/blobs",
        "/v2/a/blobs/",
        "/v2/a/referrers/",
        "/v2/a/uploads/x",
        "/v2/a/blobs/uploads/x/",
        "/v2/a/blobs/uploads//",
        "/v2/manifests/latest",
        "/v2/tags/list",
        "/v2/blobs/" DIGEST,
        "/v2/blobs/uploads/",
        "/v2/a/%2e%2e",
        "/v2/%2e%2e/%2e%2e",
    };
    struct pt_route r;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        int rc = match(paths[i], &r);
        if (rc != PT_E_NOT_FOUND || r.id != PT_ROUTE_UNKNOWN)
            fail_msg("expected NOT_FOUND for \"%s\", got %d id %d", paths[i], rc, r.id);
    }
    assert_int_equal(pt_router_match(NULL, 0, &r), PT_E_NOT_FOUND);
    assert_int_equal(r.id, PT_ROUTE_UNKNOWN);
}

static void test_tags(void **state)
{
    struct pt_route r;

    (void)state;
    assert_int_equal(match("/v2/library/ubuntu/tags/list", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_TAGS);
    assert_span(r.name, r.name_len, "library/ubuntu");
    assert_null(r.ref);
    /* a name may itself contain keywords; the rightmost suffix wins */
    assert_int_equal(match("/v2/a/manifests/tags/list", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_TAGS);
    assert_span(r.name, r.name_len, "a/manifests");
    assert_int_equal(match("/v2/tags/tags/list", &r), 0);
    assert_span(r.name, r.name_len, "tags");
}

static void test_manifest(void **state)
{
    struct pt_route r;

    (void)state;
    assert_int_equal(match("/v2/library/ubuntu/manifests/latest", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_MANIFEST);
    assert_span(r.name, r.name_len, "library/ubuntu");
    assert_span(r.ref, r.ref_len, "latest");
    assert_int_equal(r.ref_is_digest, 0);

    assert_int_equal(match("/v2/a/b/c/manifests/" DIGEST, &r), 0);
    assert_int_equal(r.id, PT_ROUTE_MANIFEST);
    assert_span(r.name, r.name_len, "a/b/c");
    assert_span(r.ref, r.ref_len, DIGEST);
    assert_int_equal(r.ref_is_digest, 1);
    assert_string_equal(r.digest.hex, HEX);

    /* keyword-named tags and names */
    assert_int_equal(match("/v2/blobs/manifests/uploads", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_MANIFEST);
    assert_span(r.name, r.name_len, "blobs");
    assert_span(r.ref, r.ref_len, "uploads");
    assert_int_equal(match("/v2/a/blobs/uploads/manifests/v1", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_MANIFEST);
    assert_span(r.name, r.name_len, "a/blobs/uploads");
    assert_int_equal(match("/v2/a/manifests/manifests", &r), 0);
    assert_span(r.ref, r.ref_len, "manifests");
}

static void test_manifest_invalid(void **state)
{
    char path[512];
    struct pt_route r;

    (void)state;
    /* tag errors */
    assert_int_equal(match("/v2/a/manifests/.latest", &r), PT_E_TAG_INVALID);
    assert_int_equal(r.id, PT_ROUTE_MANIFEST);
    /* the handler answers by method: the name and the refused reference are set */
    assert_int_equal(match("/v2/a/b/manifests/.latest", &r), PT_E_TAG_INVALID);
    assert_int_equal(r.name_len, 3);
    assert_memory_equal(r.name, "a/b", 3);
    assert_int_equal(r.ref_len, 7);
    assert_memory_equal(r.ref, ".latest", 7);
    assert_int_equal(r.ref_is_digest, 0);
    assert_int_equal(match("/v2/a/manifests/-x", &r), PT_E_TAG_INVALID);
    assert_int_equal(match("/v2/a/manifests/a b", &r), PT_E_TAG_INVALID);
    memset(path, 0, sizeof(path));
    strcpy(path, "/v2/a/manifests/");
    memset(path + strlen(path), 't', PT_TAG_MAX);
    assert_int_equal(match(path, &r), 0);
    path[strlen(path)] = 't'; /* 129 chars */
    assert_int_equal(match(path, &r), PT_E_TAG_INVALID);
    /* digest errors (reference contains ':') */
    assert_int_equal(match("/v2/a/manifests/sha256:abc", &r), PT_E_DIGEST_INVALID);
    assert_int_equal(r.id, PT_ROUTE_MANIFEST);
    assert_int_equal(match("/v2/a/manifests/sha384:" HEX HEX, &r), PT_E_DIGEST_INVALID);
    assert_int_equal(match("/v2/a/manifests/sha512:" HEX, &r), PT_E_DIGEST_INVALID);
    assert_int_equal(match("/v2/a/manifests/SHA256:" HEX, &r), PT_E_DIGEST_INVALID);
    assert_int_equal(match("/v2/a/manifests/latest:1", &r), PT_E_DIGEST_INVALID);
    assert_int_equal(match("/v2/a/manifests/:", &r), PT_E_DIGEST_INVALID);
    /* name errors come first */
    assert_int_equal(match("/v2/A/manifests/-x", &r), PT_E_NAME_INVALID);
    assert_int_equal(r.id, PT_ROUTE_MANIFEST);
}

static void test_blob(void **state)
{
    struct pt_route r;
    char path[256];

    (void)state;
    assert_int_equal(match("/v2/my-org/app/blobs/" DIGEST, &r), 0);
    assert_int_equal(r.id, PT_ROUTE_BLOB);
    assert_span(r.name, r.name_len, "my-org/app");
    assert_span(r.ref, r.ref_len, DIGEST);
    assert_string_equal(r.digest.hex, HEX);

    assert_int_equal(match("/v2/a/blobs/latest", &r), PT_E_DIGEST_INVALID);
    assert_int_equal(r.id, PT_ROUTE_BLOB);
    assert_int_equal(match("/v2/a/blobs/sha256:" HEX "0", &r), PT_E_DIGEST_INVALID);
    snprintf(path, sizeof(path), "/v2/a/blobs/sha256:%.63s", HEX);
    assert_int_equal(match(path, &r), PT_E_DIGEST_INVALID);
    snprintf(path, sizeof(path), "/v2/a/blobs/sha256:%s", HEX);
    path[strlen(path) - 1] = 'A';
    assert_int_equal(match(path, &r), PT_E_DIGEST_INVALID);
    assert_int_equal(match("/v2/a/blobs/sha384:" HEX HEX, &r), PT_E_DIGEST_INVALID);
    assert_int_equal(match("/v2/a/blobs/sha512:" HEX, &r), PT_E_DIGEST_INVALID);
    assert_int_equal(match("/v2/a/blobs/..", &r), PT_E_DIGEST_INVALID);
}

/* sha512 digests (128 hex) name blobs, manifests and referrer subjects. */
static void test_sha512(void **state)
{
    struct pt_route r;

    (void)state;
    assert_int_equal(match("/v2/a/blobs/sha512:" HEX HEX, &r), 0);
    assert_int_equal(r.id, PT_ROUTE_BLOB);
    assert_int_equal(r.digest.algo, PT_DIGEST_SHA512);
    assert_string_equal(r.digest.hex, HEX HEX);
    assert_span(r.ref, r.ref_len, "sha512:" HEX HEX);
    assert_int_equal(match("/v2/a/manifests/sha512:" HEX HEX, &r), 0);
    assert_int_equal(r.id, PT_ROUTE_MANIFEST);
    assert_true(r.ref_is_digest);
    assert_int_equal(r.digest.algo, PT_DIGEST_SHA512);
    assert_int_equal(match("/v2/a/referrers/sha512:" HEX HEX, &r), 0);
    assert_int_equal(r.digest.algo, PT_DIGEST_SHA512);
    assert_int_equal(match("/v2/a/blobs/sha512:" HEX HEX "0", &r), PT_E_DIGEST_INVALID);
}

static void test_uploads(void **state)
{
    struct pt_route r;
    char path[256];

    (void)state;
    assert_int_equal(match("/v2/a/b/blobs/uploads/", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_UPLOADS);
    assert_span(r.name, r.name_len, "a/b");
    assert_null(r.ref);
    assert_int_equal(match("/v2/a/b/blobs/uploads", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_UPLOADS);
    assert_span(r.name, r.name_len, "a/b");
    assert_null(r.ref);

    assert_int_equal(match("/v2/a/b/blobs/uploads/0f4a6c3e-1b2d-4c5e-9f80-123456789abc", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_UPLOAD);
    assert_span(r.name, r.name_len, "a/b");
    assert_span(r.ref, r.ref_len, "0f4a6c3e-1b2d-4c5e-9f80-123456789abc");
    assert_int_equal(match("/v2/a/blobs/uploads/ABCxyz09", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_UPLOAD);

    /* a repository named ".../blobs" with its own uploads */
    assert_int_equal(match("/v2/x/blobs/blobs/uploads/", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_UPLOADS);
    assert_span(r.name, r.name_len, "x/blobs");

    /* upload id limits */
    strcpy(path, "/v2/a/blobs/uploads/");
    memset(path + strlen(path), 'u', PT_UPLOAD_ID_MAX);
    path[20 + PT_UPLOAD_ID_MAX] = '\0';
    assert_int_equal(match(path, &r), 0);
    assert_int_equal(r.ref_len, PT_UPLOAD_ID_MAX);
    path[20 + PT_UPLOAD_ID_MAX] = 'u';
    path[21 + PT_UPLOAD_ID_MAX] = '\0';
    assert_int_equal(match(path, &r), PT_E_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(r.id, PT_ROUTE_UPLOAD);
    assert_int_equal(match("/v2/a/blobs/uploads/ab_cd", &r), PT_E_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(match("/v2/a/blobs/uploads/..", &r), PT_E_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(match("/v2/a/blobs/uploads/a.b", &r), PT_E_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(match("/v2/a/blobs/uploads/a:b", &r), PT_E_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(match("/v2/A/blobs/uploads/", &r), PT_E_NAME_INVALID);
    assert_int_equal(r.id, PT_ROUTE_UPLOADS);
    assert_int_equal(match("/v2//blobs/uploads/x", &r), PT_E_NAME_INVALID);
}

static void test_referrers(void **state)
{
    struct pt_route r;

    (void)state;
    assert_int_equal(match("/v2/a/referrers/" DIGEST, &r), 0);
    assert_int_equal(r.id, PT_ROUTE_REFERRERS);
    assert_span(r.name, r.name_len, "a");
    assert_span(r.ref, r.ref_len, DIGEST);
    assert_string_equal(r.digest.hex, HEX);
    assert_int_equal(match("/v2/a/referrers/latest", &r), PT_E_DIGEST_INVALID);
    assert_int_equal(r.id, PT_ROUTE_REFERRERS);
    assert_int_equal(match("/v2/a/referrers/sha256:" HEX "/x", &r), PT_E_NOT_FOUND);
}

static void test_bad_names(void **state)
{
    static const char *const paths[] = {
        "/v2/../x/manifests/a", "/v2/a/../x/manifests/a",
        "/v2/./x/manifests/a",  "/v2/a//b/manifests/a",
        "/v2//a/manifests/a",   "/v2//manifests/a",
        "/v2/a/b//tags/list",   "/v2/Library/ubuntu/manifests/latest",
        "/v2/UPPER/tags/list",  "/v2/a_/blobs/" DIGEST,
        "/v2/a b/tags/list",    "/v2/_catalog/tags/list",
        "/v2/a:b/tags/list",    "/v2/a\\b/tags/list",
    };
    struct pt_route r;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        int rc = match(paths[i], &r);
        if (rc != PT_E_NAME_INVALID)
            fail_msg("expected NAME_INVALID for \"%s\", got %d", paths[i], rc);
    }
}

static void test_percent(void **state)
{
    /* A '%' in the name is NAME_INVALID; in a reference it fails that reference's grammar. */
    static const struct {
        const char *path;
        int rc;
    } cases[] = {
        {"/v2/%2e%2e/x/manifests/a", PT_E_NAME_INVALID},
        {"/v2/a%2fb/tags/list", PT_E_NAME_INVALID},
        {"/v2/%61/tags/list", PT_E_NAME_INVALID},
        {"/v2/a/manifests/%2e%2e", PT_E_TAG_INVALID},
        {"/v2/a/manifests/sha256%3A" HEX, PT_E_TAG_INVALID},
        {"/v2/a/blobs/sha256%3a" HEX, PT_E_DIGEST_INVALID},
        {"/v2/a/blobs/uploads/%41", PT_E_BLOB_UPLOAD_UNKNOWN},
        {"/v2/a/blobs/uploads/%", PT_E_BLOB_UPLOAD_UNKNOWN},
        {"/v2/a/referrers/%00", PT_E_DIGEST_INVALID},
    };
    struct pt_route r;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = match(cases[i].path, &r);
        if (rc != cases[i].rc)
            fail_msg("expected %d for \"%s\", got %d", cases[i].rc, cases[i].path, rc);
    }
}

static void test_name_length(void **state)
{
    char path[600];
    struct pt_route r;
    size_t n;

    (void)state;
    strcpy(path, "/v2/");
    memset(path + 4, 'n', PT_NAME_MAX);
    strcpy(path + 4 + PT_NAME_MAX, "/tags/list");
    assert_int_equal(match(path, &r), 0);
    assert_int_equal(r.name_len, PT_NAME_MAX);
    memset(path + 4, 'n', PT_NAME_MAX + 1);
    strcpy(path + 4 + PT_NAME_MAX + 1, "/tags/list");
    assert_int_equal(match(path, &r), PT_E_NAME_INVALID);
    /* 256 chars made of components */
    n = 4;
    while (n < 4 + 256) {
        path[n++] = 'a';
        path[n++] = '/';
    }
    path[n - 1] = 'b';
    strcpy(path + n, "/manifests/latest");
    assert_int_equal(match(path, &r), PT_E_NAME_INVALID);
}

static void test_length_delimited(void **state)
{
    const char *p = "/v2/a/manifests/latest?junk";
    char nul[] = "/v2/a/manifests/lat\0st";
    struct pt_route r;

    (void)state;
    assert_int_equal(pt_router_match(p, strlen(p) - 5, &r), 0);
    assert_span(r.ref, r.ref_len, "latest");
    assert_int_equal(pt_router_match(p, strlen(p), &r), PT_E_TAG_INVALID);
    assert_int_equal(pt_router_match(nul, sizeof(nul) - 1, &r), PT_E_TAG_INVALID);
    assert_int_equal(pt_router_match("/v2/_catalogX", 12, &r), 0);
    assert_int_equal(r.id, PT_ROUTE_CATALOG);
    assert_int_equal(pt_router_match("/healthz", 7, &r), PT_E_NOT_FOUND);
}

static void test_admin(void **state)
{
    struct pt_route r;
    (void)state;
    assert_int_equal(match("/admin/cluster", &r), 0);
    assert_int_equal(r.id, PT_ROUTE_ADMIN);
    assert_int_equal(r.ref_len, 7);
    assert_memory_equal(r.ref, "cluster", 7);
    assert_int_equal(match("/admin/cluster/regions/3", &r), 0);
    assert_int_equal(r.ref_len, 17);
    assert_int_equal(match("/admin/", &r), PT_E_NOT_FOUND);
    assert_int_equal(match("/admin", &r), PT_E_NOT_FOUND);
    assert_int_equal(match("/adminx/cluster", &r), PT_E_NOT_FOUND);
}

static void test_route_names(void **state)
{
    (void)state;
    assert_string_equal(pt_route_name(PT_ROUTE_BASE), "base");
    assert_string_equal(pt_route_name(PT_ROUTE_CATALOG), "catalog");
    assert_string_equal(pt_route_name(PT_ROUTE_TAGS), "tags");
    assert_string_equal(pt_route_name(PT_ROUTE_MANIFEST), "manifest");
    assert_string_equal(pt_route_name(PT_ROUTE_BLOB), "blob");
    assert_string_equal(pt_route_name(PT_ROUTE_UPLOADS), "uploads");
    assert_string_equal(pt_route_name(PT_ROUTE_UPLOAD), "upload");
    assert_string_equal(pt_route_name(PT_ROUTE_REFERRERS), "referrers");
    assert_string_equal(pt_route_name(PT_ROUTE_HEALTHZ), "healthz");
    assert_string_equal(pt_route_name(PT_ROUTE_READYZ), "readyz");
    assert_string_equal(pt_route_name(PT_ROUTE_METRICS), "metrics");
    assert_string_equal(pt_route_name(PT_ROUTE_ADMIN), "admin");
    assert_string_equal(pt_route_name(PT_ROUTE_TOKEN), "token");
    assert_string_equal(pt_route_name(PT_ROUTE_UNKNOWN), "unknown");
    assert_string_equal(pt_route_name(PT_ROUTE__COUNT), "unknown");
    assert_string_equal(pt_route_name((enum pt_route_id) - 1), "unknown");
    for (int i = 0; i < PT_ROUTE__COUNT; i++)
        assert_non_null(pt_route_name((enum pt_route_id)i));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_routes),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_manifest),
        cmocka_unit_test(test_manifest_invalid),
        cmocka_unit_test(test_blob),
        cmocka_unit_test(test_sha512),
        cmocka_unit_test(test_uploads),
        cmocka_unit_test(test_referrers),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_percent),
        cmocka_unit_test(test_name_length),
        cmocka_unit_test(test_length_delimited),
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_route_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
