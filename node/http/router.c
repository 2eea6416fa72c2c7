/*
 * router.c - the path matcher behind router.h.
 *
 * Paths under /v2/ are split from the right into at most three trailing segments s1 (last),
 * s2, s3 and the name before them. The shapes, checked in this order:
 *
 *   <name>/tags/list                  s2 == "tags"      && s1 == "list"
 *   <name>/manifests/<ref>            s2 == "manifests" && s1 != ""
 *   <name>/blobs/uploads              s2 == "blobs"     && s1 == "uploads"
 *   <name>/blobs/<digest>             s2 == "blobs"     && s1 != ""
 *   <name>/referrers/<digest>         s2 == "referrers" && s1 != ""
 *   <name>/blobs/uploads/[<id>]       s3 == "blobs"     && s2 == "uploads"
 *
 * The two-segment shapes require distinct s2 keywords (the one shared keyword, "blobs", is
 * resolved by testing "uploads" first) and the three-segment shape requires s2 == "uploads",
 * which no two-segment shape uses, so a path has at most one shape: "the rightmost keyword
 * that yields a valid structure". Only then are the parts validated, name first, so a path
 * with a bad name and a bad reference reports the name.
 *
 * Work is linear in len and bounded by the name, tag, digest and upload id limits that the
 * validators enforce; nothing is allocated.
 */
#include "router.h"

#include <string.h>

#include "err.h"
#include "reference.h"

struct span {
    const char *p;
    size_t len;
};

