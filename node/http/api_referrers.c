/*
 * api_referrers.c - end-12a/12b: GET /v2/<name>/referrers/<digest>[?artifactType=...]
 * [&n=...][&last=...] (OCI distribution-spec v1.1 "Listing Referrers").
 *
 * The answer is always an OCI image index (never 404 for a valid name and digest): one
 * descriptor per manifest whose subject is <digest>, with its artifactType and annotations.
 * A subject without referrers, a subject that does not exist and a repository that does not
 * exist all get 200 with an empty index: the spec's "Assuming a repository is found, this
 * request MUST return a 200 OK" is followed by "the registry MUST NOT return a 404 Not Found
 * to a referrers API request", and a client that gets 404 concludes the registry lacks the
 * API and falls back to the referrers tag schema ("Unavailable Referrers API").
 * With ?artifactType= only matching descriptors are listed and the response carries
 * OCI-Filters-Applied: artifactType.
 *
 * Pagination: the spec lets the index be paginated with a `Link: <url>; rel="next"` header
 * that clients follow. A page holds at most REFERRERS_PAGE descriptors (or the client's `n`,
 * clamped to it) and examines at most PT_METASTORE_LIST_MAX records whatever the filter
 * keeps (pt_metastore_referrers_page); when more may follow, the Link names the next page:
 * the same path with n, last (the digest of the last record examined) and the artifactType
 * filter. A page may hold fewer descriptors than n, even none, and still link onwards.
 *
 * Threads: the handler runs on its HTTP loop, which only parses the query; the read of the
 * store, the decoding of the annotations and the JSON run on the libuv thread pool, and the
 * answer goes out from the loop afterwards (tied to the request with pt_async).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "async.h"
#include "digest.h"
#include "err.h"
#include "http.h"
#include "metastore.h"
#include "worker.h"
#include "query.h"

#define REFERRERS_PAGE   1000
#define INDEX_MEDIA_TYPE "application/vnd.oci.image.index.v1+json"
#define FILTER_MAX       255
#define LINK_MAX         (PT_NAME_MAX + 3 * FILTER_MAX + 2 * PT_DIGEST_STR_MAX + 96)

struct referrers_op {
    struct pt_async async;
    uv_work_t work;
    struct pt_metastore *ms;
    char name[PT_NAME_MAX + 1];
    char subject[PT_DIGEST_STR_MAX + 1];
    char last[PT_DIGEST_STR_MAX + 1]; /* "" = the first page */
    char filter[FILTER_MAX + 1];
    int filtered;
    size_t n;
    int status;                       /* PT_E_* of the work, 0 when text is the answer */
    char *text;                       /* owned: the index */
    char next[PT_DIGEST_STR_MAX + 1]; /* "" = no further page */
};

/* Appends s percent-encoded (every byte but the unreserved ones of RFC 3986) to out (cap
 * bytes, NUL kept); returns the new length or cap when it does not fit. */
static size_t pct_encode(char *out, size_t len, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~';
        if (len + (plain ? 1 : 3) >= cap)
            return cap;
        if (plain) {
            out[len++] = (char)c;
        } else {
            out[len++] = '%';
            out[len++] = hex[c >> 4];
            out[len++] = hex[c & 15];
        }
    }
    out[len] = '\0';
    return len;
}

/* Thread pool: the page of referrers and the index's JSON. */
static void referrers_work(uv_work_t *work)
{
    struct referrers_op *op = work->data;
    struct pt_referrer *refs = NULL;
    size_t count = 0;
    int rv =
        pt_metastore_referrers_page(op->ms, op->name, op->subject, op->filtered ? op->filter : NULL,
                                    op->last, op->n, &refs, &count, op->next);
    if (rv == PT_E_NAME_UNKNOWN)
        rv = 0; /* no repository: no referrers (see the file comment) */
    if (rv != 0) {
        op->status = rv;
        return;
    }
    json_t *manifests = json_array();
    for (size_t i = 0; i < count; i++) {
        json_t *d = json_pack("{s:s,s:s,s:I}", "mediaType", refs[i].media_type, "digest",
                              refs[i].digest, "size", (json_int_t)refs[i].size);
        if (d == NULL)
            continue;
        if (refs[i].artifact_type[0] != '\0')
            json_object_set_new(d, "artifactType", json_string(refs[i].artifact_type));
        if (refs[i].annotations != NULL) {
            json_t *ann = json_loads(refs[i].annotations, 0, NULL);
            if (json_is_object(ann) && json_object_size(ann) > 0)
                json_object_set(d, "annotations", ann);
            json_decref(ann);
        }
        json_array_append_new(manifests, d);
    }
    pt_referrers_free(refs, count);
    json_t *index = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType", INDEX_MEDIA_TYPE,
                              "manifests", manifests);
    op->text = index != NULL ? json_dumps(index, JSON_COMPACT) : NULL;
    json_decref(index);
    if (op->text == NULL)
        op->status = PT_E_NOMEM;
}

