/*
 * test_manifest.c - unit tests for the manifest parser/validator (node/manifest.c).
 *
 * Bodies are shaped like what real clients push (containerd/buildkit OCI images and indexes,
 * Docker schema2 manifests and lists, ORAS-style artifacts with a subject), then altered one
 * field at a time to hit each refusal.
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

#define HEX_A "a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
#define HEX_B "b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"
#define HEX_C "c0ffee0000000000000000000000000000000000000000000000000000000001"
#define HEX_D "d4b8b3e1f0d8e3f8b3f2a1c9e7d6c5b4a39281706f5e4d3c2b1a098765432100"
#define HEX_E "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
#define D_A   "sha256:" HEX_A
#define D_B   "sha256:" HEX_B
#define D_C   "sha256:" HEX_C
#define D_D   "sha256:" HEX_D
#define D_E   "sha256:" HEX_E

#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_INDEX    "application/vnd.oci.image.index.v1+json"
#define DOCKER_V2    "application/vnd.docker.distribution.manifest.v2+json"
#define DOCKER_LIST  "application/vnd.docker.distribution.manifest.list.v2+json"

/* Parses a NUL-terminated body; on failure checks that *info was left zeroed. */
static int parse(const char *body, const char *ct, struct pt_manifest_info *info)
{
    static const struct pt_manifest_info zero;
    int rc = pt_manifest_parse(body, strlen(body), ct, info);
    if (rc != 0)
        assert_memory_equal(info, &zero, sizeof(zero));
    return rc;
}

static void expect_rc(const char *body, const char *ct, int want)
{
    struct pt_manifest_info info;
    assert_int_equal(parse(body, ct, &info), want);
    pt_manifest_info_free(&info);
}

/* An OCI image manifest as containerd/buildkit push it, with an arbitrary descriptor
 * substituted for the config so tests can vary it. */
#define OCI_IMAGE_WITH_CONFIG(config)                                                              \
    "{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"" OCI_MANIFEST "\",\n"                         \
    "  \"config\": " config ",\n"                                                                  \
    "  \"layers\": [\n"                                                                            \
    "    {\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\",\n"                       \
    "     \"digest\": \"" D_B "\", \"size\": 3370706},\n"                                          \
    "    {\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+zstd\",\n"                       \
    "     \"digest\": \"" D_C "\", \"size\": 0,\n"                                                 \
    "     \"annotations\": {\"org.opencontainers.image.title\": \"app.tar\"}}\n"                   \
    "  ]\n}\n"

#define CONFIG_MT_OCI "\"mediaType\": \"application/vnd.oci.image.config.v1+json\""

#define CONFIG_OK "{" CONFIG_MT_OCI ", \"digest\": \"" D_A "\", \"size\": 1469}"

/* A config descriptor with the given size literal. */
#define CONFIG_SIZE(s) "{" CONFIG_MT_OCI ", \"digest\": \"" D_A "\", \"size\": " s "}"

/* A config descriptor with the given digest literal. */
#define CONFIG_DIGEST(d) "{" CONFIG_MT_OCI ", \"digest\": " d ", \"size\": 7}"

/* A config descriptor with the given mediaType literal. */
#define CONFIG_MT(m) "{\"mediaType\": " m ", \"digest\": \"" D_A "\", \"size\": 7}"

static const char oci_index[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" OCI_INDEX "\",\"manifests\":["
    "{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"" D_A "\",\"size\":1234,"
    "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
    "{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"" D_B "\",\"size\":1235,"
    "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"" D_C "\",\"size\":566,"
    "\"annotations\":{\"vnd.docker.reference.digest\":\"" D_A "\","
    "\"vnd.docker.reference.type\":\"attestation-manifest\"},"
    "\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}}],"
    "\"annotations\":{\"org.opencontainers.image.ref.name\":\"1.0\"}}";

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

    assert_int_equal(parse(body, OCI_MANIFEST, &info), 0);
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

    assert_int_equal(parse(oci_index, OCI_INDEX, &info), 0);
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

    assert_int_equal(parse("{\"schemaVersion\":2,\"manifests\":[]}", OCI_INDEX, &info), 0);
    assert_int_equal(info.kind, PT_MANIFEST_INDEX);
    assert_int_equal(info.nchildren, 0);
    assert_null(info.children);
    pt_manifest_info_free(&info);
}

