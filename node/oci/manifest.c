/*
 * manifest.c - parse and validate pushed manifests (see manifest.h).
 *
 * Design. A manifest PUT arrives as bytes plus a Content-Type. We decide the document's
 * media type, check its structure against that type, and return only what the rest of the
 * registry needs: the referenced blobs or child manifests (to check they exist and to pin
 * them against garbage collection), the subject and artifactType (for the referrers API) and
 * the annotations (copied verbatim, compactly, into referrers responses). The body itself is
 * stored byte for byte by the caller; nothing here rewrites it.
 *
 * Order of checks, each a cheap bound before the next costlier step:
 *   1. size limit (PT_MANIFEST_MAX_BYTES) and a schema 1 Content-Type, before reading a byte;
 *   2. a linear scan that bounds nesting depth, so the JSON parser and the recursive free
 *      that follows it never go deeper than PT_MANIFEST_MAX_DEPTH;
 *   3. jansson with JSON_REJECT_DUPLICATES (it also rejects invalid UTF-8, NUL in strings,
 *      trailing garbage, and integers that do not fit in 64 bits);
 *   4. schemaVersion, media type resolution, then the per-type structure.
 *
 * Media type resolution (distribution-spec v1.1.1 "Pushing Manifests": "the Content-Type
 * header ... MUST match the manifest's mediaType field if it is set"): the body's mediaType
 * wins when present and must then equal a known Content-Type; without it a known
 * Content-Type decides; without either we infer from structure as older clients expect.
 *
 * Ambiguous documents (CVE-2021-41190): an image manifest carrying "manifests", or an index
 * carrying "config" or "layers", is refused, so no document can be read as both kinds.
 *
 * Fields defined only by the OCI types (artifactType, subject, annotations) are read only for
 * the OCI media types; in Docker documents they are unknown fields and are ignored, as every
 * unknown field is (image-spec: "implementations MUST ignore unknown properties").
 */
#include "manifest.h"

#include <jansson.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>

#include "err.h"

#define MT_SCHEMA1      "application/vnd.docker.distribution.manifest.v1+json"
#define MT_SCHEMA1_SIGN "application/vnd.docker.distribution.manifest.v1+prettyjws"

struct known_type {
    const char *name;
    enum pt_manifest_kind kind;
    int oci; /* 1 for the OCI types, which define artifactType, subject and annotations */
};

static const struct known_type known_types[] = {
    {PT_MT_OCI_MANIFEST, PT_MANIFEST_IMAGE, 1},
    {PT_MT_OCI_INDEX, PT_MANIFEST_INDEX, 1},
    {PT_MT_DOCKER_MANIFEST, PT_MANIFEST_IMAGE, 0},
    {PT_MT_DOCKER_LIST, PT_MANIFEST_INDEX, 0},
};
#define NKNOWN (sizeof(known_types) / sizeof(known_types[0]))

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* 1 if s (n bytes) equals the NUL-terminated lower-case lit, ignoring ASCII case. */
static int eq_ci(const char *s, size_t n, const char *lit)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (lit[i] == '\0' || lower((unsigned char)s[i]) != lit[i])
            return 0;
    }
    return lit[n] == '\0';
}

static const struct known_type *find_known(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < NKNOWN; i++) {
        if (eq_ci(s, n, known_types[i].name))
            return &known_types[i];
    }
    return NULL;
}

static int is_schema1(const char *s, size_t n)
{
    return eq_ci(s, n, MT_SCHEMA1) || eq_ci(s, n, MT_SCHEMA1_SIGN);
}

int pt_manifest_media_type_known(const char *mt, size_t len)
{
    return mt != NULL && find_known(mt, len) != NULL;
}

/* The media type part of a Content-Type value (RFC 9110 8.3): drop parameters after ';' and
 * optional whitespace around the type. */
static const char *content_type_base(const char *ct, size_t *n)
{
    const char *end;

    if (ct == NULL) {
        *n = 0;
        return "";
    }
    end = strchr(ct, ';');
    if (end == NULL)
        end = ct + strlen(ct);
    while (ct < end && (*ct == ' ' || *ct == '\t'))
        ct++;
    while (end > ct && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *n = (size_t)(end - ct);
    return ct;
}

/* RFC 6838 4.2 restricted-name: 1 to 127 characters, first alphanumeric. */
static int restricted_name(const char *s, size_t n)
{
    static const char extra[] = "!#$&-^_.+";
    size_t i;

    if (n == 0 || n > 127)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || c == '\0' || strchr(extra, c) == NULL))
            return 0;
    }
    return 1;
}

