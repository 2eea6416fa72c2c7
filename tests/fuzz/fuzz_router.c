/*
 * fuzz_router.c - libFuzzer driver for node/http/router.h.
 *
 * The whole input is the request path, passed as an unterminated heap copy of exactly its
 * length (the router takes length-delimited paths), so AddressSanitizer sees a read past it.
 *
 * Checked invariants:
 *   - the return code is 0 or one of the errors router.h lists, out->id is a valid route, and
 *     PT_E_NOT_FOUND goes with PT_ROUTE_UNKNOWN and no other error does;
 *   - name and ref, when not NULL, point inside the input on every outcome, failures included;
 *   - on success the path is rebuilt from its parts: "/v2/" + name + the route's keyword
 *     segments + ref must equal the input exactly, so the router neither drops nor invents
 *     bytes; the name is a valid repository name, a tag is a valid tag, an upload id is
 *     [A-Za-z0-9-]{1,64}, and no '%' appears anywhere;
 *   - whenever a digest is reported (BLOB, REFERRERS, MANIFEST by digest), formatting it gives
 *     back the ref bytes exactly, and a MANIFEST ref is a digest exactly when it holds ':'.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "err.h"
#include "fuzz_check.h"
#include "reference.h"
#include "router.h"

struct part {
    const char *p;
    size_t len;
};

/* 1 if p[0..len) is exactly the concatenation of parts[0..nparts). */
static int equals_parts(const char *p, size_t len, const struct part *parts, size_t nparts)
{
    size_t off = 0, i;

    for (i = 0; i < nparts; i++) {
        if (parts[i].len > len - off || memcmp(p + off, parts[i].p, parts[i].len) != 0)
            return 0;
        off += parts[i].len;
    }
    return off == len;
}

static int is_lit(const char *p, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(p, lit, len) == 0;
}

static int inside(const char *base, size_t size, const char *p, size_t len)
{
    return p >= base && len <= size && (size_t)(p - base) <= size - len;
}

static void check_digest_ref(const struct pt_route *r)
{
    char text[PT_DIGEST_STR_MAX + 1];
    size_t i, n = pt_digest_hex_len(r->digest.algo);

    for (i = 0; i < n; i++) {
        char c = r->digest.hex[i];
        PT_FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    }
    PT_FUZZ_CHECK(r->digest.hex[n] == '\0');
    pt_digest_format(&r->digest, text);
    PT_FUZZ_CHECK(r->ref_len == 7 + n);
    PT_FUZZ_CHECK(memcmp(text, r->ref, 7 + n) == 0);
}

static void check_upload_id(const char *p, size_t len)
{
    size_t i;

    PT_FUZZ_CHECK(len >= 1 && len <= PT_UPLOAD_ID_MAX);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        PT_FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-');
    }
}