static void test_docker_v2(void **state)
{
    struct pt_manifest_info info;
    (void)state;

    assert_int_equal(parse(docker_v2, DOCKER_V2, &info), 0);
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

    assert_int_equal(parse(body, OCI_MANIFEST, &info), 0);
    assert_int_equal(info.nforeign, 3);
    assert_int_equal(info.nblobs, 3);
    assert_string_equal(info.blobs[0].digest.hex, HEX_A);
    assert_string_equal(info.blobs[1].digest.hex, HEX_C);
    assert_string_equal(info.blobs[2].digest.hex, HEX_B);
    assert_string_equal(info.blobs[2].media_type, NONDIST);
    assert_string_equal(info.artifact_type, "application/vnd.oci.image.config.v1+json");
    pt_manifest_info_free(&info);

    /* Only foreign layers: the config alone is required. */
    expect_rc(OCI_LAYERS(LAYER(NONDIST, D_B, URLS(HTTPS_URL(D_B)))), OCI_MANIFEST, 0);
    /* An empty urls array is no URL at all: the layer is required. */
    assert_int_equal(parse(OCI_LAYERS(LAYER(NONDIST, D_B, URLS(""))), OCI_MANIFEST, &info), 0);
    assert_int_equal(info.nblobs, 2);
    assert_int_equal(info.nforeign, 0);
    pt_manifest_info_free(&info);
    /* URLs of a layer the registry will not hold must be absolute http(s), no fragment. */
    expect_rc(OCI_LAYERS(LAYER(NONDIST, D_B, URLS("\"ftp://example.com/x\""))), OCI_MANIFEST,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_LAYERS(LAYER(NONDIST, D_B, URLS("\"/v2/x/blobs/y\""))), OCI_MANIFEST,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_LAYERS(LAYER(NONDIST, D_B, URLS("\"https://\""))), OCI_MANIFEST,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_LAYERS(LAYER(NONDIST, D_B, URLS("\"https://e.com/x#frag\""))), OCI_MANIFEST,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_LAYERS(LAYER(NONDIST, D_B, URLS(HTTPS_URL(D_B) ",1"))), OCI_MANIFEST,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_LAYERS(LAYER(NONDIST, D_B, URLS("\"HTTPS://E.COM/x\""))), OCI_MANIFEST, 0);
}

