/*
 * test_manifest_refusals.c - the manifest parser/validator (node/oci/manifest.c) on bodies it
 * must refuse, and at its limits.
 *
 * Valid bodies (support/sample_manifests.h) are altered one field at a time to hit each
 * refusal: malformed JSON, a body that is not an object, schema versions, missing fields,
 * digests, sizes, media type syntax, annotations. Then the limits (references, body size,
 * nesting depth), the table of known manifest media types, and the arguments of the API.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "manifest.h"
#include "support/sample_manifests.h"

static void test_malformed_json(void **state)
{
    static const char image[] = OCI_IMAGE_WITH_CONFIG(CONFIG_OK);
    struct pt_manifest_info info;
    (void)state;

    /* Every proper prefix of a valid manifest is invalid. */
    for (size_t n = 0; n < sizeof(image) - 2; n++) {
        assert_int_equal(pt_manifest_parse(image, n, OCI_MANIFEST, &info), PT_E_MANIFEST_INVALID);
        assert_null(info.blobs);
    }
    assert_int_equal(pt_manifest_parse(NULL, 0, OCI_MANIFEST, &info), PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"manifests\":[]} {}", OCI_INDEX,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"manifests\":[],}", OCI_INDEX,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{'schemaVersion':2,'manifests':[]}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    /* Invalid UTF-8 and NUL inside strings. */
    pt_sample_expect_rc("{\"schemaVersion\":2,\"manifests\":[],\"x\":\"\xc3\x28\"}", OCI_INDEX,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"manifests\":[],\"x\":\"a\\u0000b\"}", OCI_INDEX,
                        PT_E_MANIFEST_INVALID);
    static const char with_nul[] = "{\"schemaVersion\":2,\"manifests\":[]}\0";
    assert_int_equal(pt_manifest_parse(with_nul, sizeof(with_nul), OCI_INDEX, &info),
                     PT_E_MANIFEST_INVALID);
    /* Duplicate keys, top level and nested. */
    pt_sample_expect_rc("{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}", OCI_INDEX,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MANIFEST
                        "\",\"digest\":\"" D_A "\",\"digest\":\"" D_B "\",\"size\":1}]}",
                        OCI_INDEX, PT_E_MANIFEST_INVALID);
}

static void test_not_object(void **state)
{
    (void)state;

    pt_sample_expect_rc("[]", OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("[{\"schemaVersion\":2,\"manifests\":[]}]", OCI_INDEX,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("\"string\"", OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("2", OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("null", NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("   ", NULL, PT_E_MANIFEST_INVALID);
}

static void test_schema_version(void **state)
{
    (void)state;

    pt_sample_expect_rc("{\"manifests\":[]}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":3,\"manifests\":[]}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":0,\"manifests\":[]}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":\"2\",\"manifests\":[]}", OCI_INDEX,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2.0,\"manifests\":[]}", OCI_INDEX,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":null,\"manifests\":[]}", OCI_INDEX,
                        PT_E_MANIFEST_INVALID);
}

static void test_missing_fields(void **state)
{
    (void)state;

    /* Image manifest: config and layers are required, with the right types. */
    pt_sample_expect_rc("{\"schemaVersion\":2,\"layers\":[]}", OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK "}", OCI_MANIFEST,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK "}", DOCKER_V2,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":{}}",
                        OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":null}",
                        OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"config\":[],\"layers\":[]}", OCI_MANIFEST,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"config\":null,\"layers\":[]}", OCI_MANIFEST,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[null]}",
                        OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[\"" D_B "\"]}",
                        OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    /* Index: manifests is required and must be an array of descriptors. */
    pt_sample_expect_rc("{\"schemaVersion\":2}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"manifests\":{}}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"manifests\":[{}]}", DOCKER_LIST,
                        PT_E_MANIFEST_INVALID);
    /* Descriptor: mediaType, digest and size are each required. */
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG("{\"digest\":\"" D_A "\",\"size\":7}"), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"size\":7}"), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A "\"}"),
                        NULL, PT_E_MANIFEST_INVALID);
    /* Optional descriptor fields must have their defined types. */
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A
                                              "\",\"size\":7,\"urls\":\"https://example.com\"}"),
                        NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A
                                              "\",\"size\":7,\"urls\":[1]}"),
                        NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A
                                              "\",\"size\":7,\"annotations\":{\"k\":1}}"),
                        NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A
                                              "\",\"size\":7,\"data\":{}}"),
                        NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A
                                              "\",\"size\":7,\"platform\":\"linux/amd64\"}"),
                        NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A
                                              "\",\"size\":7,\"artifactType\":\"nope\"}"),
                        NULL, PT_E_MANIFEST_INVALID);
    /* Unknown fields are ignored, whatever their type. */
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A
                                              "\",\"size\":7,\"x-vendor\":[{\"y\":null}]}"),
                        NULL, 0);
}