/* Success: the path must be exactly the route's parts. */
static void check_match(const char *path, size_t len, const struct pt_route *r)
{
    struct part parts[4];
    struct part v2 = {"/v2/", 4};
    struct part name = {r->name, r->name_len};
    struct part ref = {r->ref, r->ref_len};

    switch (r->id) {
    case PT_ROUTE_HEALTHZ:
        PT_FUZZ_CHECK(is_lit(path, len, "/healthz"));
        return;
    case PT_ROUTE_READYZ:
        PT_FUZZ_CHECK(is_lit(path, len, "/readyz"));
        return;
    case PT_ROUTE_METRICS:
        PT_FUZZ_CHECK(is_lit(path, len, "/metrics"));
        return;
    case PT_ROUTE_TOKEN:
        PT_FUZZ_CHECK(is_lit(path, len, "/token"));
        return;
    case PT_ROUTE_BASE:
        PT_FUZZ_CHECK(is_lit(path, len, "/v2") || is_lit(path, len, "/v2/"));
        return;
    case PT_ROUTE_CATALOG:
        PT_FUZZ_CHECK(is_lit(path, len, "/v2/_catalog"));
        return;
    case PT_ROUTE_ADMIN: /* everything under /admin/, the rest is the handler's to check */
        PT_FUZZ_CHECK(len > 7 && memcmp(path, "/admin/", 7) == 0);
        PT_FUZZ_CHECK(r->ref == path + 7 && r->ref_len == len - 7);
        return;
    default:
        break;
    }

    /* Routes under /v2/<name>/... */
    PT_FUZZ_CHECK(r->name != NULL);
    PT_FUZZ_CHECK(r->name == path + 4);
    PT_FUZZ_CHECK(pt_name_validate(r->name, r->name_len) == 0);
    PT_FUZZ_CHECK(memchr(path, '%', len) == NULL);
    parts[0] = v2;
    parts[1] = name;

    switch (r->id) {
    case PT_ROUTE_TAGS:
        PT_FUZZ_CHECK(r->ref == NULL);
        parts[2] = (struct part){"/tags/list", 10};
        PT_FUZZ_CHECK(equals_parts(path, len, parts, 3));
        break;
    case PT_ROUTE_MANIFEST:
        parts[2] = (struct part){"/manifests/", 11};
        parts[3] = ref;
        PT_FUZZ_CHECK(r->ref != NULL);
        PT_FUZZ_CHECK(equals_parts(path, len, parts, 4));
        if (memchr(r->ref, ':', r->ref_len) != NULL) {
            PT_FUZZ_CHECK(r->ref_is_digest);
            check_digest_ref(r);
        } else {
            PT_FUZZ_CHECK(!r->ref_is_digest);
            PT_FUZZ_CHECK(pt_tag_validate(r->ref, r->ref_len) == 0);
        }
        break;
    case PT_ROUTE_BLOB:
    case PT_ROUTE_REFERRERS:
        parts[2] =
            r->id == PT_ROUTE_BLOB ? (struct part){"/blobs/", 7} : (struct part){"/referrers/", 11};
        parts[3] = ref;
        PT_FUZZ_CHECK(r->ref != NULL);
        PT_FUZZ_CHECK(equals_parts(path, len, parts, 4));
        check_digest_ref(r);
        break;
    case PT_ROUTE_UPLOADS:
        PT_FUZZ_CHECK(r->ref == NULL);
        parts[2] = (struct part){"/blobs/uploads", 14};
        parts[3] = (struct part){"/", 1};
        PT_FUZZ_CHECK(equals_parts(path, len, parts, 3) || equals_parts(path, len, parts, 4));
        break;
    case PT_ROUTE_UPLOAD:
        parts[2] = (struct part){"/blobs/uploads/", 15};
        parts[3] = ref;
        PT_FUZZ_CHECK(r->ref != NULL);
        PT_FUZZ_CHECK(equals_parts(path, len, parts, 4));
        check_upload_id(r->ref, r->ref_len);
        break;
    default:
        PT_FUZZ_CHECK(0 && "success with an unknown route");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pt_route r;
    const char *label;
    char *path;
    int rc;

    path = malloc(size > 0 ? size : 1);
    if (path == NULL)
        return 0;
    memcpy(path, data, size);

    memset(&r, 0x5a, sizeof(r));
    rc = pt_router_match(path, size, &r);

    PT_FUZZ_CHECK((unsigned)r.id < PT_ROUTE__COUNT);
    label = pt_route_name(r.id);
    PT_FUZZ_CHECK(label != NULL && label[0] != '\0');
    PT_FUZZ_CHECK(rc == 0 || rc == PT_E_NAME_INVALID || rc == PT_E_DIGEST_INVALID ||
                  rc == PT_E_TAG_INVALID || rc == PT_E_BLOB_UPLOAD_UNKNOWN || rc == PT_E_NOT_FOUND);
    PT_FUZZ_CHECK((rc == PT_E_NOT_FOUND) == (r.id == PT_ROUTE_UNKNOWN));

    if (r.name != NULL)
        PT_FUZZ_CHECK(inside(path, size, r.name, r.name_len));
    if (r.ref != NULL)
        PT_FUZZ_CHECK(inside(path, size, r.ref, r.ref_len));
    if (rc == 0)
        check_match(path, size, &r);
    /* An error after the shape was found never reports a route with no path under it. */
    if (rc != 0 && rc != PT_E_NOT_FOUND)
        PT_FUZZ_CHECK(size >= 4 && memcmp(path, "/v2/", 4) == 0);

    free(path);
    return 0;
}