static void test_docker_list(void **state)
{
    struct pt_manifest_info info;
    (void)state;

    assert_int_equal(parse(docker_list, DOCKER_LIST, &info), 0);
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

    assert_int_equal(parse(artifact, OCI_MANIFEST, &info), 0);
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
        parse("{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST "\","
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
    assert_int_equal(parse("{\"schemaVersion\":2,\"mediaType\":\"" OCI_INDEX "\","
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
        parse("{\"schemaVersion\":2,\"mediaType\":\"" DOCKER_V2 "\","
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
    assert_int_equal(
        parse(image, " Application/VND.OCI.Image.Manifest.v1+JSON ; charset=utf-8", &info), 0);
    assert_string_equal(info.media_type, OCI_MANIFEST);
    pt_manifest_info_free(&info);

    /* Without a header the body's mediaType decides; a header that is not a manifest type
     * is refused, whatever the body says. */
    assert_int_equal(parse(image, NULL, &info), 0);
    assert_string_equal(info.media_type, OCI_MANIFEST);
    pt_manifest_info_free(&info);
    assert_int_equal(parse(docker_list, "application/json", &info), PT_E_MANIFEST_INVALID);
    assert_int_equal(parse(image, "text/plain", &info), PT_E_MANIFEST_INVALID);
    assert_int_equal(parse(bare_image, "application/octet-stream", &info), PT_E_MANIFEST_INVALID);

    /* No body mediaType: a known header decides. */
    assert_int_equal(parse(bare_image, DOCKER_V2, &info), 0);
    assert_string_equal(info.media_type, DOCKER_V2);
    assert_int_equal(info.kind, PT_MANIFEST_IMAGE);
    pt_manifest_info_free(&info);
    assert_int_equal(parse(bare_index, DOCKER_LIST, &info), 0);
    assert_string_equal(info.media_type, DOCKER_LIST);
    pt_manifest_info_free(&info);

    /* Neither: inferred from structure. */
    assert_int_equal(parse(bare_image, NULL, &info), 0);
    assert_string_equal(info.media_type, OCI_MANIFEST);
    assert_int_equal(info.kind, PT_MANIFEST_IMAGE);
    pt_manifest_info_free(&info);
    assert_int_equal(parse(bare_index, NULL, &info), 0);
    assert_string_equal(info.media_type, OCI_INDEX);
    assert_int_equal(info.kind, PT_MANIFEST_INDEX);
    pt_manifest_info_free(&info);
    assert_int_equal(parse(bare_index, "", &info), 0);
    assert_string_equal(info.media_type, OCI_INDEX);
    pt_manifest_info_free(&info);

    /* Nothing to go on. */
    expect_rc("{\"schemaVersion\":2,\"layers\":[]}", "text/plain", PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2}", NULL, PT_E_UNSUPPORTED_MEDIA);

    /* A body mediaType that is not a manifest type cannot be served or checked. */
    expect_rc("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.example.thing\","
              "\"config\":" CONFIG_OK ",\"layers\":[]}",
              NULL, PT_E_UNSUPPORTED_MEDIA);
    /* A header that is not a manifest type is refused even when the body has one. */
    assert_int_equal(parse(image, "application/vnd.example.thing", &info), PT_E_MANIFEST_INVALID);
}

static void test_mismatch(void **state)
{
    static const char image[] = OCI_IMAGE_WITH_CONFIG(CONFIG_OK);
    (void)state;

    expect_rc(image, OCI_INDEX, PT_E_MANIFEST_INVALID);
    expect_rc(image, DOCKER_V2, PT_E_MANIFEST_INVALID);
    expect_rc(oci_index, DOCKER_LIST, PT_E_MANIFEST_INVALID);
    expect_rc(docker_v2, OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    expect_rc(docker_list, OCI_INDEX, PT_E_MANIFEST_INVALID);
    /* Unknown body mediaType against a known header is a mismatch too. */
    expect_rc("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.example.thing\","
              "\"config\":" CONFIG_OK ",\"layers\":[]}",
              OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    /* mediaType must be a string. */
    expect_rc("{\"schemaVersion\":2,\"mediaType\":7,\"config\":" CONFIG_OK ",\"layers\":[]}", NULL,
              PT_E_MANIFEST_INVALID);
    /* Structure must match the declared type. */
    expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[]}", OCI_INDEX,
              PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"manifests\":[]}", OCI_MANIFEST, PT_E_MANIFEST_INVALID);
}

static void test_ambiguous(void **state)
{
    (void)state;

    /* CVE-2021-41190: a document must not read as both an image and an index. */
    expect_rc("{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST "\",\"config\":" CONFIG_OK
              ",\"layers\":[],\"manifests\":[]}",
              NULL, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"mediaType\":\"" OCI_INDEX "\",\"manifests\":[],"
              "\"layers\":[]}",
              NULL, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"mediaType\":\"" OCI_INDEX "\",\"manifests\":[],"
              "\"config\":" CONFIG_OK "}",
              NULL, PT_E_MANIFEST_INVALID);
    /* Inferred as an index, and then the config makes it ambiguous. */
    expect_rc("{\"schemaVersion\":2,\"manifests\":[],\"config\":" CONFIG_OK ",\"layers\":[]}", NULL,
              PT_E_MANIFEST_INVALID);
}

static void test_schema1_refused(void **state)
{
    static const char schema1[] =
        "{\"schemaVersion\":1,\"name\":\"library/hello\",\"tag\":\"latest\","
        "\"architecture\":\"amd64\",\"fsLayers\":[{\"blobSum\":\"" D_A "\"}],"
        "\"history\":[{\"v1Compatibility\":\"{}\"}]}";
    (void)state;

    expect_rc(schema1, "application/vnd.docker.distribution.manifest.v1+json",
              PT_E_UNSUPPORTED_MEDIA);
    expect_rc(schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws",
              PT_E_UNSUPPORTED_MEDIA);
    expect_rc(schema1, "application/json", PT_E_UNSUPPORTED_MEDIA);
    expect_rc(schema1, NULL, PT_E_UNSUPPORTED_MEDIA);
    /* Refused by header before the body is even read. */
    expect_rc("not json", "application/vnd.docker.distribution.manifest.v1+prettyjws",
              PT_E_UNSUPPORTED_MEDIA);
    /* A v2 body claiming the schema1 media type. */
    expect_rc("{\"schemaVersion\":2,"
              "\"mediaType\":\"application/vnd.docker.distribution.manifest.v1+json\","
              "\"config\":" CONFIG_OK ",\"layers\":[]}",
              NULL, PT_E_UNSUPPORTED_MEDIA);
}

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
    expect_rc("{\"schemaVersion\":2,\"manifests\":[]} {}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"manifests\":[],}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    expect_rc("{'schemaVersion':2,'manifests':[]}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    /* Invalid UTF-8 and NUL inside strings. */
    expect_rc("{\"schemaVersion\":2,\"manifests\":[],\"x\":\"\xc3\x28\"}", OCI_INDEX,
              PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"manifests\":[],\"x\":\"a\\u0000b\"}", OCI_INDEX,
              PT_E_MANIFEST_INVALID);
    static const char with_nul[] = "{\"schemaVersion\":2,\"manifests\":[]}\0";
    assert_int_equal(pt_manifest_parse(with_nul, sizeof(with_nul), OCI_INDEX, &info),
                     PT_E_MANIFEST_INVALID);
    /* Duplicate keys, top level and nested. */
    expect_rc("{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}", OCI_INDEX,
              PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MANIFEST
              "\",\"digest\":\"" D_A "\",\"digest\":\"" D_B "\",\"size\":1}]}",
              OCI_INDEX, PT_E_MANIFEST_INVALID);
}

static void test_not_object(void **state)
{
    (void)state;

    expect_rc("[]", OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    expect_rc("[{\"schemaVersion\":2,\"manifests\":[]}]", OCI_INDEX, PT_E_MANIFEST_INVALID);
    expect_rc("\"string\"", OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    expect_rc("2", OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    expect_rc("null", NULL, PT_E_MANIFEST_INVALID);
    expect_rc("   ", NULL, PT_E_MANIFEST_INVALID);
}

static void test_schema_version(void **state)
{
    (void)state;

    expect_rc("{\"manifests\":[]}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":3,\"manifests\":[]}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":0,\"manifests\":[]}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":\"2\",\"manifests\":[]}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2.0,\"manifests\":[]}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":null,\"manifests\":[]}", OCI_INDEX, PT_E_MANIFEST_INVALID);
}

static void test_missing_fields(void **state)
{
    (void)state;

    /* Image manifest: config and layers are required, with the right types. */
    expect_rc("{\"schemaVersion\":2,\"layers\":[]}", OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK "}", OCI_MANIFEST,
              PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK "}", DOCKER_V2, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":{}}", OCI_MANIFEST,
              PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":null}", OCI_MANIFEST,
              PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"config\":[],\"layers\":[]}", OCI_MANIFEST,
              PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"config\":null,\"layers\":[]}", OCI_MANIFEST,
              PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[null]}", OCI_MANIFEST,
              PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[\"" D_B "\"]}",
              OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    /* Index: manifests is required and must be an array of descriptors. */
    expect_rc("{\"schemaVersion\":2}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"manifests\":{}}", OCI_INDEX, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"manifests\":[{}]}", DOCKER_LIST, PT_E_MANIFEST_INVALID);
    /* Descriptor: mediaType, digest and size are each required. */
    expect_rc(OCI_IMAGE_WITH_CONFIG("{\"digest\":\"" D_A "\",\"size\":7}"), NULL,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"size\":7}"), NULL,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A "\"}"), NULL,
              PT_E_MANIFEST_INVALID);
    /* Optional descriptor fields must have their defined types. */
    expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A
                                    "\",\"size\":7,\"urls\":\"https://example.com\"}"),
              NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A
                                    "\",\"size\":7,\"urls\":[1]}"),
              NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A
                                    "\",\"size\":7,\"annotations\":{\"k\":1}}"),
              NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A
                                    "\",\"size\":7,\"data\":{}}"),
              NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A
                                    "\",\"size\":7,\"platform\":\"linux/amd64\"}"),
              NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A
                                    "\",\"size\":7,\"artifactType\":\"nope\"}"),
              NULL, PT_E_MANIFEST_INVALID);
    /* Unknown fields are ignored, whatever their type. */
    expect_rc(OCI_IMAGE_WITH_CONFIG("{\"mediaType\":\"a/b\",\"digest\":\"" D_A
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

    assert_int_equal(parse(image, OCI_MANIFEST, &info), 0);
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

    assert_int_equal(parse(index, OCI_INDEX, &info), 0);
    assert_int_equal(info.nchildren, 1);
    assert_int_equal(info.children[0].digest.algo, PT_DIGEST_SHA512);
    assert_string_equal(info.children[0].digest.hex, HEX_B HEX_C);
    pt_manifest_info_free(&info);
}

static void test_bad_digests(void **state)
{
    (void)state;

    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"sha384:" HEX_A HEX_B "\"")), NULL,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"sha512:" HEX_A "\"")), NULL,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"sha256:"
                                                  "A3ED95CAEB02FFE68CDD9FD84406680AE93D633CB16422D"
                                                  "00E8A7C22955B46D4\"")),
              NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"sha256:" HEX_A "0\"")), NULL,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"sha256:a3ed95\"")), NULL,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"" HEX_A "\"")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"sha256:\"")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("\"\"")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("null")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("42")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_DIGEST("[\"" D_A "\"]")), NULL, PT_E_MANIFEST_INVALID);
    /* A bad digest in the last layer or child, and in the subject. */
    expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":["
              "{\"mediaType\":\"a/b\",\"digest\":\"" D_B "\",\"size\":1},"
              "{\"mediaType\":\"a/b\",\"digest\":\"sha256:zz\",\"size\":1}]}",
              OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"manifests\":["
              "{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"" D_B "\",\"size\":1},"
              "{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"md5:abc\",\"size\":1}]}",
              OCI_INDEX, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[],"
              "\"subject\":{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"sha256:" HEX_A
              "x\",\"size\":1}}",
              OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[],"
              "\"subject\":{\"mediaType\":\"" OCI_MANIFEST "\",\"size\":1}}",
              OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[],"
              "\"subject\":{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"" D_A "\"}}",
              OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"config\":" CONFIG_OK ",\"layers\":[],"
              "\"subject\":\"" D_A "\"}",
              OCI_MANIFEST, PT_E_MANIFEST_INVALID);
}

