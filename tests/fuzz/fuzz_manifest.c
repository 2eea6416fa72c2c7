/*
 * fuzz_manifest.c - libFuzzer driver for node/oci/manifest.h.
 *
 * Input layout: byte 0 picks the Content-Type header value; its low 4 bits index
 * content_types[] below, so the ASCII digits '0'..'9' and ':'..'?' select entries 0..15 and
 * seed files stay readable. Entry 15 ('?') reads the Content-Type from the input itself, up
 * to the first '\n'. The rest is the body, passed as a heap copy of exactly its length (the
 * parser must not need a terminator), so AddressSanitizer sees any read past it.
 *
 * Checked on every outcome:
 *   - the return code is 0 or one of the errors manifest.h lists for these arguments;
 *   - on failure *out is all zero bytes (manifest.h: "left zeroed and owns nothing");
 *   - a Docker schema 1 Content-Type is always PT_E_UNSUPPORTED_MEDIA.
 * Checked on success, against manifest.h and against an independent jansson parse of the body:
 *   - media_type is one of the four known types, spelled canonically, agreeing with kind, with
 *     a known Content-Type, and (ignoring case) with the body's mediaType when present;
 *   - an image has config + layers (blobs[0] is config, layers with urls left out and counted
 *     in nforeign), an index has manifests[], never both, and the counts, digests and sizes
 *     match the body's descriptors in order;
 *   - every descriptor has a valid sha256 or sha512 digest, a size <= 2^53 - 1 and an RFC 6838
 *     media type; artifact_type is "" or such a media type;
 *   - subject and annotations come only from OCI documents and match the body; annotations is
 *     compact JSON text of an object of strings;
 *   - a second parse of the same input gives an identical result (the FSM relies on this).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "digest.h"
#include "err.h"
#include "fuzz_check.h"
#include "manifest.h"

#define CT_FROM_INPUT 15
#define CT_MAX        512 /* longest Content-Type taken from the input */

struct ct_case {
    const char *value;     /* header value, NULL for none */
    const char *canonical; /* known manifest type it names, else NULL */
    int schema1;           /* 1 if it names Docker schema 1 */
};

static const struct ct_case content_types[16] = {
    {NULL, NULL, 0},
    {PT_MT_OCI_MANIFEST, PT_MT_OCI_MANIFEST, 0},
    {PT_MT_OCI_INDEX, PT_MT_OCI_INDEX, 0},
    {PT_MT_DOCKER_MANIFEST, PT_MT_DOCKER_MANIFEST, 0},
    {PT_MT_DOCKER_LIST, PT_MT_DOCKER_LIST, 0},
    {"application/vnd.docker.distribution.manifest.v1+json", NULL, 1},
    {" application/vnd.docker.distribution.manifest.v1+prettyjws; charset=utf-8", NULL, 1},
    {"application/json", NULL, 0},
    {"", NULL, 0},
    {" APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON ; charset=utf-8", PT_MT_OCI_MANIFEST, 0},
    {"application/vnd.oci.image.index.v1+json;foo=bar", PT_MT_OCI_INDEX, 0},
    {"\tapplication/vnd.docker.distribution.manifest.v2+json\t", PT_MT_DOCKER_MANIFEST, 0},
    {"application/vnd.oci.image.manifest.v1+json+extra", NULL, 0},
    {"application/vnd.oci.artifact.manifest.v1+json", NULL, 0},
    {"; application/vnd.oci.image.manifest.v1+json", NULL, 0},
    {NULL, NULL, 0}, /* CT_FROM_INPUT */
};

static const char *const known[4] = {PT_MT_OCI_MANIFEST, PT_MT_OCI_INDEX, PT_MT_DOCKER_MANIFEST,
                                     PT_MT_DOCKER_LIST};

static int eq_ci(const char *a, const char *b)
{
    for (;; a++, b++) {
        char x = *a, y = *b;
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (char)(y - 'A' + 'a');
        if (x != y)
            return 0;
        if (x == '\0')
            return 1;
    }
}

/* RFC 6838 section 4.2 restricted-name: 1..127 of [A-Za-z0-9!#$&^_.+-], the first alnum. */
static int restricted_name(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > 127)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (alnum)
            continue;
        if (i == 0 || c == '\0' || strchr("!#$&^_.+-", c) == NULL)
            return 0;
    }
    return 1;
}

/* A NUL-terminated "type/subtype" within a char[128] field. */
static void check_media_type(const char mt[128])
{
    const char *end = memchr(mt, '\0', 128);
    const char *slash;

    PT_FUZZ_CHECK(end != NULL);
    slash = memchr(mt, '/', (size_t)(end - mt));
    PT_FUZZ_CHECK(slash != NULL);
    PT_FUZZ_CHECK(restricted_name(mt, (size_t)(slash - mt)));
    PT_FUZZ_CHECK(restricted_name(slash + 1, (size_t)(end - slash - 1)));
}

