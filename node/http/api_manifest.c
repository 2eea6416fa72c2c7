/*
 * api_manifest.c - /v2/<name>/manifests/<reference>: end-3 (GET/HEAD), end-7 (PUT),
 * end-9 (DELETE by digest) and tag DELETE, as in the OCI distribution-spec v1.1
 * ("Pulling manifests", "Pushing Manifests", "Deleting Manifests", "Deleting tags").
 *
 * PUT validates before anything is proposed: size limit, media type and structure
 * (manifest.c), the digest when the reference is one, every tag given in the path or as
 * ?tag= parameters, and that every blob (config, layers) is linked in the repository and
 * every child manifest of an index exists there. Foreign layers (descriptors with urls:
 * non-distributable layers) are not blobs the manifest requires (manifest.h): they are neither
 * checked nor listed in the PutManifest command, so GC and replication never look for them. The
 * exact bytes are stored and served, so the digest clients compute always matches. A manifest whose
 * subject does not exist yet is accepted (OCI-Subject is still returned).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_common.h"
#include "command.h"
#include "digest.h"
#include "err.h"
#include "http.h"
#include "manifest.h"
#include "metastore.h"
#include "worker.h"
#include "query.h"
#include "reference.h"

#define MAX_EXTRA_TAGS 32

struct put_done {
    char name[PT_NAME_MAX + 1];
    char digest[PT_DIGEST_STR_MAX + 1];
    char subject[PT_DIGEST_STR_MAX + 1];
};

static void send_manifest(h2o_req_t *req, const char *digest, struct pt_manifest_rec *rec)
{
    pt_http_header(req, "Docker-Content-Digest", digest, strlen(digest));
    pt_http_headerf(req, "ETag", "\"%s\"", digest);
    pt_http_send(req, 200, rec->media_type, rec->body, rec->len);
}

/* Resolves the reference of rt to a digest string; sends the error itself on failure. */
static int resolve(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt, const char *name,
                   char *digest)
{
    if (rt->ref_is_digest) {
        pt_digest_format(&rt->digest, digest);
        return 0;
    }
    char tag[PT_TAG_MAX + 1];
    snprintf(tag, sizeof(tag), "%.*s", (int)rt->ref_len, rt->ref);
    int rv = pt_metastore_get_tag(w->node->ms, name, tag, digest);
    if (rv == PT_E_MANIFEST_UNKNOWN && pt_metastore_repo_exists(w->node->ms, name) == 0)
        rv = PT_E_NAME_UNKNOWN;
    if (rv != 0)
        pt_http_error(req, rv, NULL, NULL);
    return rv;
}

static void lookup_manifest(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                            int may_catch_up);

static void get_manifest_again(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    lookup_manifest(w, req, rt, 0);
}

static void get_manifest(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    lookup_manifest(w, req, rt, 1);
}

static void lookup_manifest(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                            int may_catch_up)
{
    char *name = pt_api_name(req, rt);
    char digest[PT_DIGEST_STR_MAX + 1];
    if (resolve(w, req, rt, name, digest) != 0)
        return;
    struct pt_manifest_rec rec;
    int rv = pt_metastore_get_manifest(w->node->ms, name, digest, &rec);
    if (rv == PT_E_MANIFEST_UNKNOWN && may_catch_up && rt->ref_is_digest &&
        pt_api_catch_up(w, req, rt, digest, get_manifest_again) == 0)
        return;
    if (rv == PT_E_MANIFEST_UNKNOWN && pt_metastore_repo_exists(w->node->ms, name) == 0)
        rv = PT_E_NAME_UNKNOWN;
    if (rv != 0) {
        pt_http_error(req, rv, NULL, NULL);
        return;
    }
    send_manifest(req, digest, &rec);
    pt_manifest_rec_free(&rec);
}

static void on_put_done(h2o_req_t *req, int status, void *data)
{
    struct put_done *d = data;
    if (status == PT_E_QUOTA_EXCEEDED) { /* its blobs would cross a quota (api_quota.c) */
        pt_http_error(req, status,
                      "the manifest's blobs would exceed a storage quota of the "
                      "repository (portolan quota list)",
                      NULL);
        return;
    }
    if (status != 0) {
        pt_http_error(req, status, NULL, NULL);
        return;
    }
    pt_http_headerf(req, "Location", "/v2/%s/manifests/%s", d->name, d->digest);
    pt_http_header(req, "Docker-Content-Digest", d->digest, strlen(d->digest));
    if (d->subject[0] != '\0')
        pt_http_header(req, "OCI-Subject", d->subject, strlen(d->subject));
    pt_http_send_empty(req, 201);
}

