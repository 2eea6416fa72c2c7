/*
 * api_tags.c - listings: end-8a/8b (GET /v2/<name>/tags/list) and the catalog
 * (GET /v2/_catalog), both in lexical order with the spec's `n` and `last` pagination and a
 * `Link: <...>; rel="next"` header when more entries follow ("Listing Tags").
 *
 * Without `n` a listing returns everything up to PT_METASTORE_LIST_MAX entries and links to
 * the rest; a larger `n` is clamped to that maximum.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_common.h"
#include "auth_gate.h"
#include "err.h"
#include "http.h"
#include "metastore.h"
#include "worker.h"
#include "query.h"
#include "reference.h"

/* Sends {"<key0>": name?, "<list_key>": [...]} with the next-page link. */
static void send_listing(h2o_req_t *req, const char *name, const char *list_key, char **v,
                         size_t count, int more, size_t n, const char *link_path)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(arr, json_string(v[i]));
    json_t *root = name != NULL ? json_pack("{s:s,s:o}", "name", name, list_key, arr)
                                : json_pack("{s:o}", list_key, arr);
    char *text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (text == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    if (more && count > 0)
        pt_http_headerf(req, "Link", "<%s?last=%s&n=%zu>; rel=\"next\"", link_path, v[count - 1],
                        n);
    pt_http_send(req, 200, "application/json", text, strlen(text));
    free(text);
}

static int parse_page(h2o_req_t *req, size_t *n, char *last, size_t last_cap)
{
    h2o_iovec_t q = pt_http_query(req);
    int rv = pt_query_pagination(q.base, q.len, PT_METASTORE_LIST_MAX, PT_METASTORE_LIST_MAX, n,
                                 last, last_cap);
    if (rv != 0)
        pt_http_error(req, PT_E_PAGINATION_NUMBER_INVALID, NULL, NULL);
    return rv;
}

static void list_tags(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    char *name = pt_api_name(req, rt);
    size_t n;
    char last[PT_TAG_MAX + 1];
    if (parse_page(req, &n, last, sizeof(last)) != 0)
        return;
    if (pt_metastore_repo_exists(w->node->ms, name) != 1) {
        pt_http_error(req, PT_E_NAME_UNKNOWN, NULL, NULL);
        return;
    }
    char **tags = NULL;
    size_t count = 0;
    int more = 0;
    int rv = pt_metastore_list_tags(w->node->ms, name, last, n, &tags, &count, &more);
    if (rv != 0) {
        pt_http_error(req, rv, NULL, NULL);
        return;
    }
    char link[PT_NAME_MAX + 32];
    snprintf(link, sizeof(link), "/v2/%s/tags/list", name);
    send_listing(req, name, "tags", tags, count, more, n, link);
    pt_strv_free(tags, count);
}

void pt_api_tags(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    if (!pt_http_method_is(req, "GET") && !pt_http_is_head(req)) {
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
        return;
    }
    pt_api_tag_read(w, req, rt, list_tags);
}

/* Pages through the repositories after last and keeps the ones req's identity may pull,
 * up to n of them. The walk reads at most CATALOG_SCAN_MAX names per request; when it stops
 * there, *more is set and the Link continues after the last name kept (a page with none kept
 * ends the listing there: the client sees fewer names, never one it may not pull). */
#define CATALOG_SCAN_MAX (64 * PT_METASTORE_LIST_MAX)

static int list_readable(struct pt_worker *w, h2o_req_t *req, const char *last, size_t n,
                         char ***out, size_t *count, int *more)
{
    char **keep = calloc(n > 0 ? n : 1, sizeof(*keep));
    char cursor[PT_NAME_MAX + 1];
    size_t kept = 0, scanned = 0;
    int page_more = 1, rv = 0;
    if (keep == NULL)
        return PT_E_NOMEM;
    snprintf(cursor, sizeof(cursor), "%s", last);
    while (kept < n && page_more && scanned < CATALOG_SCAN_MAX) {
        char **page = NULL;
        size_t got = 0;
        rv = pt_metastore_list_repos(w->node->ms, cursor, n, &page, &got, &page_more);
        if (rv != 0)
            break;
        scanned += got;
        size_t i;
        for (i = 0; i < got && kept < n; i++) {
            snprintf(cursor, sizeof(cursor), "%s", page[i]);
            if (pt_auth_identity_actions(w, req, page[i], strlen(page[i])) & PT_ACTION_PULL) {
                keep[kept++] = page[i];
                page[i] = NULL;
            }
        }
        if (i < got)
            page_more = 1; /* names of this page left unexamined */
        pt_strv_free(page, got);
        if (got == 0)
            page_more = 0;
    }
    if (rv != 0) {
        pt_strv_free(keep, kept);
        return rv;
    }
    *out = keep;
    *count = kept;
    *more = page_more;
    return 0;
}

void pt_api_catalog(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    (void)rt;
    if (!pt_http_method_is(req, "GET") && !pt_http_is_head(req)) {
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
        return;
    }
    size_t n;
    char last[PT_NAME_MAX + 1];
    if (parse_page(req, &n, last, sizeof(last)) != 0)
        return;
    char **repos = NULL;
    size_t count = 0;
    int more = 0;
    int rv = pt_auth_is_admin(w, req)
                 ? pt_metastore_list_repos(w->node->ms, last, n, &repos, &count, &more)
                 : list_readable(w, req, last, n, &repos, &count, &more);
    if (rv != 0) {
        pt_http_error(req, rv, NULL, NULL);
        return;
    }
    send_listing(req, NULL, "repositories", repos, count, more, n, "/v2/_catalog");
    pt_strv_free(repos, count);
}
