/*
 * sample_manifests.c - the shared sample index and the parse wrappers (see
 * sample_manifests.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sample_manifests.h"

const char pt_sample_oci_index[] =
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

int pt_sample_parse(const char *body, const char *ct, struct pt_manifest_info *info)
{
    static const struct pt_manifest_info zero;
    int rc = pt_manifest_parse(body, strlen(body), ct, info);
    if (rc != 0)
        assert_memory_equal(info, &zero, sizeof(zero));
    return rc;
}

void pt_sample_expect_rc(const char *body, const char *ct, int want)
{
    struct pt_manifest_info info;
    assert_int_equal(pt_sample_parse(body, ct, &info), want);
    pt_manifest_info_free(&info);
}