/* Every blob must be linked in the repository and every child manifest present there. */
static int check_references(struct pt_metastore *ms, const char *name,
                            const struct pt_manifest_info *info, char *missing)
{
    for (size_t i = 0; i < info->nblobs; i++) {
        uint64_t size;
        pt_digest_format(&info->blobs[i].digest, missing);
        int rv = pt_metastore_blob_linked(ms, name, missing, &size);
        if (rv == PT_E_BLOB_UNKNOWN)
            return PT_E_MANIFEST_BLOB_UNKNOWN;
        if (rv != 0)
            return rv;
    }
    for (size_t i = 0; i < info->nchildren; i++) {
        struct pt_manifest_rec rec;
        pt_digest_format(&info->children[i].digest, missing);
        int rv = pt_metastore_get_manifest(ms, name, missing, &rec);
        if (rv == PT_E_MANIFEST_UNKNOWN)
            return PT_E_MANIFEST_BLOB_UNKNOWN;
        if (rv != 0)
            return rv;
        pt_manifest_rec_free(&rec);
    }
    return 0;
}

/* Collects the tags to point at the manifest: the reference (if a tag) and ?tag= values. */
static int collect_tags(h2o_req_t *req, const struct pt_route *rt, char **tags, size_t *ntags)
{
    h2o_iovec_t q = pt_http_query(req);
    *ntags = 0;
    if (!rt->ref_is_digest) {
        tags[0] = h2o_mem_alloc_pool(&req->pool, rt->ref_len + 1);
        memcpy(tags[0], rt->ref, rt->ref_len);
        tags[0][rt->ref_len] = '\0';
        *ntags = 1;
    }
    for (size_t i = 0;; i++) {
        char *tag = h2o_mem_alloc_pool(&req->pool, PT_TAG_MAX + 1);
        int len = pt_query_get(q.base, q.len, "tag", i, tag, PT_TAG_MAX + 1);
        if (len == PT_E_NOT_FOUND)
            break;
        if (len < 0 || pt_tag_validate(tag, (size_t)len) != 0)
            return PT_E_TAG_INVALID;
        if (*ntags >= MAX_EXTRA_TAGS + 1)
            return PT_E_TAG_INVALID;
        tags[(*ntags)++] = tag;
    }
    return 0;
}

static void store_manifest(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                           int may_catch_up);

static void put_manifest_again(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    store_manifest(w, req, rt, 0);
}

static void put_manifest(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    store_manifest(w, req, rt, 1);
}

static void store_manifest(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                           int may_catch_up)
{
    char *name = pt_api_name(req, rt);
    size_t len = req->entity.base != NULL ? req->entity.len : 0;
    if (len > w->node->cfg.max_manifest_size) {
        pt_http_error(req, PT_E_MANIFEST_TOO_LARGE, NULL, NULL);
        return;
    }
    h2o_iovec_t ct = pt_http_req_header(req, "content-type");
    char content_type[256] = "";
    if (ct.base != NULL)
        snprintf(content_type, sizeof(content_type), "%.*s", (int)ct.len, ct.base);

    struct pt_manifest_info info;
    int rv = pt_manifest_parse(req->entity.base, len, ct.base != NULL ? content_type : NULL, &info);
    if (rv != 0) {
        pt_http_error(req, rv, NULL, NULL);
        return;
    }
    struct put_done done;
    snprintf(done.name, sizeof(done.name), "%s", name);
    /* Stored under the digest named in the path, hashed with its algorithm; a push by tag is
     * stored under the canonical sha256 digest. Docker-Content-Digest answers that digest. */
    struct pt_digest computed;
    pt_digest_of_algo(req->entity.base, len, rt->ref_is_digest ? rt->digest.algo : PT_DIGEST_SHA256,
                      &computed);
    pt_digest_format(&computed, done.digest);
    done.subject[0] = '\0';
    if (info.has_subject)
        pt_digest_format(&info.subject, done.subject);

    char *tags[MAX_EXTRA_TAGS + 1];
    size_t ntags;
    char missing[PT_DIGEST_STR_MAX + 1];
    if (rt->ref_is_digest && !pt_digest_equal(&rt->digest, &computed)) {
        rv = PT_E_DIGEST_INVALID;
    } else if ((rv = collect_tags(req, rt, tags, &ntags)) != 0) {
        /* rv set */
    } else if ((rv = check_references(w->node->ms, name, &info, missing)) != 0) {
        /* Blobs pushed through another region a moment ago may not be applied here yet. */
        if (!(rv == PT_E_MANIFEST_BLOB_UNKNOWN && may_catch_up &&
              pt_api_catch_up(w, req, rt, NULL, put_manifest_again) == 0))
            pt_http_error(req, rv, NULL, rv == PT_E_MANIFEST_BLOB_UNKNOWN ? missing : NULL);
        pt_manifest_info_free(&info);
        return;
    }
    if (rv != 0) {
        pt_http_error(req, rv, NULL, NULL);
        pt_manifest_info_free(&info);
        return;
    }

    size_t nblobs = info.nblobs, nchildren = info.nchildren;
    char **blobs = h2o_mem_alloc_pool(&req->pool, sizeof(char *) * (nblobs + 1));
    char **children = h2o_mem_alloc_pool(&req->pool, sizeof(char *) * (nchildren + 1));
    for (size_t i = 0; i < nblobs; i++) {
        blobs[i] = h2o_mem_alloc_pool(&req->pool, PT_DIGEST_STR_MAX + 1);
        pt_digest_format(&info.blobs[i].digest, blobs[i]);
    }
    for (size_t i = 0; i < nchildren; i++) {
        children[i] = h2o_mem_alloc_pool(&req->pool, PT_DIGEST_STR_MAX + 1);
        pt_digest_format(&info.children[i].digest, children[i]);
    }
    struct pt_command_manifest pm = {
        .repo = name,
        .digest = done.digest,
        .media_type = info.media_type,
        .body = req->entity.base,
        .len = len,
        .tags = (const char *const *)tags,
        .n_tags = ntags,
        .subject = done.subject,
        .artifact_type = info.artifact_type,
        .annotations = info.annotations,
        .annotations_len = info.annotations != NULL ? strlen(info.annotations) : 0,
        .blobs = (const char *const *)blobs,
        .n_blobs = nblobs,
        .children = (const char *const *)children,
        .n_children = nchildren,
    };
    struct pt_command_builder b;
    rv = pt_api_command(w, &b);
    if (rv == 0)
        rv = pt_api_commit(w, req, &b, pt_command_add_put_manifest(&b, &pm), on_put_done, &done,
                           sizeof(done));
    pt_manifest_info_free(&info);
    if (rv != 0)
        pt_http_error(req, rv, NULL, NULL);
}