static int span_is(struct span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

static int path_is(const char *path, size_t len, const char *lit)
{
    struct span s = {path, len};
    return span_is(s, lit);
}

/* Position of the last '/' in p[0..end), or -1. */
static long last_slash(const char *p, size_t end)
{
    const char *q = memrchr(p, '/', end);
    return q == NULL ? -1 : (long)(q - p);
}

static int upload_id_valid(struct span id)
{
    size_t i;

    if (id.len == 0 || id.len > PT_UPLOAD_ID_MAX)
        return 0;
    for (i = 0; i < id.len; i++) {
        unsigned char c = (unsigned char)id.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* Find the shape of rest[0..len) (the path after "/v2/"); fills id, name and ref spans. */
static enum pt_route_id find_shape(const char *rest, size_t len, struct span *name,
                                   struct span *ref)
{
    long sl1, sl2, sl3;
    struct span s1, s2, s3;

    if (path_is(rest, len, "_catalog"))
        return PT_ROUTE_CATALOG;

    sl1 = last_slash(rest, len);
    if (sl1 < 0)
        return PT_ROUTE_UNKNOWN;
    s1 = (struct span){rest + sl1 + 1, len - (size_t)sl1 - 1};
    sl2 = last_slash(rest, (size_t)sl1);
    if (sl2 < 0)
        return PT_ROUTE_UNKNOWN;
    s2 = (struct span){rest + sl2 + 1, (size_t)(sl1 - sl2 - 1)};
    *name = (struct span){rest, (size_t)sl2};

    if (span_is(s2, "tags") && span_is(s1, "list"))
        return PT_ROUTE_TAGS;
    if (span_is(s2, "manifests") && s1.len > 0) {
        *ref = s1;
        return PT_ROUTE_MANIFEST;
    }
    if (span_is(s2, "blobs") && span_is(s1, "uploads"))
        return PT_ROUTE_UPLOADS;
    if (span_is(s2, "blobs") && s1.len > 0) {
        *ref = s1;
        return PT_ROUTE_BLOB;
    }
    if (span_is(s2, "referrers") && s1.len > 0) {
        *ref = s1;
        return PT_ROUTE_REFERRERS;
    }

    if (!span_is(s2, "uploads"))
        return PT_ROUTE_UNKNOWN;
    sl3 = last_slash(rest, (size_t)sl2);
    if (sl3 < 0)
        return PT_ROUTE_UNKNOWN;
    s3 = (struct span){rest + sl3 + 1, (size_t)(sl2 - sl3 - 1)};
    if (!span_is(s3, "blobs"))
        return PT_ROUTE_UNKNOWN;
    *name = (struct span){rest, (size_t)sl3};
    if (s1.len == 0)
        return PT_ROUTE_UPLOADS;
    *ref = s1;
    return PT_ROUTE_UPLOAD;
}

/* Validate the reference of a route whose shape is known; fills out->digest and friends. */
static int check_ref(struct pt_route *out)
{
    switch (out->id) {
    case PT_ROUTE_BLOB:
    case PT_ROUTE_REFERRERS:
        return pt_digest_parse(out->ref, out->ref_len, &out->digest);
    case PT_ROUTE_MANIFEST:
        /* distribution-spec: <reference> is a tag or a digest; a tag cannot contain ':'. */
        if (memchr(out->ref, ':', out->ref_len) != NULL) {
            int rc = pt_digest_parse(out->ref, out->ref_len, &out->digest);
            if (rc == 0)
                out->ref_is_digest = 1;
            return rc;
        }
        return pt_tag_validate(out->ref, out->ref_len);
    case PT_ROUTE_UPLOAD: {
        struct span id = {out->ref, out->ref_len};
        return upload_id_valid(id) ? 0 : PT_E_BLOB_UPLOAD_UNKNOWN;
    }
    default:
        return 0;
    }
}

int pt_router_match(const char *path, size_t len, struct pt_route *out)
{
    struct span name = {NULL, 0};
    struct span ref = {NULL, 0};
    const char *rest;
    size_t rest_len;
    int rc;

    memset(out, 0, sizeof(*out));
    out->id = PT_ROUTE_UNKNOWN;
    if (path == NULL)
        return PT_E_NOT_FOUND;

    if (path_is(path, len, "/healthz")) {
        out->id = PT_ROUTE_HEALTHZ;
        return 0;
    }
    if (path_is(path, len, "/readyz")) {
        out->id = PT_ROUTE_READYZ;
        return 0;
    }
    if (path_is(path, len, "/metrics")) {
        out->id = PT_ROUTE_METRICS;
        return 0;
    }
    if (path_is(path, len, "/token")) {
        out->id = PT_ROUTE_TOKEN;
        return 0;
    }
    /* Operator endpoints: everything under /admin/ (the handler checks the rest). */
    if (len > 7 && memcmp(path, "/admin/", 7) == 0) {
        out->id = PT_ROUTE_ADMIN;
        out->ref = path + 7;
        out->ref_len = len - 7;
        return 0;
    }
    if (path_is(path, len, "/v2") || path_is(path, len, "/v2/")) {
        out->id = PT_ROUTE_BASE;
        return 0;
    }
    if (len < 4 || memcmp(path, "/v2/", 4) != 0)
        return PT_E_NOT_FOUND;

    rest = path + 4;
    rest_len = len - 4;
    out->id = find_shape(rest, rest_len, &name, &ref);
    if (out->id == PT_ROUTE_UNKNOWN)
        return PT_E_NOT_FOUND;
    if (out->id == PT_ROUTE_CATALOG)
        return 0;
    /* Names are never percent-encoded; a '%' in a reference fails its own grammar below. */
    if (memchr(name.p, '%', name.len) != NULL)
        return PT_E_NAME_INVALID;

    out->name = name.p;
    out->name_len = name.len;
    out->ref = ref.p;
    out->ref_len = ref.len;
    rc = pt_name_validate(name.p, name.len);
    if (rc != 0)
        return rc;
    return check_ref(out);
}

const char *pt_route_name(enum pt_route_id id)
{
    static const char *const names[PT_ROUTE__COUNT] = {
        [PT_ROUTE_BASE] = "base",       [PT_ROUTE_CATALOG] = "catalog",
        [PT_ROUTE_TAGS] = "tags",       [PT_ROUTE_MANIFEST] = "manifest",
        [PT_ROUTE_BLOB] = "blob",       [PT_ROUTE_UPLOADS] = "uploads",
        [PT_ROUTE_UPLOAD] = "upload",   [PT_ROUTE_REFERRERS] = "referrers",
        [PT_ROUTE_HEALTHZ] = "healthz", [PT_ROUTE_READYZ] = "readyz",
        [PT_ROUTE_METRICS] = "metrics", [PT_ROUTE_ADMIN] = "admin",
        [PT_ROUTE_TOKEN] = "token",     [PT_ROUTE_UNKNOWN] = "unknown",
    };

    if ((unsigned)id >= PT_ROUTE__COUNT)
        return "unknown";
    return names[id];
}