static void check_digest(const struct pt_digest *d)
{
    size_t i;

    size_t n = pt_digest_hex_len(d->algo);
    for (i = 0; i < n; i++) {
        char c = d->hex[i];
        PT_FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    }
    PT_FUZZ_CHECK(d->hex[n] == '\0');
}

/* The descriptor object d (from the independent parse) is the one ref was read from. */
static void check_ref_matches(const struct pt_manifest_ref *ref, json_t *d)
{
    json_t *digest = json_object_get(d, "digest");
    json_t *size = json_object_get(d, "size");
    json_t *mt = json_object_get(d, "mediaType");

    check_digest(&ref->digest);
    check_media_type(ref->media_type);
    PT_FUZZ_CHECK(ref->size <= PT_MANIFEST_MAX_SIZE);
    PT_FUZZ_CHECK(json_is_string(digest) &&
                  json_string_length(digest) == 7 + pt_digest_hex_len(ref->digest.algo));
    PT_FUZZ_CHECK(memcmp(json_string_value(digest), pt_digest_algo_name(ref->digest.algo), 6) == 0);
    PT_FUZZ_CHECK(memcmp(json_string_value(digest) + 7, ref->digest.hex,
                         pt_digest_hex_len(ref->digest.algo)) == 0);
    PT_FUZZ_CHECK(json_is_integer(size) && (uint64_t)json_integer_value(size) == ref->size);
    PT_FUZZ_CHECK(json_is_string(mt) && strcmp(json_string_value(mt), ref->media_type) == 0);
}

static void check_string_object(const char *text)
{
    json_error_t jerr;
    json_t *obj = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    const char *key;
    json_t *val;

    PT_FUZZ_CHECK(json_is_object(obj));
    json_object_foreach(obj, key, val)
    {
        PT_FUZZ_CHECK(json_is_string(val));
    }
    json_decref(obj);
}

/* Success: check info against manifest.h and the body parsed here. */
static void check_success(const char *body, size_t len, const struct ct_case *ct,
                          const struct pt_manifest_info *info)
{
    json_error_t jerr;
    json_t *root, *v, *arr;
    size_t i;
    int k = -1, oci;

    for (i = 0; i < 4; i++) {
        if (strcmp(info->media_type, known[i]) == 0)
            k = (int)i;
    }
    PT_FUZZ_CHECK(k >= 0);
    PT_FUZZ_CHECK(pt_manifest_media_type_known(info->media_type, strlen(info->media_type)));
    PT_FUZZ_CHECK(info->kind == ((k == 0 || k == 2) ? PT_MANIFEST_IMAGE : PT_MANIFEST_INDEX));
    oci = k < 2;
    if (ct->canonical != NULL)
        PT_FUZZ_CHECK(strcmp(info->media_type, ct->canonical) == 0);

    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    PT_FUZZ_CHECK(json_is_object(root));
    v = json_object_get(root, "schemaVersion");
    PT_FUZZ_CHECK(json_is_integer(v) && json_integer_value(v) == 2);
    v = json_object_get(root, "mediaType");
    if (v != NULL)
        PT_FUZZ_CHECK(json_is_string(v) && eq_ci(json_string_value(v), info->media_type));

    if (info->kind == PT_MANIFEST_IMAGE) {
        PT_FUZZ_CHECK(json_object_get(root, "manifests") == NULL);
        PT_FUZZ_CHECK(info->nchildren == 0 && info->children == NULL);
        arr = json_object_get(root, "layers");
        PT_FUZZ_CHECK(json_is_array(arr));
        PT_FUZZ_CHECK(info->nblobs + info->nforeign == json_array_size(arr) + 1 &&
                      info->blobs != NULL);
        check_ref_matches(&info->blobs[0], json_object_get(root, "config"));
        /* layers with a non-empty urls array are foreign: left out of blobs[] */
        size_t b = 1;
        for (i = 0; i < json_array_size(arr); i++) {
            json_t *layer = json_array_get(arr, i);
            if (json_array_size(json_object_get(layer, "urls")) == 0)
                check_ref_matches(&info->blobs[b++], layer);
        }
        PT_FUZZ_CHECK(b == info->nblobs);
    } else {
        PT_FUZZ_CHECK(json_object_get(root, "config") == NULL);
        PT_FUZZ_CHECK(json_object_get(root, "layers") == NULL);
        PT_FUZZ_CHECK(info->nblobs == 0 && info->nforeign == 0 && info->blobs == NULL);
        arr = json_object_get(root, "manifests");
        PT_FUZZ_CHECK(json_is_array(arr) && info->nchildren == json_array_size(arr));
        PT_FUZZ_CHECK((info->nchildren == 0) == (info->children == NULL));
        for (i = 0; i < info->nchildren; i++)
            check_ref_matches(&info->children[i], json_array_get(arr, i));
    }
    PT_FUZZ_CHECK(info->nblobs + info->nchildren <= PT_MANIFEST_MAX_REFS);

    PT_FUZZ_CHECK(memchr(info->artifact_type, '\0', sizeof(info->artifact_type)) != NULL);
    if (info->artifact_type[0] != '\0')
        check_media_type(info->artifact_type);
    v = json_object_get(root, "artifactType");
    if (oci && v != NULL)
        PT_FUZZ_CHECK(json_is_string(v) && strcmp(json_string_value(v), info->artifact_type) == 0);
    else if (info->kind == PT_MANIFEST_IMAGE)
        PT_FUZZ_CHECK(strcmp(info->artifact_type, info->blobs[0].media_type) == 0);
    else
        PT_FUZZ_CHECK(info->artifact_type[0] == '\0');

    v = json_object_get(root, "subject");
    PT_FUZZ_CHECK(info->has_subject == (oci && v != NULL));
    if (info->has_subject) {
        json_t *d = json_object_get(v, "digest");
        check_digest(&info->subject);
        PT_FUZZ_CHECK(json_is_string(d) && memcmp(json_string_value(d) + 7, info->subject.hex,
                                                  pt_digest_hex_len(info->subject.algo)) == 0);
    }

    v = json_object_get(root, "annotations");
    PT_FUZZ_CHECK((info->annotations != NULL) == (oci && v != NULL));
    if (info->annotations != NULL) {
        json_t *dumped = json_loads(info->annotations, 0, &jerr);
        check_string_object(info->annotations);
        PT_FUZZ_CHECK(json_equal(dumped, v));
        json_decref(dumped);
    }
    json_decref(root);
}