static void on_delete_done(h2o_req_t *req, int status, void *data)
{
    (void)data;
    if (status != 0)
        pt_http_error(req, status, NULL, NULL);
    else
        pt_http_send_empty(req, 202);
}

static void delete_manifest(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    char *name = pt_api_name(req, rt);
    char ref[PT_TAG_MAX + PT_DIGEST_STR_MAX + 2];
    snprintf(ref, sizeof(ref), "%.*s", (int)rt->ref_len, rt->ref);
    if (pt_metastore_repo_exists(w->node->ms, name) == 0) {
        pt_http_error(req, PT_E_NAME_UNKNOWN, NULL, NULL);
        return;
    }
    char digest[PT_DIGEST_STR_MAX + 1];
    struct pt_command_builder b;
    int rv = pt_api_command(w, &b);
    if (rv == 0) {
        int added;
        if (rt->ref_is_digest) {
            pt_digest_format(&rt->digest, digest);
            added = pt_command_add_delete_manifest(&b, name, digest);
        } else {
            added = pt_command_add_delete_tag(&b, name, ref);
        }
        rv = pt_api_commit(w, req, &b, added, on_delete_done, NULL, 0);
    }
    if (rv != 0)
        pt_http_error(req, rv, NULL, NULL);
}

/* distribution-spec end-3 and end-9 fail with 404, and a reference outside the tag grammar
 * names no manifest, ever: it is answered like any unknown one (CNCF Distribution's routes do
 * not match it at all and answer 404 too). Only a push is told that the tag is invalid. The
 * answer does not depend on the latest tags, so no read index is needed. */
void pt_api_manifest_bad_tag(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    int rv = PT_E_METHOD;
    if (pt_http_method_is(req, "PUT"))
        rv = PT_E_TAG_INVALID;
    else if (pt_http_method_is(req, "GET") || pt_http_is_head(req) ||
             pt_http_method_is(req, "DELETE"))
        rv = pt_metastore_repo_exists(w->node->ms, pt_api_name(req, rt)) == 0
                 ? PT_E_NAME_UNKNOWN
                 : PT_E_MANIFEST_UNKNOWN;
    pt_http_error(req, rv, NULL, NULL);
}

void pt_api_manifest(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    if ((pt_http_method_is(req, "GET") || pt_http_is_head(req)) && rt->ref_is_digest)
        get_manifest(w, req, rt); /* immutable content: always the local copy */
    else if (pt_http_method_is(req, "GET") || pt_http_is_head(req))
        pt_api_tag_read(w, req, rt, get_manifest);
    else if (pt_http_method_is(req, "PUT"))
        put_manifest(w, req, rt);
    else if (pt_http_method_is(req, "DELETE"))
        delete_manifest(w, req, rt);
    else
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
}