static void test_sizes(void **state)
{
    struct pt_manifest_info info;
    (void)state;

    /* 2^53 - 1 is the largest exact size; 2^53 and beyond are refused. */
    assert_int_equal(parse(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("9007199254740991")), NULL, &info), 0);
    assert_true(info.blobs[0].size == PT_MANIFEST_MAX_SIZE);
    pt_manifest_info_free(&info);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("9007199254740992")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("9223372036854775807")), NULL,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("9223372036854775808")), NULL,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("18446744073709551616")), NULL,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("-1")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("-9223372036854775808")), NULL,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("1.5")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("7.0")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("1e3")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("\"7\"")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("null")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("true")), NULL, PT_E_MANIFEST_INVALID);
    assert_int_equal(parse(OCI_IMAGE_WITH_CONFIG(CONFIG_SIZE("-0")), NULL, &info), 0);
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

    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"text/plain\"")), NULL, 0);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"application/vnd.a!#$&-^_.+b\"")), NULL, 0);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"notamediatype\"")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"application/\"")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"/json\"")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"application/a/b\"")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"application/.json\"")), NULL,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"text/plain; charset=utf-8\"")), NULL,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"\"")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("7")), NULL, PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"a/b\\r\\nX-Evil: 1\"")), NULL,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"application/caf\xc3\xa9\"")), NULL,
              PT_E_MANIFEST_INVALID);
    expect_rc(OCI_IMAGE_WITH_CONFIG(CONFIG_MT("\"a/b\\u0000c\"")), NULL, PT_E_MANIFEST_INVALID);

    /* 127 characters fit the field; 128 do not. */
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"config\":{\"mediaType\":%s,"
             "\"digest\":\"" D_A "\",\"size\":1},\"layers\":[]}",
             max_mt);
    assert_int_equal(parse(body, OCI_MANIFEST, &info), 0);
    assert_int_equal(strlen(info.blobs[0].media_type), 127);
    assert_int_equal(strlen(info.artifact_type), 127);
    pt_manifest_info_free(&info);
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"config\":{\"mediaType\":%s,"
             "\"digest\":\"" D_A "\",\"size\":1},\"layers\":[]}",
             long_mt);
    expect_rc(body, OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"artifactType\":%s,"
             "\"config\":" CONFIG_OK ",\"layers\":[]}",
             long_mt);
    expect_rc(body, OCI_MANIFEST, PT_E_MANIFEST_INVALID);

    /* artifactType is checked the same way (it is returned to referrers clients). */
    expect_rc("{\"schemaVersion\":2,\"artifactType\":\"a/b\\r\\nX: y\",\"config\":" CONFIG_OK
              ",\"layers\":[]}",
              OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"artifactType\":null,\"config\":" CONFIG_OK ",\"layers\":[]}",
              OCI_MANIFEST, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"artifactType\":\"\",\"manifests\":[]}", OCI_INDEX,
              PT_E_MANIFEST_INVALID);
}