static int refs_equal(const struct pt_manifest_ref *a, const struct pt_manifest_ref *b, size_t n)
{
    return n == 0 || memcmp(a, b, n * sizeof(*a)) == 0;
}

/* Two successful parses of one input agree in every field. */
static void check_same(const struct pt_manifest_info *a, const struct pt_manifest_info *b)
{
    PT_FUZZ_CHECK(a->kind == b->kind);
    PT_FUZZ_CHECK(strcmp(a->media_type, b->media_type) == 0);
    PT_FUZZ_CHECK(strcmp(a->artifact_type, b->artifact_type) == 0);
    PT_FUZZ_CHECK(a->has_subject == b->has_subject);
    if (a->has_subject)
        PT_FUZZ_CHECK(pt_digest_equal(&a->subject, &b->subject));
    PT_FUZZ_CHECK(a->nblobs == b->nblobs && refs_equal(a->blobs, b->blobs, a->nblobs));
    PT_FUZZ_CHECK(a->nforeign == b->nforeign);
    PT_FUZZ_CHECK(a->nchildren == b->nchildren &&
                  refs_equal(a->children, b->children, a->nchildren));
    PT_FUZZ_CHECK((a->annotations == NULL) == (b->annotations == NULL));
    if (a->annotations != NULL)
        PT_FUZZ_CHECK(strcmp(a->annotations, b->annotations) == 0);
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *u = p;
    size_t i;

    for (i = 0; i < n; i++) {
        if (u[i] != 0)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ct_case ct_input = {NULL, NULL, 0};
    const struct ct_case *ct;
    struct pt_manifest_info info, again;
    char *ct_copy = NULL, *body = NULL;
    size_t skip = 1, len;
    int rc, rc2;

    if (size < 1)
        return 0;
    ct = &content_types[data[0] & 0x0f];
    if ((data[0] & 0x0f) == CT_FROM_INPUT) {
        const uint8_t *nl = memchr(data + 1, '\n', size - 1);
        size_t n;

        if (nl == NULL || (size_t)(nl - data - 1) > CT_MAX)
            return 0;
        n = (size_t)(nl - data - 1);
        ct_copy = malloc(n + 1);
        if (ct_copy == NULL)
            return 0;
        memcpy(ct_copy, data + 1, n);
        ct_copy[n] = '\0';
        ct_input.value = ct_copy;
        ct = &ct_input;
        skip = n + 2;
    }

    len = size - skip;
    body = malloc(len > 0 ? len : 1);
    if (body == NULL)
        goto out;
    memcpy(body, data + skip, len);

    memset(&info, 0x5a, sizeof(info));
    rc = pt_manifest_parse(body, len, ct->value, &info);
    PT_FUZZ_CHECK(rc == 0 || rc == PT_E_MANIFEST_INVALID || rc == PT_E_UNSUPPORTED_MEDIA ||
                  rc == PT_E_MANIFEST_TOO_LARGE || rc == PT_E_NOMEM);
    if (ct->schema1 && len <= PT_MANIFEST_MAX_BYTES)
        PT_FUZZ_CHECK(rc == PT_E_UNSUPPORTED_MEDIA);
    if (rc != 0) {
        PT_FUZZ_CHECK(all_zero(&info, sizeof(info)));
        pt_manifest_info_free(&info);
        goto out;
    }

    check_success(body, len, ct, &info);

    rc2 = pt_manifest_parse(body, len, ct->value, &again);
    PT_FUZZ_CHECK(rc2 == 0);
    check_same(&info, &again);
    pt_manifest_info_free(&again);

    pt_manifest_info_free(&info);
    PT_FUZZ_CHECK(all_zero(&info, sizeof(info)));
out:
    free(body);
    free(ct_copy);
    return 0;
}