/* Loop: the Link to the next page, or nothing when there is none or it does not fit. */
static void send_link(h2o_req_t *req, const struct referrers_op *op)
{
    if (op->next[0] == '\0')
        return;
    char link[LINK_MAX];
    int len = snprintf(link, sizeof(link), "</v2/%s/referrers/%s?n=%zu&last=", op->name,
                       op->subject, op->n);
    if (len < 0 || (size_t)len >= sizeof(link))
        return;
    size_t at = pct_encode(link, (size_t)len, sizeof(link), op->next);
    if (op->filtered && at < sizeof(link)) {
        int k = snprintf(link + at, sizeof(link) - at, "&artifactType=");
        at = k < 0 || (size_t)k >= sizeof(link) - at
                 ? sizeof(link)
                 : pct_encode(link, at + (size_t)k, sizeof(link), op->filter);
    }
    if (at < sizeof(link) &&
        snprintf(link + at, sizeof(link) - at, ">; rel=\"next\"") < (int)(sizeof(link) - at))
        pt_http_header(req, "Link", link, strlen(link));
}

static void referrers_after(uv_work_t *work, int status)
{
    struct referrers_op *op = work->data;
    h2o_req_t *req = pt_async_unbind(&op->async);
    if (req != NULL && (status != 0 || op->status != 0)) {
        pt_http_error(req, op->status != 0 ? op->status : PT_E_INTERNAL, NULL, NULL);
    } else if (req != NULL) {
        if (op->filtered)
            pt_http_header(req, "OCI-Filters-Applied", "artifactType", 12);
        send_link(req, op);
        pt_http_send(req, 200, INDEX_MEDIA_TYPE, op->text, strlen(op->text));
    }
    free(op->text);
    free(op);
}

void pt_api_referrers(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    if (!pt_http_method_is(req, "GET") && !pt_http_is_head(req)) {
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
        return;
    }
    struct referrers_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    snprintf(op->name, sizeof(op->name), "%s", pt_api_name(req, rt));
    pt_digest_format(&rt->digest, op->subject);
    h2o_iovec_t q = pt_http_query(req);
    int flen = pt_query_get(q.base, q.len, "artifactType", 0, op->filter, sizeof(op->filter));
    if (flen < 0 && flen != PT_E_NOT_FOUND) {
        pt_http_error(req, PT_E_UNSUPPORTED, "invalid artifactType filter", NULL);
        free(op);
        return;
    }
    op->filtered = flen >= 0;
    struct pt_digest last;
    if (pt_query_pagination(q.base, q.len, REFERRERS_PAGE, REFERRERS_PAGE, &op->n, op->last,
                            sizeof(op->last)) != 0 ||
        op->n == 0 ||
        (op->last[0] != '\0' && pt_digest_parse(op->last, strlen(op->last), &last) != 0)) {
        pt_http_error(req, PT_E_PAGINATION_NUMBER_INVALID, "n must be 1 or more and last a digest",
                      NULL);
        free(op);
        return;
    }
    op->ms = w->node->ms;
    op->work.data = op;
    pt_async_bind(&op->async, req);
    if (uv_queue_work(&w->loop, &op->work, referrers_work, referrers_after) != 0) {
        pt_http_error(pt_async_unbind(&op->async), PT_E_INTERNAL, NULL, NULL);
        free(op);
    }
}
