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
 *
 * Threads: handlers run on their HTTP loop. A PUT's body (up to max_manifest_size) is copied
 * there and its parsing, hashing and reference checks (up to the parser's bounds of blobs and
 * children, one store lookup each) run on the libuv thread pool (struct put_op); the command
 * is proposed from the loop afterwards, and a request gone meanwhile only frees the work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_common.h"
#include "async.h"
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
    struct pt_metastore *ms; /* the node's, to word a refusal of the locks and rules */
    char name[PT_NAME_MAX + 1];
    char digest[PT_DIGEST_STR_MAX + 1];
    char subject[PT_DIGEST_STR_MAX + 1];
    size_t ntags;
    char tags[MAX_EXTRA_TAGS + 1][PT_TAG_MAX + 1];
};

/* What a delete was: the words of a refusal come from it. */
struct delete_done {
    struct pt_metastore *ms;
    char name[PT_NAME_MAX + 1];
    char tag[PT_TAG_MAX + 1];           /* "" when by digest */
    char digest[PT_DIGEST_STR_MAX + 1]; /* "" when by tag */
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
    if (status == PT_E_LOCKED || status == PT_E_IMMUTABLE) {
        char msg[PT_POLICY_MSG_MAX];
        int rv = pt_metastore_policy_explain(d->ms, PT_POLICY_PUSH, d->name, NULL, d->digest, msg,
                                             sizeof(msg));
        for (size_t i = 0; rv == 0 && i < d->ntags; i++)
            rv = pt_metastore_policy_explain(d->ms, PT_POLICY_TAG_WRITE, d->name, d->tags[i],
                                             d->digest, msg, sizeof(msg));
        pt_http_error(req, status, rv == status ? msg : NULL, NULL);
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

/* Collects the tags to point at the manifest: the reference (if a tag) and ?tag= values,
 * copied into tags (MAX_EXTRA_TAGS + 1 of them at most). */
static int collect_tags(h2o_req_t *req, const struct pt_route *rt, char (*tags)[PT_TAG_MAX + 1],
                        size_t *ntags)
{
    h2o_iovec_t q = pt_http_query(req);
    *ntags = 0;
    if (!rt->ref_is_digest) {
        snprintf(tags[0], PT_TAG_MAX + 1, "%.*s", (int)rt->ref_len, rt->ref);
        *ntags = 1;
    }
    for (size_t i = 0;; i++) {
        char tag[PT_TAG_MAX + 1];
        int len = pt_query_get(q.base, q.len, "tag", i, tag, sizeof(tag));
        if (len == PT_E_NOT_FOUND)
            break;
        if (len < 0 || pt_tag_validate(tag, (size_t)len) != 0)
            return PT_E_TAG_INVALID;
        if (*ntags >= MAX_EXTRA_TAGS + 1)
            return PT_E_TAG_INVALID;
        memcpy(tags[(*ntags)++], tag, (size_t)len + 1);
    }
    return 0;
}

/* A manifest PUT between the loop and the thread pool: the loop copies the body and the
 * tags, the pool parses, hashes and checks the references, the loop proposes. */
struct put_op {
    struct pt_async async;
    uv_work_t work;
    struct pt_worker *w;
    struct pt_route rt; /* its pointers borrow from the request: used only while it lives */
    int may_catch_up;
    char *body; /* owned copy of the request body */
    size_t len;
    char content_type[256];
    int has_content_type;
    int tags_rv; /* collect_tags' result, answered in its turn */
    struct put_done done;
    /* the work's results */
    int status;
    int parsed; /* info holds allocations */
    struct pt_manifest_info info;
    char missing[PT_DIGEST_STR_MAX + 1];
    char (*blobs)[PT_DIGEST_STR_MAX + 1];    /* owned: info.nblobs formatted digests */
    char (*children)[PT_DIGEST_STR_MAX + 1]; /* owned: info.nchildren */
};

static void put_op_free(struct put_op *op)
{
    if (op->parsed)
        pt_manifest_info_free(&op->info);
    free(op->blobs);
    free(op->children);
    free(op->body);
    free(op);
}

/* Thread pool: parse, hash and the reference checks, in the order errors are answered. */
static void put_work(uv_work_t *work)
{
    struct put_op *op = work->data;
    int rv = pt_manifest_parse(op->body, op->len, op->has_content_type ? op->content_type : NULL,
                               &op->info);
    if (rv != 0) {
        op->status = rv;
        return;
    }
    op->parsed = 1;
    /* Stored under the digest named in the path, hashed with its algorithm; a push by tag is
     * stored under the canonical sha256 digest. Docker-Content-Digest answers that digest. */
    struct pt_digest computed;
    pt_digest_of_algo(op->body, op->len,
                      op->rt.ref_is_digest ? op->rt.digest.algo : PT_DIGEST_SHA256, &computed);
    pt_digest_format(&computed, op->done.digest);
    op->done.subject[0] = '\0';
    if (op->info.has_subject)
        pt_digest_format(&op->info.subject, op->done.subject);
    if (op->rt.ref_is_digest && !pt_digest_equal(&op->rt.digest, &computed)) {
        op->status = PT_E_DIGEST_INVALID;
        return;
    }
    if (op->tags_rv != 0) {
        op->status = op->tags_rv;
        return;
    }
    if ((rv = check_references(op->done.ms, op->done.name, &op->info, op->missing)) != 0) {
        op->status = rv;
        return;
    }
    size_t nb = op->info.nblobs, nc = op->info.nchildren;
    op->blobs = malloc((nb > 0 ? nb : 1) * sizeof(*op->blobs));
    op->children = malloc((nc > 0 ? nc : 1) * sizeof(*op->children));
    if (op->blobs == NULL || op->children == NULL) {
        op->status = PT_E_NOMEM;
        return;
    }
    for (size_t i = 0; i < nb; i++)
        pt_digest_format(&op->info.blobs[i].digest, op->blobs[i]);
    for (size_t i = 0; i < nc; i++)
        pt_digest_format(&op->info.children[i].digest, op->children[i]);
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

/* Loop: the work's answer, or the PutManifest proposed. */
static void put_after(uv_work_t *work, int status)
{
    struct put_op *op = work->data;
    h2o_req_t *req = pt_async_unbind(&op->async);
    int rv = status != 0 ? PT_E_INTERNAL : op->status;
    if (req == NULL) {
        put_op_free(op);
        return;
    }
    if (rv == PT_E_MANIFEST_BLOB_UNKNOWN) {
        /* Blobs pushed through another region a moment ago may not be applied here yet. */
        if (!(op->may_catch_up &&
              pt_api_catch_up(op->w, req, &op->rt, NULL, put_manifest_again) == 0))
            pt_http_error(req, rv, NULL, op->missing);
        put_op_free(op);
        return;
    }
    if (rv != 0) {
        pt_http_error(req, rv, NULL, NULL);
        put_op_free(op);
        return;
    }
    const char *tags[MAX_EXTRA_TAGS + 1];
    const char *blobs[1], *children[1];
    const char **bv = op->info.nblobs > 0 ? malloc(op->info.nblobs * sizeof(*bv)) : blobs;
    const char **cv = op->info.nchildren > 0 ? malloc(op->info.nchildren * sizeof(*cv)) : children;
    if (bv == NULL || cv == NULL) {
        if (bv != blobs)
            free(bv);
        if (cv != children)
            free(cv);
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        put_op_free(op);
        return;
    }
    for (size_t i = 0; i < op->done.ntags; i++)
        tags[i] = op->done.tags[i];
    for (size_t i = 0; i < op->info.nblobs; i++)
        bv[i] = op->blobs[i];
    for (size_t i = 0; i < op->info.nchildren; i++)
        cv[i] = op->children[i];
    struct pt_command_manifest pm = {
        .repo = op->done.name,
        .digest = op->done.digest,
        .media_type = op->info.media_type,
        .body = op->body,
        .len = op->len,
        .tags = tags,
        .n_tags = op->done.ntags,
        .subject = op->done.subject,
        .artifact_type = op->info.artifact_type,
        .annotations = op->info.annotations,
        .annotations_len = op->info.annotations != NULL ? strlen(op->info.annotations) : 0,
        .blobs = bv,
        .n_blobs = op->info.nblobs,
        .children = cv,
        .n_children = op->info.nchildren,
    };
    struct pt_command_builder b;
    rv = pt_api_command(op->w, &b);
    if (rv == 0)
        rv = pt_api_commit(op->w, req, &b, pt_command_add_put_manifest(&b, &pm), on_put_done,
                           &op->done, sizeof(op->done));
    if (rv != 0)
        pt_http_error(req, rv, NULL, NULL);
    if (bv != blobs)
        free(bv);
    if (cv != children)
        free(cv);
    put_op_free(op);
}

static void store_manifest(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                           int may_catch_up)
{
    size_t len = req->entity.base != NULL ? req->entity.len : 0;
    if (len > w->node->cfg.max_manifest_size) {
        pt_http_error(req, PT_E_MANIFEST_TOO_LARGE, NULL, NULL);
        return;
    }
    struct put_op *op = calloc(1, sizeof(*op));
    char *body = malloc(len > 0 ? len : 1);
    if (op == NULL || body == NULL) {
        free(op);
        free(body);
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    if (len > 0)
        memcpy(body, req->entity.base, len);
    op->body = body;
    op->len = len;
    op->w = w;
    op->rt = *rt;
    op->may_catch_up = may_catch_up;
    h2o_iovec_t ct = pt_http_req_header(req, "content-type");
    if (ct.base != NULL) {
        snprintf(op->content_type, sizeof(op->content_type), "%.*s", (int)ct.len, ct.base);
        op->has_content_type = 1;
    }
    op->done.ms = w->node->ms;
    snprintf(op->done.name, sizeof(op->done.name), "%s", pt_api_name(req, rt));
    op->tags_rv = collect_tags(req, rt, op->done.tags, &op->done.ntags);
    op->work.data = op;
    pt_async_bind(&op->async, req);
    if (uv_queue_work(&w->loop, &op->work, put_work, put_after) != 0) {
        pt_http_error(pt_async_unbind(&op->async), PT_E_INTERNAL, NULL, NULL);
        put_op_free(op);
    }
}

static void on_delete_done(h2o_req_t *req, int status, void *data)
{
    struct delete_done *d = data;
    if (status == PT_E_LOCKED || status == PT_E_IMMUTABLE) {
        char msg[PT_POLICY_MSG_MAX];
        int rv = d->tag[0] != '\0'
                     ? pt_metastore_policy_explain(d->ms, PT_POLICY_TAG_DELETE, d->name, d->tag,
                                                   NULL, msg, sizeof(msg))
                     : pt_metastore_policy_explain(d->ms, PT_POLICY_MANIFEST_DELETE, d->name, NULL,
                                                   d->digest, msg, sizeof(msg));
        pt_http_error(req, status, rv == status ? msg : NULL, NULL);
    } else if (status != 0)
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
    struct delete_done d = {.ms = w->node->ms};
    snprintf(d.name, sizeof(d.name), "%s", name);
    struct pt_command_builder b;
    int rv = pt_api_command(w, &b);
    if (rv == 0) {
        int added;
        if (rt->ref_is_digest) {
            pt_digest_format(&rt->digest, d.digest);
            added = pt_command_add_delete_manifest(&b, name, d.digest);
        } else {
            snprintf(d.tag, sizeof(d.tag), "%.*s", (int)sizeof(d.tag) - 1, ref);
            added = pt_command_add_delete_tag(&b, name, ref);
        }
        rv = pt_api_commit(w, req, &b, added, on_delete_done, &d, sizeof(d));
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
