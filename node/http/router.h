/*
 * router.h - request path -> route (OCI distribution-spec v1.1, section "Endpoints").
 *
 * The router only looks at the path: methods are the handlers' business. It takes the path
 * without its query string and without percent-decoding. Repository names contain slashes,
 * so a path is read from the right: the route is fixed by the last one to three segments
 * ("tags/list", "manifests/<ref>", "blobs/uploads/[<id>]", "blobs/<digest>",
 * "referrers/<digest>") and everything before them is the name. The keyword sets of these
 * suffixes do not overlap, so each path has at most one shape; "blobs/uploads" (no trailing
 * slash) is the uploads route, not a blob named "uploads".
 *
 * No '%' is accepted anywhere under /v2/: an encoded name or reference would let two spellings
 * address one object (or smuggle "/" and ".."). A '%' in the name is PT_E_NAME_INVALID; in a
 * reference it fails that reference's own grammar (tag, digest or upload id); a path without
 * a route's shape is PT_E_NOT_FOUND.
 */
#ifndef PT_ROUTER_H
#define PT_ROUTER_H

#include <stddef.h>

#include "bounds.h" /* PT_UPLOAD_ID_MAX: upload ids in the path are [A-Za-z0-9-], that long */
#include "digest.h"

enum pt_route_id {
    PT_ROUTE_BASE,      /* /v2/ and /v2 */
    PT_ROUTE_CATALOG,   /* /v2/_catalog */
    PT_ROUTE_TAGS,      /* /v2/<name>/tags/list */
    PT_ROUTE_MANIFEST,  /* /v2/<name>/manifests/<reference> */
    PT_ROUTE_BLOB,      /* /v2/<name>/blobs/<digest> */
    PT_ROUTE_UPLOADS,   /* /v2/<name>/blobs/uploads/ (with or without trailing slash) */
    PT_ROUTE_UPLOAD,    /* /v2/<name>/blobs/uploads/<uuid> */
    PT_ROUTE_REFERRERS, /* /v2/<name>/referrers/<digest> */
    PT_ROUTE_HEALTHZ,   /* /healthz */
    PT_ROUTE_READYZ,    /* /readyz */
    PT_ROUTE_METRICS,   /* /metrics */
    PT_ROUTE_ADMIN,     /* /admin/<rest>: ref is <rest> (not validated here) */
    PT_ROUTE_TOKEN,     /* /token: the token endpoint of access control (api_token.c) */
    PT_ROUTE_UNKNOWN,
    PT_ROUTE__COUNT
};

struct pt_route {
    enum pt_route_id id;
    const char *name; /* borrowed from the path; repository name, NULL when the route has none */
    size_t name_len;
    const char *ref; /* borrowed from the path; tag-or-digest, digest or upload id, else NULL */
    size_t ref_len;
    int ref_is_digest;       /* MANIFEST: 1 when ref parsed as a digest, else 0 */
    struct pt_digest digest; /* valid when ref is a digest (BLOB, REFERRERS, MANIFEST by digest) */
};

/*
 * Match path[0..len) (borrowed; need not be NUL-terminated; out's pointers borrow from it, so
 * the path must outlive *out). Returns 0 and fills *out, or:
 *   PT_E_NAME_INVALID          bad repository name (a '%' in it included);
 *   PT_E_DIGEST_INVALID        bad digest in BLOB or REFERRERS, or in MANIFEST when the
 *                              reference contains ':';
 *   PT_E_TAG_INVALID           MANIFEST reference that is neither a digest nor a valid tag;
 *   PT_E_BLOB_UPLOAD_UNKNOWN   upload id not matching [A-Za-z0-9-]{1,64};
 *   PT_E_NOT_FOUND             no route.
 * On failure out->id still names the route the path's shape matched (PT_ROUTE_UNKNOWN for
 * PT_E_NOT_FOUND), so callers can label metrics; the other fields are then unspecified, except
 * after PT_E_TAG_INVALID: name (valid) and ref (the refused reference) are set, so the
 * manifest handler can answer by method (a read of a tag that cannot exist is a 404).
 */
int pt_router_match(const char *path, size_t len, struct pt_route *out);

/* Short stable label for metrics and logs: "base", "catalog", "tags", "manifest", "blob",
 * "uploads", "upload", "referrers", "healthz", "readyz", "metrics", "admin", "token", "unknown"
 * (also for out-of-range ids). Static storage. */
const char *pt_route_name(enum pt_route_id id);

#endif