/* Descriptors with sha512 digests: config, layers, subject and index children. */
static void test_sha512_descriptors(void **state)
{
    static const char image[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST "\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
        "\"digest\":\"sha512:" HEX_A HEX_B "\",\"size\":10},"
        "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
        "\"digest\":\"sha512:" HEX_C HEX_D "\",\"size\":20},"
        "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D_E "\","
        "\"size\":30}],"
        "\"subject\":{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"sha512:" HEX_E HEX_A "\","
        "\"size\":40}}";
    static const char index[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" OCI_INDEX "\",\"manifests\":["
        "{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"sha512:" HEX_B HEX_C "\",\"size\":5}]}";
    struct pt_manifest_info info;
    (void)state;

    assert_int_equal(pt_sample_parse(image, OCI_MANIFEST, &info), 0);
    assert_int_equal(info.nblobs, 3);
    assert_int_equal(info.blobs[0].digest.algo, PT_DIGEST_SHA512);
    assert_string_equal(info.blobs[0].digest.hex, HEX_A HEX_B);
    assert_int_equal(info.blobs[1].digest.algo, PT_DIGEST_SHA512);
    assert_string_equal(info.blobs[1].digest.hex, HEX_C HEX_D);
    assert_int_equal(info.blobs[2].digest.algo, PT_DIGEST_SHA256);
    assert_string_equal(info.blobs[2].digest.hex, HEX_E);
    assert_int_equal(info.has_subject, 1);
    assert_int_equal(info.subject.algo, PT_DIGEST_SHA512);
    assert_string_equal(info.subject.hex, HEX_E HEX_A);
    pt_manifest_info_free(&info);

    assert_int_equal(pt_sample_parse(index, OCI_INDEX, &info), 0);
    assert_int_equal(info.nchildren, 1);
    assert_int_equal(info.children[0].digest.algo, PT_DIGEST_SHA512);
    assert_string_equal(info.children[0].digest.hex, HEX_B HEX_C);
    pt_manifest_info_free(&info);
}

static void test_bad_digests(void **state)
{
    (void)state;

    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"sha384:" HEX_A HEX_B "\"")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"sha512:" HEX_A "\"")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(
        OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"sha256:"
                                            "A3ED95CAEB02FFE68CDD9FD84406680AE93D633CB16422D"
                                            "00E8A7C22955B46D4\"")),
        NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"sha256:" HEX_A "0\"")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"sha256:a3ed95\"")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"" HEX_A "\"")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"sha256:\"")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"\"")), NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("null")), NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("42")), NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("[\"" D_A "\"]")), NULL,
                        PT_E_MANIFEST_INVALID);
    /* A bad digest in the last layer or child, and in the subject. */
    pt_sample_expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":["
                        "{\"mediaType\":\"a/b\",\"digest\":\"" D_B "\",\"size\":1},"
                        "{\"mediaType\":\"a/b\",\"digest\":\"sha256:zz\",\"size\":1}]}",
                        OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"manifests\":["
                        "{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"" D_B "\",\"size\":1},"
                        "{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"md5:abc\",\"size\":1}]}",
                        OCI_INDEX, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[],"
                        "\"subject\":{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"sha256:" HEX_A
                        "x\",\"size\":1}}",
                        OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[],"
                        "\"subject\":{\"mediaType\":\"" OCI_MANIFEST "\",\"size\":1}}",
                        OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[],"
                        "\"subject\":{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"" D_A "\"}}",
                        OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[],"
                        "\"subject\":\"" D_A "\"}",
                        OCI_MANIFEST, PT_E_MANIFEST_INVALID);
}