/* 1 if s (n bytes) is "type/subtype" per RFC 6838 and fits a 128-byte field with its NUL. */
static int media_type_valid(const char *s, size_t n)
{
    const char *slash;

    if (n >= 128)
        return 0;
    slash = memchr(s, '/', n);
    if (slash == NULL)
        return 0;
    return restricted_name(s, (size_t)(slash - s)) &&
           restricted_name(slash + 1, n - (size_t)(slash - s) - 1);
}

/* Copies a JSON string that must be a valid media type into dst[128]. */
static int copy_media_type(const json_t *v, char *dst)
{
    const char *s;
    size_t n;

    if (!json_is_string(v))
        return PT_E_MANIFEST_INVALID;
    s = json_string_value(v);
    n = json_string_length(v);
    if (!media_type_valid(s, n))
        return PT_E_MANIFEST_INVALID;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/*
 * 1 if no object or array in p (n bytes) nests deeper than PT_MANIFEST_MAX_DEPTH and the text
 * holds at most PT_MANIFEST_MAX_VALUES values (each '{', '[' and ',' outside strings counts
 * one), so that no absurdly wide tree is ever built. Strings are
 * skipped with the same quote/escape rules as the JSON lexer, so brackets inside them do not
 * count; on malformed input the parser fails no deeper than this scan went.
 */
static int shape_ok(const unsigned char *p, size_t n)
{
    size_t depth = 0, values = 0;
    size_t i;
    int in_string = 0;

    for (i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
            continue;
        }
        switch (c) {
        case '"':
            in_string = 1;
            break;
        case '{':
        case '[':
            if (++depth > PT_MANIFEST_MAX_DEPTH || ++values > PT_MANIFEST_MAX_VALUES)
                return 0;
            break;
        case ',':
            if (++values > PT_MANIFEST_MAX_VALUES)
                return 0;
            break;
        case '}':
        case ']':
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
    }
    return 1;
}

/* image-spec annotations.md: "annotations ... MUST be a key-value map where both the key and
 * value MUST be strings". */
static int string_map(json_t *obj)
{
    const char *key;
    json_t *val;

    if (!json_is_object(obj))
        return 0;
    json_object_foreach(obj, key, val)
    {
        if (!json_is_string(val))
            return 0;
    }
    return 1;
}

/*
 * image-spec descriptor.md: mediaType, digest and size are REQUIRED; the optional urls,
 * annotations, data, artifactType and platform (image-index.md) must have their defined
 * JSON types when present. Only sha256 and sha512 digests are accepted (the algorithms we store).
 */
static int parse_descriptor(json_t *d, struct pt_manifest_ref *ref)
{
    json_t *v;
    json_int_t size;
    size_t i;
    int rc;

    if (!json_is_object(d))
        return PT_E_MANIFEST_INVALID;

    rc = copy_media_type(json_object_get(d, "mediaType"), ref->media_type);
    if (rc != 0)
        return rc;

    v = json_object_get(d, "digest");
    if (!json_is_string(v) ||
        pt_digest_parse(json_string_value(v), json_string_length(v), &ref->digest) != 0)
        return PT_E_MANIFEST_INVALID;

    /* jansson fails the whole parse on integers beyond 64 bits, and reals ("1.0", "1e3") are
     * not integers; the remaining range check keeps sizes exact as IEEE doubles. */
    v = json_object_get(d, "size");
    if (!json_is_integer(v))
        return PT_E_MANIFEST_INVALID;
    size = json_integer_value(v);
    if (size < 0 || (uint64_t)size > PT_MANIFEST_MAX_SIZE)
        return PT_E_MANIFEST_INVALID;
    ref->size = (uint64_t)size;

    v = json_object_get(d, "urls");
    if (v != NULL) {
        if (!json_is_array(v))
            return PT_E_MANIFEST_INVALID;
        for (i = 0; i < json_array_size(v); i++) {
            if (!json_is_string(json_array_get(v, i)))
                return PT_E_MANIFEST_INVALID;
        }
    }
    v = json_object_get(d, "annotations");
    if (v != NULL && !string_map(v))
        return PT_E_MANIFEST_INVALID;
    v = json_object_get(d, "data");
    if (v != NULL && !json_is_string(v))
        return PT_E_MANIFEST_INVALID;
    v = json_object_get(d, "platform");
    if (v != NULL && !json_is_object(v))
        return PT_E_MANIFEST_INVALID;
    v = json_object_get(d, "artifactType");
    if (v != NULL) {
        char scratch[128];
        if (copy_media_type(v, scratch) != 0)
            return PT_E_MANIFEST_INVALID;
    }
    return 0;
}

/* Parses the descriptor array arr into a new array of first + json_array_size(arr) refs,
 * starting at index first (slots before it are left zeroed for the caller). */
static int parse_descriptor_array(json_t *arr, size_t first, struct pt_manifest_ref **out,
                                  size_t *nout)
{
    struct pt_manifest_ref *refs;
    size_t n, i;
    int rc;

    if (!json_is_array(arr))
        return PT_E_MANIFEST_INVALID;
    n = json_array_size(arr);
    if (n > PT_MANIFEST_MAX_REFS - first)
        return PT_E_MANIFEST_INVALID;
    n += first;
    if (n == 0) {
        *out = NULL;
        *nout = 0;
        return 0;
    }
    refs = calloc(n, sizeof(*refs));
    if (refs == NULL)
        return PT_E_NOMEM;
    for (i = first; i < n; i++) {
        rc = parse_descriptor(json_array_get(arr, i - first), &refs[i]);
        if (rc != 0) {
            free(refs);
            return rc;
        }
    }
    *out = refs;
    *nout = n;
    return 0;
}

/* Compact JSON text of obj in memory from malloc, so pt_manifest_info_free can free() it
 * whatever allocator jansson was configured with. */
static int dump_compact(json_t *obj, char **out)
{
    size_t n, m;
    char *buf;

    n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
    if (n == 0)
        return PT_E_NOMEM;
    buf = malloc(n + 1);
    if (buf == NULL)
        return PT_E_NOMEM;
    m = json_dumpb(obj, buf, n, JSON_COMPACT);
    if (m != n) {
        free(buf);
        return PT_E_INTERNAL;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

/* Picks the effective media type (see the file comment). */
static int resolve_type(json_t *root, const char *ct, const struct known_type **type)
{
    const struct known_type *ct_type, *body_type;
    const char *ctb;
    size_t ctn;
    json_t *mt;

    ctb = content_type_base(ct, &ctn);
    ct_type = find_known(ctb, ctn);
    /* A Content-Type that is given must be the manifest's media type (distribution-spec
     * "Pushing Manifests"); only a request without one leaves the type to the body. */
    if (ctn > 0 && ct_type == NULL && !is_schema1(ctb, ctn))
        return PT_E_MANIFEST_INVALID;

    mt = json_object_get(root, "mediaType");
    if (mt != NULL) {
        const char *s;
        size_t n;

        if (!json_is_string(mt))
            return PT_E_MANIFEST_INVALID;
        s = json_string_value(mt);
        n = json_string_length(mt);
        if (is_schema1(s, n))
            return PT_E_UNSUPPORTED_MEDIA;
        body_type = find_known(s, n);
        if (ct_type != NULL && body_type != ct_type)
            return PT_E_MANIFEST_INVALID;
        if (body_type == NULL)
            return PT_E_UNSUPPORTED_MEDIA;
        *type = body_type;
        return 0;
    }
    if (ct_type != NULL) {
        *type = ct_type;
        return 0;
    }
    if (json_object_get(root, "manifests") != NULL) {
        *type = &known_types[1];
        return 0;
    }
    if (json_object_get(root, "config") != NULL) {
        *type = &known_types[0];
        return 0;
    }
    return PT_E_UNSUPPORTED_MEDIA;
}

/* 1 if the descriptor d carries a non-empty "urls" array (its type checked already). */
static int has_urls(json_t *d)
{
    return json_array_size(json_object_get(d, "urls")) > 0;
}

/* CNCF Distribution's rule for the URLs of a layer it will not look for: absolute http or
 * https, no fragment. */
static int foreign_urls_ok(json_t *d)
{
    json_t *urls = json_object_get(d, "urls");
    size_t i;

    for (i = 0; i < json_array_size(urls); i++) {
        json_t *u = json_array_get(urls, i);
        const char *s = json_string_value(u);
        size_t n = json_string_length(u);
        size_t skip = n >= 7 && eq_ci(s, 7, "http://")    ? 7
                      : n >= 8 && eq_ci(s, 8, "https://") ? 8
                                                          : 0;
        if (skip == 0 || n == skip || memchr(s, '#', n) != NULL || memchr(s, '\0', n) != NULL)
            return 0;
    }
    return 1;
}

/* Drops the foreign layers (see manifest.h) from out->blobs, keeping the order of the rest;
 * layers is the "layers" array that filled blobs[1..]. */
static int drop_foreign_layers(json_t *layers, struct pt_manifest_info *out)
{
    size_t i, kept = 1;

    for (i = 1; i < out->nblobs; i++) {
        json_t *d = json_array_get(layers, i - 1);
        if (has_urls(d)) {
            if (!foreign_urls_ok(d))
                return PT_E_MANIFEST_INVALID;
            out->nforeign++;
            continue;
        }
        out->blobs[kept++] = out->blobs[i];
    }
    out->nblobs = kept;
    return 0;
}

static int parse_image(json_t *root, struct pt_manifest_info *out)
{
    int rc;

    if (json_object_get(root, "manifests") != NULL)
        return PT_E_MANIFEST_INVALID;
    /* The config must parse before layers fill the array after it. */
    if (json_object_get(root, "config") == NULL)
        return PT_E_MANIFEST_INVALID;
    rc = parse_descriptor_array(json_object_get(root, "layers"), 1, &out->blobs, &out->nblobs);
    if (rc != 0)
        return rc;
    rc = parse_descriptor(json_object_get(root, "config"), &out->blobs[0]);
    if (rc != 0)
        return rc;
    rc = drop_foreign_layers(json_object_get(root, "layers"), out);
    if (rc != 0)
        return rc;
    /* distribution-spec "Listing Referrers": without artifactType, the config's mediaType. */
    memcpy(out->artifact_type, out->blobs[0].media_type, sizeof(out->artifact_type));
    return 0;
}

static int parse_index(json_t *root, struct pt_manifest_info *out)
{
    if (json_object_get(root, "config") != NULL || json_object_get(root, "layers") != NULL)
        return PT_E_MANIFEST_INVALID;
    return parse_descriptor_array(json_object_get(root, "manifests"), 0, &out->children,
                                  &out->nchildren);
}

/* artifactType, subject and annotations (image-spec v1.1 manifest.md, image-index.md). */
static int parse_oci_fields(json_t *root, struct pt_manifest_info *out)
{
    struct pt_manifest_ref subject;
    json_t *v;
    int rc;

    v = json_object_get(root, "artifactType");
    if (v != NULL) {
        rc = copy_media_type(v, out->artifact_type);
        if (rc != 0)
            return rc;
    }
    v = json_object_get(root, "subject");
    if (v != NULL) {
        rc = parse_descriptor(v, &subject);
        if (rc != 0)
            return rc;
        out->has_subject = 1;
        out->subject = subject.digest;
    }
    v = json_object_get(root, "annotations");
    if (v != NULL) {
        if (!string_map(v))
            return PT_E_MANIFEST_INVALID;
        rc = dump_compact(v, &out->annotations);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int parse_document(const void *body, size_t len, const char *content_type,
                          struct pt_manifest_info *out)
{
    const struct known_type *type = NULL;
    json_error_t jerr;
    json_t *root, *v;
    const char *ctb;
    size_t ctn;
    int rc;

    if (out == NULL || (body == NULL && len > 0))
        return PT_E_INTERNAL;
    memset(out, 0, sizeof(*out));
    if (len > PT_MANIFEST_MAX_BYTES)
        return PT_E_MANIFEST_TOO_LARGE;
    ctb = content_type_base(content_type, &ctn);
    if (is_schema1(ctb, ctn))
        return PT_E_UNSUPPORTED_MEDIA;
    if (len == 0 || !shape_ok(body, len))
        return PT_E_MANIFEST_INVALID;

    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return PT_E_MANIFEST_INVALID;
    if (!json_is_object(root)) {
        rc = PT_E_MANIFEST_INVALID;
        goto err_after_root;
    }

    /* image-spec: "This REQUIRED property specifies the image manifest schema version. For
     * this version of the specification, this MUST be 2". Version 1 is Docker schema 1. */
    v = json_object_get(root, "schemaVersion");
    if (json_is_integer(v) && json_integer_value(v) == 1) {
        rc = PT_E_UNSUPPORTED_MEDIA;
        goto err_after_root;
    }
    if (!json_is_integer(v) || json_integer_value(v) != 2) {
        rc = PT_E_MANIFEST_INVALID;
        goto err_after_root;
    }

    rc = resolve_type(root, content_type, &type);
    if (rc != 0)
        goto err_after_root;
    out->kind = type->kind;
    memcpy(out->media_type, type->name, strlen(type->name) + 1);

    rc = type->kind == PT_MANIFEST_IMAGE ? parse_image(root, out) : parse_index(root, out);
    if (rc != 0)
        goto err_after_info;
    if (type->oci) {
        rc = parse_oci_fields(root, out);
        if (rc != 0)
            goto err_after_info;
    }
    json_decref(root);
    return 0;

err_after_info:
    pt_manifest_info_free(out);
err_after_root:
    json_decref(root);
    memset(out, 0, sizeof(*out));
    return rc;
}

int pt_manifest_parse(const void *body, size_t len, const char *content_type,
                      struct pt_manifest_info *out)
{
    int rc = parse_document(body, len, content_type, out);
    /* A large document's tree is freed by now; glibc keeps such heap (in every thread's arena)
     * for reuse, so a burst of wide manifests would hold its peak for good. Give it back. */
    if (len >= PT_MANIFEST_TRIM_BYTES)
        malloc_trim(0);
    return rc;
}

void pt_manifest_info_free(struct pt_manifest_info *info)
{
    if (info == NULL)
        return;
    free(info->blobs);
    free(info->children);
    free(info->annotations);
    memset(info, 0, sizeof(*info));
}