static void test_annotations(void **state)
{
    (void)state;

    expect_rc("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"k\":1}}", OCI_INDEX,
              PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"k\":{\"n\":\"v\"}}}",
              OCI_INDEX, PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":[\"k\",\"v\"]}", OCI_INDEX,
              PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":null}", OCI_INDEX,
              PT_E_MANIFEST_INVALID);
    expect_rc("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"k\":\"v\",\"k\":\"w\"}}",
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
    assert_int_equal(parse(body, OCI_INDEX, &info), 0);
    assert_int_equal(info.nchildren, PT_MANIFEST_MAX_REFS);
    assert_int_equal(info.children[9999].size, 9999);
    assert_string_equal(info.children[9999].digest.hex,
                        "000000000000000000000000000000000000000000000000000000000000270f");
    pt_manifest_info_free(&info);
    free(body);

    body = many_refs(1, PT_MANIFEST_MAX_REFS + 1);
    expect_rc(body, OCI_INDEX, PT_E_MANIFEST_INVALID);
    free(body);

    /* The config counts: 1 + 9999 layers is the most an image may reference. */
    body = many_refs(0, PT_MANIFEST_MAX_REFS - 1);
    assert_int_equal(parse(body, OCI_MANIFEST, &info), 0);
    assert_int_equal(info.nblobs, PT_MANIFEST_MAX_REFS);
    assert_string_equal(info.blobs[0].digest.hex, HEX_A);
    assert_int_equal(info.blobs[PT_MANIFEST_MAX_REFS - 1].size, PT_MANIFEST_MAX_REFS - 2);
    pt_manifest_info_free(&info);
    free(body);

    body = many_refs(0, PT_MANIFEST_MAX_REFS);
    expect_rc(body, OCI_MANIFEST, PT_E_MANIFEST_INVALID);
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
    expect_rc(body, OCI_INDEX, 0);
    free(body);
    body = nested(PT_MANIFEST_MAX_DEPTH, "[", "]");
    expect_rc(body, OCI_INDEX, PT_E_MANIFEST_INVALID);
    free(body);
    body = nested(PT_MANIFEST_MAX_DEPTH, "{\"a\":", "}");
    expect_rc(body, OCI_INDEX, PT_E_MANIFEST_INVALID);
    free(body);
    /* Far deeper than the parser's own limit, and unterminated. */
    body = nested(100000, "[", "");
    expect_rc(body, OCI_INDEX, PT_E_MANIFEST_INVALID);
    free(body);

    /* Brackets inside strings (with escaped quotes) are not nesting. */
    struct buf b = {0};
    buf_add(&b, "{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"k\":\"\\\"");
    for (int i = 0; i < 200; i++)
        buf_add(&b, "[{");
    buf_add(&b, "\\\\\"}}");
    expect_rc(b.p, OCI_INDEX, 0);
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

    assert_int_equal(pt_manifest_parse(oci_index, strlen(oci_index), OCI_INDEX, NULL),
                     PT_E_INTERNAL);
    assert_int_equal(pt_manifest_parse(NULL, 10, OCI_INDEX, &info), PT_E_INTERNAL);
    pt_manifest_info_free(NULL);
    memset(&info, 0, sizeof(info));
    pt_manifest_info_free(&info);
    /* A failed parse leaves a previously used struct zeroed, not dangling. */
    assert_int_equal(parse(oci_index, OCI_INDEX, &info), 0);
    pt_manifest_info_free(&info);
    assert_int_equal(
        parse("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"k\":1}}", OCI_INDEX, &info),
        PT_E_MANIFEST_INVALID);
    pt_manifest_info_free(&info);
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