static void test_sizes(void **state)
{
    struct pt_manifest_info info;
    (void)state;

    /* 2^53 - 1 is the largest exact size; 2^53 and beyond are refused. */
    assert_int_equal(
        pt_sample_parse(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("9007199254740991")), NULL, &info), 0);
    assert_true(info.blobs[0].size == PT_MANIFEST_MAX_SIZE);
    pt_manifest_info_free(&info);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("9007199254740992")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("9223372036854775807")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("9223372036854775808")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("18446744073709551616")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("-1")), NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("-9223372036854775808")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("1.5")), NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("7.0")), NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("1e3")), NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("\"7\"")), NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("null")), NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("true")), NULL, PT_E_MANIFEST_INVALID);
    assert_int_equal(pt_sample_parse(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("-0")), NULL, &info), 0);
    assert_int_equal(info.blobs[0].size, 0);
    pt_manifest_info_free(&info);
}

static void test_media_type_syntax(void **state)
{
    static const char long_mt[] =
        "\"application/vnd.example." /* 24 + 104 = 128 characters: one too many */
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxx\"";
    static const char max_mt[] =
        "\"application/vnd.example."
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxx\"";
    struct pt_manifest_info info;
    (void)state;

    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"text/plain\"")), NULL, 0);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"application/vnd.a!#$&-^_.+b\"")), NULL,
                        0);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"notamediatype\"")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"application/\"")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"/json\"")), NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"application/a/b\"")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"application/.json\"")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"text/plain; charset=utf-8\"")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"\"")), NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("7")), NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"a/b\\r\\nX-Evil: 1\"")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"application/caf\xc3\xa9\"")), NULL,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"a/b\\u0000c\"")), NULL,
                        PT_E_MANIFEST_INVALID);

    /* 127 characters fit the field; 128 do not. */
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"config\":{\"mediaType\":%s,"
             "\"digest\":\"" D_A "\",\"size\":1},\"layers\":[]}",
             max_mt);
    assert_int_equal(pt_sample_parse(body, OCI_MANIFEST, &info), 0);
    assert_int_equal(strlen(info.blobs[0].media_type), 127);
    assert_int_equal(strlen(info.artifact_type), 127);
    pt_manifest_info_free(&info);
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"config\":{\"mediaType\":%s,"
             "\"digest\":\"" D_A "\",\"size\":1},\"layers\":[]}",
             long_mt);
    pt_sample_expect_rc(body, OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"artifactType\":%s,"
             "\"config\":" CONFIG_OK ",\"layers\":[]}",
             long_mt);
    pt_sample_expect_rc(body, OCI_MANIFEST, PT_E_MANIFEST_INVALID);

    /* artifactType is checked the same way (it is returned to referrers clients). */
    pt_sample_expect_rc(
        "{\"schemaVersion\":2,\"artifactType\":\"a/b\\r\\nX: y\",\"config\":" CONFIG_OK
        ",\"layers\":[]}",
        OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"artifactType\":null,\"config\":" CONFIG_OK
                        ",\"layers\":[]}",
                        OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"artifactType\":\"\",\"manifests\":[]}", OCI_INDEX,
                        PT_E_MANIFEST_INVALID);
}

