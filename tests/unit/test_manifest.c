/*
 * test_manifest.c - unit tests for the manifest parser/validator (node/oci/manifest.c): the
 * kinds of manifest it accepts and what it reads from them.
 *
 * Bodies are shaped like what real clients push (containerd/buildkit OCI images and indexes,
 * Docker schema2 manifests and lists, ORAS-style artifacts with a subject); the tests check
 * the kind, media type, artifact type, subject, blobs and children read from each, foreign
 * layers, how the Content-Type and the body's mediaType decide the kind, and the refusal of
 * mismatched, ambiguous and schema1 manifests. Bodies altered one field at a time to hit each
 * other refusal are in test_manifest_refusals.c.
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

static const char docker_v2[] =
    "{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"" DOCKER_V2 "\",\n"
    "   \"config\": {\n"
    "      \"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n"
    "      \"size\": 7023,\n      \"digest\": \"" D_A "\"\n   },\n"
    "   \"layers\": [\n"
    "      {\"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
    "       \"size\": 32654, \"digest\": \"" D_B "\"},\n"
    "      {\"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
    "       \"size\": 16724, \"digest\": \"" D_C "\"},\n"
    "      {\"mediaType\": \"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\",\n"
    "       \"size\": 73109, \"digest\": \"" D_D "\",\n"
    "       \"urls\": [\"https://mcr.microsoft.com/v2/windows/blobs/" D_D "\"]}\n"
    "   ]\n}";

static const char docker_list[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" DOCKER_LIST "\",\"manifests\":["
    "{\"mediaType\":\"" DOCKER_V2 "\",\"size\":7143,\"digest\":\"" D_D "\","
    "\"platform\":{\"architecture\":\"ppc64le\",\"os\":\"linux\"}},"
    "{\"mediaType\":\"" DOCKER_V2 "\",\"size\":7682,\"digest\":\"" D_E "\","
    "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\",\"features\":[\"sse4\"]}}]}";

/* An ORAS-style artifact: artifactType, empty config, one blob, a subject and annotations. */
static const char artifact[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST "\","
    "\"artifactType\":\"application/vnd.example.sbom.v1+json\","
    "\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"" D_E "\","
    "\"size\":2,\"data\":\"e30=\"},"
    "\"layers\":[{\"mediaType\":\"application/spdx+json\",\"digest\":\"" D_B "\","
    "\"size\":4312}],"
    "\"subject\":{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"" D_A "\",\"size\":1234},"
    "\"annotations\": { \"org.opencontainers.image.created\" : \"2024-05-01T10:00:00Z\",\n"
    "  \"com.example.note\": \"caf\\u00e9 \\\"quoted\\\"\" }}";

static void test_oci_image(void **state)
{
    static const char body[] = OCI_IMAGE_WITH_CONFIG(CONFIG_OK);
    struct pt_manifest_info info;
    (void)state;

    assert_int_equal(pt_sample_parse(body, OCI_MANIFEST, &info), 0);
    assert_int_equal(info.kind, PT_MANIFEST_IMAGE);
    assert_string_equal(info.media_type, OCI_MANIFEST);
    assert_string_equal(info.artifact_type, "application/vnd.oci.image.config.v1+json");
    assert_int_equal(info.has_subject, 0);
    assert_null(info.annotations);
    assert_int_equal(info.nchildren, 0);
    assert_null(info.children);
    assert_int_equal(info.nblobs, 3);
    assert_string_equal(info.blobs[0].digest.hex, HEX_A);
    assert_string_equal(info.blobs[0].media_type, "application/vnd.oci.image.config.v1+json");
    assert_int_equal(info.blobs[0].size, 1469);
    assert_string_equal(info.blobs[1].digest.hex, HEX_B);
    assert_string_equal(info.blobs[1].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
    assert_int_equal(info.blobs[1].size, 3370706);
    assert_string_equal(info.blobs[2].digest.hex, HEX_C);
    assert_string_equal(info.blobs[2].media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
    assert_int_equal(info.blobs[2].size, 0);
    pt_manifest_info_free(&info);
    assert_null(info.blobs);
    assert_int_equal(info.nblobs, 0);
}

static void test_oci_index(void **state)
{
    struct pt_manifest_info info;
    (void)state;

    assert_int_equal(pt_sample_parse(pt_sample_oci_index, OCI_INDEX, &info), 0);
    assert_int_equal(info.kind, PT_MANIFEST_INDEX);
    assert_string_equal(info.media_type, OCI_INDEX);
    assert_string_equal(info.artifact_type, "");
    assert_int_equal(info.has_subject, 0);
    assert_int_equal(info.nblobs, 0);
    assert_null(info.blobs);
    assert_int_equal(info.nchildren, 3);
    assert_string_equal(info.children[0].digest.hex, HEX_A);
    assert_int_equal(info.children[0].size, 1234);
    assert_string_equal(info.children[0].media_type, OCI_MANIFEST);
    assert_string_equal(info.children[1].digest.hex, HEX_B);
    assert_int_equal(info.children[1].size, 1235);
    assert_string_equal(info.children[2].digest.hex, HEX_C);
    assert_int_equal(info.children[2].size, 566);
    assert_string_equal(info.annotations, "{\"org.opencontainers.image.ref.name\":\"1.0\"}");
    pt_manifest_info_free(&info);
}

static void test_oci_index_empty(void **state)
{
    struct pt_manifest_info info;
    (void)state;

    assert_int_equal(pt_sample_parse("{\"schemaVersion\":2,\"manifests\":[]}", OCI_INDEX, &info),
                     0);
    assert_int_equal(info.kind, PT_MANIFEST_INDEX);
    assert_int_equal(info.nchildren, 0);
    assert_null(info.children);
    pt_manifest_info_free(&info);
}

static void test_docker_v2(void **state)
{
    struct pt_manifest_info info;
    (void)state;

    assert_int_equal(pt_sample_parse(docker_v2, DOCKER_V2, &info), 0);
    assert_int_equal(info.kind, PT_MANIFEST_IMAGE);
    assert_string_equal(info.media_type, DOCKER_V2);
    assert_string_equal(info.artifact_type, "application/vnd.docker.container.image.v1+json");
    /* The foreign layer (with urls) is not a blob the registry must hold. */
    assert_int_equal(info.nblobs, 3);
    assert_int_equal(info.nforeign, 1);
    assert_string_equal(info.blobs[0].digest.hex, HEX_A);
    assert_int_equal(info.blobs[0].size, 7023);
    assert_string_equal(info.blobs[1].digest.hex, HEX_B);
    assert_string_equal(info.blobs[2].digest.hex, HEX_C);
    assert_null(info.annotations);
    pt_manifest_info_free(&info);
}

/* A layer with urls is not required whatever its type, between required ones; one of the
 * non-distributable types without urls is required like any other layer. */
#define LAYER(mt, d, extra) "{\"mediaType\":\"" mt "\",\"digest\":\"" d "\",\"size\":5" extra "}"
#define OCI_LAYERS(layers)                                                                         \
    "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST "\",\"config\":" CONFIG_OK                \
    ",\"layers\":[" layers "]}"
#define NONDIST      "application/vnd.oci.image.layer.nondistributable.v1.tar"
#define URLS(u)      ",\"urls\":[" u "]"
#define HTTPS_URL(d) "\"https://example.com/blobs/" d "\""

static void test_foreign_layers(void **state)
{
    static const char body[] = OCI_LAYERS(LAYER(NONDIST "+gzip", D_B, URLS(HTTPS_URL(D_B))) "," LAYER(
        "application/vnd.oci.image.layer.v1.tar", D_C,
        "") "," LAYER(NONDIST "+zstd", D_D,
                      URLS(HTTPS_URL(
                          D_D) ",\"http://mirror.example/x\"")) "," LAYER("application/"
                                                                          "vnd.oci.image.layer.v1."
                                                                          "tar+gzip",
                                                                          D_E,
                                                                          URLS(HTTPS_URL(
                                                                              D_E))) "," LAYER(NONDIST,
                                                                                               D_B,
                                                                                               ""));
    struct pt_manifest_info info;
    (void)state;

    assert_int_equal(pt_sample_parse(body, OCI_MANIFEST, &info), 0);
    assert_int_equal(info.nforeign, 3);
    assert_int_equal(info.nblobs, 3);
    assert_string_equal(info.blobs[0].digest.hex, HEX_A);
    assert_string_equal(info.blobs[1].digest.hex, HEX_C);
    assert_string_equal(info.blobs[2].digest.hex, HEX_B);
    assert_string_equal(info.blobs[2].media_type, NONDIST);
    assert_string_equal(info.artifact_type, "application/vnd.oci.image.config.v1+json");
    pt_manifest_info_free(&info);

    /* Only foreign layers: the config alone is required. */
    pt_sample_expect_rc(OCI_LAYERS(LAYER(NONDIST, D_B, URLS(HTTPS_URL(D_B)))), OCI_MANIFEST, 0);
    /* An empty urls array is no URL at all: the layer is required. */
    assert_int_equal(
        pt_sample_parse(OCI_LAYERS(LAYER(NONDIST, D_B, URLS(""))), OCI_MANIFEST, &info), 0);
    assert_int_equal(info.nblobs, 2);
    assert_int_equal(info.nforeign, 0);
    pt_manifest_info_free(&info);
    /* URLs of a layer the registry will not hold must be absolute http(s), no fragment. */
    pt_sample_expect_rc(OCI_LAYERS(LAYER(NONDIST, D_B, URLS("\"ftp://example.com/x\""))),
                        OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_LAYERS(LAYER(NONDIST, D_B, URLS("\"/v2/x/blobs/y\""))), OCI_MANIFEST,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_LAYERS(LAYER(NONDIST, D_B, URLS("\"https://\""))), OCI_MANIFEST,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_LAYERS(LAYER(NONDIST, D_B, URLS("\"https://e.com/x#frag\""))),
                        OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_LAYERS(LAYER(NONDIST, D_B, URLS(HTTPS_URL(D_B) ",1"))), OCI_MANIFEST,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(OCI_LAYERS(LAYER(NONDIST, D_B, URLS("\"HTTPS://E.COM/x\""))), OCI_MANIFEST,
                        0);
}

static void test_docker_list(void **state)
{
    struct pt_manifest_info info;
    (void)state;

    assert_int_equal(pt_sample_parse(docker_list, DOCKER_LIST, &info), 0);
    assert_int_equal(info.kind, PT_MANIFEST_INDEX);
    assert_string_equal(info.media_type, DOCKER_LIST);
    assert_string_equal(info.artifact_type, "");
    assert_int_equal(info.nchildren, 2);
    assert_string_equal(info.children[0].digest.hex, HEX_D);
    assert_string_equal(info.children[0].media_type, DOCKER_V2);
    assert_int_equal(info.children[0].size, 7143);
    assert_string_equal(info.children[1].digest.hex, HEX_E);
    assert_int_equal(info.children[1].size, 7682);
    pt_manifest_info_free(&info);
}

static void test_artifact(void **state)
{
    struct pt_manifest_info info;
    (void)state;

    assert_int_equal(pt_sample_parse(artifact, OCI_MANIFEST, &info), 0);
    assert_int_equal(info.kind, PT_MANIFEST_IMAGE);
    assert_string_equal(info.media_type, OCI_MANIFEST);
    assert_string_equal(info.artifact_type, "application/vnd.example.sbom.v1+json");
    assert_int_equal(info.has_subject, 1);
    assert_string_equal(info.subject.hex, HEX_A);
    assert_int_equal(info.nblobs, 2);
    assert_string_equal(info.blobs[0].media_type, PT_MT_OCI_EMPTY);
    assert_int_equal(info.blobs[0].size, 2);
    assert_string_equal(info.blobs[1].media_type, "application/spdx+json");
    /* Compact, key order kept, escapes re-encoded, UTF-8 passed through. */
    assert_string_equal(info.annotations,
                        "{\"org.opencontainers.image.created\":\"2024-05-01T10:00:00Z\","
                        "\"com.example.note\":\"caf\xc3\xa9 \\\"quoted\\\"\"}");
    pt_manifest_info_free(&info);
    assert_null(info.annotations);
}

static void test_artifact_variants(void **state)
{
    struct pt_manifest_info info;
    (void)state;

    /* Without artifactType the referrers API reports the config media type; layers: []. */
    assert_int_equal(
        pt_sample_parse("{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST "\","
                        "\"config\":{\"mediaType\":\"application/vnd.example.signature.v1+json\","
                        "\"digest\":\"" D_E "\",\"size\":2},\"layers\":[],"
                        "\"subject\":{\"mediaType\":\"" OCI_INDEX "\",\"digest\":\"" D_B "\","
                        "\"size\":10},\"annotations\":{}}",
                        OCI_MANIFEST, &info),
        0);
    assert_string_equal(info.artifact_type, "application/vnd.example.signature.v1+json");
    assert_int_equal(info.nblobs, 1);
    assert_int_equal(info.has_subject, 1);
    assert_string_equal(info.subject.hex, HEX_B);
    assert_string_equal(info.annotations, "{}");
    pt_manifest_info_free(&info);

    /* An index can be an artifact with a subject too (image-spec v1.1). */
    assert_int_equal(
        pt_sample_parse("{\"schemaVersion\":2,\"mediaType\":\"" OCI_INDEX "\","
                        "\"artifactType\":\"application/vnd.example.bundle\",\"manifests\":[],"
                        "\"subject\":{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"" D_C "\","
                        "\"size\":99}}",
                        OCI_INDEX, &info),
        0);
    assert_int_equal(info.kind, PT_MANIFEST_INDEX);
    assert_string_equal(info.artifact_type, "application/vnd.example.bundle");
    assert_int_equal(info.has_subject, 1);
    assert_string_equal(info.subject.hex, HEX_C);
    pt_manifest_info_free(&info);

    /* Docker schema2 does not define subject/artifactType/annotations: ignored there. */
    assert_int_equal(
        pt_sample_parse(
            "{\"schemaVersion\":2,\"mediaType\":\"" DOCKER_V2 "\","
            "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
            "\"digest\":\"" D_A "\",\"size\":1},\"layers\":[],"
            "\"artifactType\":5,\"annotations\":[1],"
            "\"subject\":{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"" D_C "\","
            "\"size\":99}}",
            DOCKER_V2, &info),
        0);
    assert_int_equal(info.has_subject, 0);
    assert_null(info.annotations);
    assert_string_equal(info.artifact_type, "application/vnd.docker.container.image.v1+json");
    pt_manifest_info_free(&info);
}

static void test_content_type_resolution(void **state)
{
    static const char image[] = OCI_IMAGE_WITH_CONFIG(CONFIG_OK);
    static const char bare_image[] = "{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[]}";
    static const char bare_index[] = "{\"schemaVersion\":2,\"manifests\":[]}";
    struct pt_manifest_info info;
    (void)state;

    /* Parameters, whitespace and case in the header do not matter. */
    assert_int_equal(pt_sample_parse(image,
                                     " Application/VND.OCI.Image.Manifest.v1+JSON ; charset=utf-8",
                                     &info),
                     0);
    assert_string_equal(info.media_type, OCI_MANIFEST);
    pt_manifest_info_free(&info);

    /* Without a header the body's mediaType decides; a header that is not a manifest type
     * is refused, whatever the body says. */
    assert_int_equal(pt_sample_parse(image, NULL, &info), 0);
    assert_string_equal(info.media_type, OCI_MANIFEST);
    pt_manifest_info_free(&info);
    assert_int_equal(pt_sample_parse(docker_list, "application/json", &info),
                     PT_E_MANIFEST_INVALID);
    assert_int_equal(pt_sample_parse(image, "text/plain", &info), PT_E_MANIFEST_INVALID);
    assert_int_equal(pt_sample_parse(bare_image, "application/octet-stream", &info),
                     PT_E_MANIFEST_INVALID);

    /* No body mediaType: a known header decides. */
    assert_int_equal(pt_sample_parse(bare_image, DOCKER_V2, &info), 0);
    assert_string_equal(info.media_type, DOCKER_V2);
    assert_int_equal(info.kind, PT_MANIFEST_IMAGE);
    pt_manifest_info_free(&info);
    assert_int_equal(pt_sample_parse(bare_index, DOCKER_LIST, &info), 0);
    assert_string_equal(info.media_type, DOCKER_LIST);
    pt_manifest_info_free(&info);

    /* Neither: inferred from structure. */
    assert_int_equal(pt_sample_parse(bare_image, NULL, &info), 0);
    assert_string_equal(info.media_type, OCI_MANIFEST);
    assert_int_equal(info.kind, PT_MANIFEST_IMAGE);
    pt_manifest_info_free(&info);
    assert_int_equal(pt_sample_parse(bare_index, NULL, &info), 0);
    assert_string_equal(info.media_type, OCI_INDEX);
    assert_int_equal(info.kind, PT_MANIFEST_INDEX);
    pt_manifest_info_free(&info);
    assert_int_equal(pt_sample_parse(bare_index, "", &info), 0);
    assert_string_equal(info.media_type, OCI_INDEX);
    pt_manifest_info_free(&info);

    /* Nothing to go on. */
    pt_sample_expect_rc("{\"schemaVersion\":2,\"layers\":[]}", "text/plain", PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2}", NULL, PT_E_UNSUPPORTED_MEDIA);

    /* A body mediaType that is not a manifest type cannot be served or checked. */
    pt_sample_expect_rc("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.example.thing\","
                        "\"config\":" CONFIG_OK ",\"layers\":[]}",
                        NULL, PT_E_UNSUPPORTED_MEDIA);
    /* A header that is not a manifest type is refused even when the body has one. */
    assert_int_equal(pt_sample_parse(image, "application/vnd.example.thing", &info),
                     PT_E_MANIFEST_INVALID);
}

static void test_mismatch(void **state)
{
    static const char image[] = OCI_IMAGE_WITH_CONFIG(CONFIG_OK);
    (void)state;

    pt_sample_expect_rc(image, OCI_INDEX, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(image, DOCKER_V2, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(pt_sample_oci_index, DOCKER_LIST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(docker_v2, OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc(docker_list, OCI_INDEX, PT_E_MANIFEST_INVALID);
    /* Unknown body mediaType against a known header is a mismatch too. */
    pt_sample_expect_rc("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.example.thing\","
                        "\"config\":" CONFIG_OK ",\"layers\":[]}",
                        OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    /* mediaType must be a string. */
    pt_sample_expect_rc("{\"schemaVersion\":2,\"mediaType\":7,\"config\":" CONFIG_OK
                        ",\"layers\":[]}",
                        NULL, PT_E_MANIFEST_INVALID);
    /* Structure must match the declared type. */
    pt_sample_expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[]}", OCI_INDEX,
                        PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"manifests\":[]}", OCI_MANIFEST,
                        PT_E_MANIFEST_INVALID);
}

static void test_ambiguous(void **state)
{
    (void)state;

    /* CVE-2021-41190: a document must not read as both an image and an index. */
    pt_sample_expect_rc("{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST
                        "\",\"config\":" CONFIG_OK ",\"layers\":[],\"manifests\":[]}",
                        NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"mediaType\":\"" OCI_INDEX "\",\"manifests\":[],"
                        "\"layers\":[]}",
                        NULL, PT_E_MANIFEST_INVALID);
    pt_sample_expect_rc("{\"schemaVersion\":2,\"mediaType\":\"" OCI_INDEX "\",\"manifests\":[],"
                        "\"config\":" CONFIG_OK "}",
                        NULL, PT_E_MANIFEST_INVALID);
    /* Inferred as an index, and then the config makes it ambiguous. */
    pt_sample_expect_rc("{\"schemaVersion\":2,\"manifests\":[],\"config\":" CONFIG_OK
                        ",\"layers\":[]}",
                        NULL, PT_E_MANIFEST_INVALID);
}

static void test_schema1_refused(void **state)
{
    static const char schema1[] =
        "{\"schemaVersion\":1,\"name\":\"library/hello\",\"tag\":\"latest\","
        "\"architecture\":\"amd64\",\"fsLayers\":[{\"blobSum\":\"" D_A "\"}],"
        "\"history\":[{\"v1Compatibility\":\"{}\"}]}";
    (void)state;

    pt_sample_expect_rc(schema1, "application/vnd.docker.distribution.manifest.v1+json",
                        PT_E_UNSUPPORTED_MEDIA);
    pt_sample_expect_rc(schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws",
                        PT_E_UNSUPPORTED_MEDIA);
    pt_sample_expect_rc(schema1, "application/json", PT_E_UNSUPPORTED_MEDIA);
    pt_sample_expect_rc(schema1, NULL, PT_E_UNSUPPORTED_MEDIA);
    /* Refused by header before the body is even read. */
    pt_sample_expect_rc("not json", "application/vnd.docker.distribution.manifest.v1+prettyjws",
                        PT_E_UNSUPPORTED_MEDIA);
    /* A v2 body claiming the schema1 media type. */
    pt_sample_expect_rc("{\"schemaVersion\":2,"
                        "\"mediaType\":\"application/vnd.docker.distribution.manifest.v1+json\","
                        "\"config\":" CONFIG_OK ",\"layers\":[]}",
                        NULL, PT_E_UNSUPPORTED_MEDIA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oci_image),
        cmocka_unit_test(test_oci_index),
        cmocka_unit_test(test_oci_index_empty),
        cmocka_unit_test(test_docker_v2),
        cmocka_unit_test(test_foreign_layers),
        cmocka_unit_test(test_docker_list),
        cmocka_unit_test(test_artifact),
        cmocka_unit_test(test_artifact_variants),
        cmocka_unit_test(test_content_type_resolution),
        cmocka_unit_test(test_mismatch),
        cmocka_unit_test(test_ambiguous),
        cmocka_unit_test(test_schema1_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
