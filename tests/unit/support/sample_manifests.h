/*
 * sample_manifests.h - manifest bodies shaped like what real clients push, and the parse
 * wrappers the manifest parser tests check them with.
 *
 * The digests (HEX_*, D_*) and media types are literals so bodies can be built by string
 * concatenation; OCI_IMAGE_WITH_CONFIG and the CONFIG_* descriptors let a test vary one field
 * of an otherwise valid image manifest. The macros keep the short names the tests were written
 * with: they exist only for tests/unit.
 */
#ifndef PT_TEST_SAMPLE_MANIFESTS_H
#define PT_TEST_SAMPLE_MANIFESTS_H

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

/* A containerd/buildkit multi-platform OCI index with an attestation manifest. */
extern const char pt_sample_oci_index[];

/* Parses a NUL-terminated body; on failure checks that *info was left zeroed. */
int pt_sample_parse(const char *body, const char *ct, struct pt_manifest_info *info);

/* Parses body (borrowed) as ct and expects want; frees what the parse produced. */
void pt_sample_expect_rc(const char *body, const char *ct, int want);

#endif