static void test_annotations(void **state)
{
    (void)state;

    pt_sample_expect_rc("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"k\":1}}",
                        OCI_INDEX, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(
        "{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"k\":{\"n\":\"v\"}}}", OCI_INDEX,
        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":[\"k\",\"v\"]}",
                        OCI_INDEX, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":null}", OCI_INDEX,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(
        "{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"k\":\"v\",\"k\":\"w\"}}",
        OCI_INDEX, PT_E_MANIFEST_INVALID);
}

/* Appends to a growing buffer, failing the test on overflow. */
struct buf {
    char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

/* An index with n children, or an image manifest with a config and n layers. */
static char *many_refs(int index, size_t n)
{
    struct buf b = {0};
    size_t i;

    buf_add(&b, index ? "{\"schemaVersion\":2,\"manifests\":["
                      : "{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[");
    for (i = 0; i < n; i++) {
        char d[160];
        snprintf(d, sizeof(d),
                 "%s{\"mediaType\":\"a/b\",\"digest\":\"sha256:%064zx\",\"size\":%zu}",
                 i ? "," : "", i, i);
        buf_add(&b, d);
    }
    buf_add(&b, "]}");
    return b.p;
}

static void test_ref_limit(void **state)
{
    struct pt_manifest_info info;
    char *body;
    (void)state;

    body = many_refs(1, PT_MANIFEST_MAX_REFS);
    assert_int_equal(pt_sample_parse(body, OCI_INDEX, &info), 0);
    assert_int_equal(info.nchildren, PT_MANIFEST_MAX_REFS);
    assert_int_equal(info.children[9999].size, 9999);
    assert_string_equal(info.children[9999].digest.hex,
                        "000000000000000000000000000000000000000000000000000000000000270f");
    pt_manifest_info_free(&info);
    free(body);

    body = many_refs(1, PT_MANIFEST_MAX_REFS + 1);
    pt_sample_expect_rc(body, OCI_INDEX, PT_E_MANIFEST_INVALID);
    free(body);

    /* The config counts: 1 + 9999 layers is the most an image may reference. */
    body = many_refs(0, PT_MANIFEST_MAX_REFS - 1);
    assert_int_equal(pt_sample_parse(body, OCI_MANIFEST, &info), 0);
    assert_int_equal(info.nblobs, PT_MANIFEST_MAX_REFS);
    assert_string_equal(info.blobs[0].digest.hex, HEX_A);
    assert_int_equal(info.blobs[PT_MANIFEST_MAX_REFS - 1].size, PT_MANIFEST_MAX_REFS - 2);
    pt_manifest_info_free(&info);
    free(body);

    body = many_refs(0, PT_MANIFEST_MAX_REFS);
    pt_sample_expect_rc(body, OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    free(body);
}

static void test_body_size_limit(void **state)
{
    static const char image[] = OCI_IMAGE_WITH_CONFIG(CONFIG_OK);
    struct pt_manifest_info info;
    char *body;
    (void)state;

    /* Exactly the limit parses (padded with JSON whitespace); one byte more does not. */
    body = malloc(PT_MANIFEST_MAX_BYTES + 1);
    assert_non_null(body);
    memset(body, ' ', PT_MANIFEST_MAX_BYTES + 1);
    memcpy(body, image, sizeof(image) - 1);
    assert_int_equal(pt_manifest_parse(body, PT_MANIFEST_MAX_BYTES, OCI_MANIFEST, &info), 0);
    assert_int_equal(info.nblobs, 3);
    pt_manifest_info_free(&info);
    assert_int_equal(pt_manifest_parse(body, PT_MANIFEST_MAX_BYTES + 1, OCI_MANIFEST, &info),
                     PT_E_MANIFEST_TOO_LARGE);
    assert_null(info.blobs);
    /* The size check comes before anything else, even the schema1 header. */
    assert_int_equal(pt_manifest_parse(body, PT_MANIFEST_MAX_BYTES + 1,
                                       "application/vnd.docker.distribution.manifest.v1+json",
                                       &info),
                     PT_E_MANIFEST_TOO_LARGE);
    free(body);
}

static char *nested(size_t depth, const char *open, const char *close)
{
    struct buf b = {0};
    size_t i;

    buf_add(&b, "{\"schemaVersion\":2,\"manifests\":[],\"x\":");
    for (i = 0; i < depth; i++)
        buf_add(&b, open);
    for (i = 0; i < depth; i++)
        buf_add(&b, close);
    buf_add(&b, "}");
    return b.p;
}

static void test_depth_limit(void **state)
{
    char *body;
    (void)state;

    /* The root object is level 1, "x" adds the rest. */
    body = nested(PT_MANIFEST_MAX_DEPTH - 1, "[", "]");
    pt_sample_expect_rc(body, OCI_INDEX, 0);
    free(body);
    body = nested(PT_MANIFEST_MAX_DEPTH, "[", "]");
    pt_sample_expect_rc(body, OCI_INDEX, PT_E_MANIFEST_INVALID);
    free(body);
    body = nested(PT_MANIFEST_MAX_DEPTH, "{\"a\":", "}");
    pt_sample_expect_rc(body, OCI_INDEX, PT_E_MANIFEST_INVALID);
    free(body);
    /* Far deeper than the parser's own limit, and unterminated. */
    body = nested(100000, "[", "");
    pt_sample_expect_rc(body, OCI_INDEX, PT_E_MANIFEST_INVALID);
    free(body);

    /* Brackets inside strings (with escaped quotes) are not nesting. */
    struct buf b = {0};
    buf_add(&b, "{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"k\":\"\\\"");
    for (int i = 0; i < 200; i++)
        buf_add(&b, "[{");
    buf_add(&b, "\\\\\"}}");
    pt_sample_expect_rc(b.p, OCI_INDEX, 0);
    free(b.p);
}

static void test_media_type_known(void **state)
{
    (void)state;

    assert_int_equal(pt_manifest_media_type_known(OCI_MANIFEST, strlen(OCI_MANIFEST)), 1);
    assert_int_equal(pt_manifest_media_type_known(OCI_INDEX, strlen(OCI_INDEX)), 1);
    assert_int_equal(pt_manifest_media_type_known(DOCKER_V2, strlen(DOCKER_V2)), 1);
    assert_int_equal(pt_manifest_media_type_known(DOCKER_LIST, strlen(DOCKER_LIST)), 1);
    assert_int_equal(
        pt_manifest_media_type_known("APPLICATION/vnd.oci.image.index.v1+JSON", strlen(OCI_INDEX)),
        1);
    /* len bounds the comparison: a prefix or an extension is not a match. */
    assert_int_equal(pt_manifest_media_type_known(OCI_INDEX, strlen(OCI_INDEX) - 1), 0);
    assert_int_equal(pt_manifest_media_type_known(OCI_INDEX "x", strlen(OCI_INDEX) + 1), 0);
    assert_int_equal(pt_manifest_media_type_known(OCI_INDEX "; charset=utf-8", strlen(OCI_INDEX)),
                     1);
    assert_int_equal(pt_manifest_media_type_known(OCI_INDEX "; charset=utf-8",
                                                  strlen(OCI_INDEX "; charset=utf-8")),
                     0);
    assert_int_equal(pt_manifest_media_type_known(
                         "application/vnd.docker.distribution.manifest.v1+json",
                         strlen("application/vnd.docker.distribution.manifest.v1+json")),
                     0);
    assert_int_equal(pt_manifest_media_type_known(PT_MT_OCI_EMPTY, strlen(PT_MT_OCI_EMPTY)), 0);
    assert_int_equal(pt_manifest_media_type_known("", 0), 0);
    assert_int_equal(pt_manifest_media_type_known(NULL, 0), 0);
}

static void test_arguments(void **state)
{
    struct pt_manifest_info info;
    (void)state;

    assert_int_equal(
        pt_manifest_parse(pt_sample_oci_index, strlen(pt_sample_oci_index), OCI_INDEX, NULL),
        PT_E_INTERNAL);
    assert_int_equal(pt_manifest_parse(NULL, 10, OCI_INDEX, &info), PT_E_INTERNAL);
    pt_manifest_info_free(NULL);
    memset(&info, 0, sizeof(info));
    pt_manifest_info_free(&info);
    /* A failed parse leaves a previously used struct zeroed, not dangling. */
    assert_int_equal(pt_sample_parse(pt_sample_oci_index, OCI_INDEX, &info), 0);
    pt_manifest_info_free(&info);
    assert_int_equal(
        pt_sample_parse("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"k\":1}}",
                        OCI_INDEX, &info),
        PT_E_MANIFEST_INVALID);
    pt_manifest_info_free(&info);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_not_object),
        cmocka_unit_test(test_schema_version),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_bad_digests),
        cmocka_unit_test(test_sha512_descriptors),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_media_type_syntax),
        cmocka_unit_test(test_annotations),
        cmocka_unit_test(test_ref_limit),
        cmocka_unit_test(test_body_size_limit),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_media_type_known),
        cmocka_unit_test(test_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
