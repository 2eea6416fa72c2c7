/*
 * api_replication.c - GET|HEAD /admin/replication/image?name=<repo>&reference=<tag|digest>:
 * which regions hold every blob of one image, and what each other region still lacks
 * (the shape is in replication_status.h; the operator's client is `portolan replication
 * status NAME:TAG`, node/cli.c).
 *
 * Design: the query is checked on the loop; everything else reads the metadata store and may
 * touch thousands of records (an index with many children), so it runs in the thread pool and
 * the answer goes out from the loop afterwards, tied to the request with pt_async. The tag is
 * resolved from this region's applied state (no read index: this is an operator's view of
 * local progress, not a pull). For an image index the child manifests are walked breadth
 * first, each once, nested indexes included; child manifests no longer stored are skipped.
 * Holders come from blob_locations; a blob no region has recorded has no holders and keeps the
 * size its descriptor declares. The regions are the cluster's region records plus this
 * region (a single region has no records).
 *
 * Limits: at most PT_REPLICATION_IMAGE_MANIFESTS_MAX manifests walked, IMAGE_BYTES_MAX bytes of
 * manifest bodies read, PT_REPLICATION_IMAGE_BLOBS_MAX distinct blobs and
 * PT_ADMIN_IMAGE_REGIONS_MAX regions; beyond them the answer is 413 SIZE_INVALID. The digest
 * index hashes the first hex digits of SHA-256 digests (uniform for content addresses; blobs
 * ground to collide only lengthen probes, which the entry limits bound); entries are kept
 * below half the table so probes always end.
 */
#include "replication_status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "async.h"
#include "cluster_config.h"
#include "buf.h"
#include "err.h"
#include "http.h"
#include "metastore.h"
#include "worker.h"
#include "query.h"

/* ---- the summary (pure) ------------------------------------------------------------------ */

#define INDEX_SLOTS 32768u /* power of two */

_Static_assert(PT_REPLICATION_IMAGE_BLOBS_MAX < INDEX_SLOTS / 2, "digest index too small");
_Static_assert(PT_REPLICATION_IMAGE_MANIFESTS_MAX < INDEX_SLOTS / 2, "digest index too small");

static size_t digest_slot(const char *hex)
{
    size_t h = 0;
    for (int i = 0; i < 8; i++) {
        char c = hex[i];
        h = (h << 4) | (size_t)(c >= 'a' ? c - 'a' + 10 : c - '0');
    }
    return h & (INDEX_SLOTS - 1);
}

/*
 * Looks d up in slots, whose entries are positions + 1 of digests that same(arg, pos, d)
 * compares with d (1 when equal). Returns the position + 1 of the digest, or 0 when absent with
 * *free_slot set to the slot where it belongs. The caller keeps fewer than INDEX_SLOTS / 2 entries,
 * so an empty slot always ends the probe.
 */
static size_t index_find(const uint32_t *slots, const struct pt_digest *d,
                         int (*same)(const void *, size_t, const struct pt_digest *),
                         const void *arg, size_t *free_slot)
{
    size_t i = digest_slot(d->hex);
    for (; slots[i] != 0; i = (i + 1) & (INDEX_SLOTS - 1)) {
        if (same(arg, slots[i] - 1, d))
            return slots[i];
    }
    *free_slot = i;
    return 0;
}

static int blob_same(const void *arg, size_t pos, const struct pt_digest *d)
{
    const struct pt_replication_image *img = arg;
    char text[PT_DIGEST_STR_MAX + 1];
    pt_digest_format(d, text);
    return strcmp(img->blobs[pos].digest, text) == 0;
}

void pt_replication_image_init(struct pt_replication_image *img)
{
    memset(img, 0, sizeof(*img));
}

void pt_replication_image_free(struct pt_replication_image *img)
{
    if (img == NULL)
        return;
    for (size_t i = 0; i < img->nblobs; i++)
        pt_strv_free(img->blobs[i].holders, img->blobs[i].nholders);
    free(img->blobs);
    free(img->regions);
    free(img->slots);
    memset(img, 0, sizeof(*img));
}

int pt_replication_image_add_region(struct pt_replication_image *img, const char *region)
{
    size_t len = strnlen(region, PT_CLUSTER_NAME_MAX + 1);
    if (len == 0 || len > PT_CLUSTER_NAME_MAX)
        return PT_E_INTERNAL;
    size_t lo = 0, hi = img->nregions;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(img->regions[mid], region);
        if (c == 0)
            return 0;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (img->nregions == PT_ADMIN_IMAGE_REGIONS_MAX)
        return PT_E_TOO_LARGE;
    void *p = realloc(img->regions, (img->nregions + 1) * sizeof(*img->regions));
    if (p == NULL)
        return PT_E_NOMEM;
    img->regions = p;
    memmove(img->regions + lo + 1, img->regions + lo, (img->nregions - lo) * sizeof(*img->regions));
    memcpy(img->regions[lo], region, len + 1);
    img->nregions++;
    return 0;
}

int pt_replication_image_add_blob(struct pt_replication_image *img, const struct pt_digest *digest,
                                  uint64_t size)
{
    if (img->slots == NULL) {
        img->slots = calloc(INDEX_SLOTS, sizeof(*img->slots));
        if (img->slots == NULL)
            return PT_E_NOMEM;
    }
    size_t slot = 0;
    if (index_find(img->slots, digest, blob_same, img, &slot) != 0)
        return 1;
    if (img->nblobs == PT_REPLICATION_IMAGE_BLOBS_MAX)
        return PT_E_TOO_LARGE;
    if (img->nblobs == img->blobs_cap &&
        pt_array_grow(&img->blobs, &img->blobs_cap, sizeof(*img->blobs), 16,
                      PT_REPLICATION_IMAGE_BLOBS_MAX) != 0)
        return PT_E_NOMEM;
    struct pt_replication_blob *b = &img->blobs[img->nblobs];
    memset(b, 0, sizeof(*b));
    pt_digest_format(digest, b->digest);
    b->size = size;
    img->slots[slot] = (uint32_t)++img->nblobs;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int pt_replication_blob_held_by(const struct pt_replication_blob *blob, const char *region)
{
    if (blob->nholders == 0)
        return 0;
    return bsearch(&region, blob->holders, blob->nholders, sizeof(*blob->holders), cmp_str) != NULL;
}

void pt_replication_image_gap(const struct pt_replication_image *img, const char *region,
                              struct pt_replication_gap *out)
{
    out->blobs = 0;
    out->bytes = 0;
    for (size_t i = 0; i < img->nblobs; i++) {
        const struct pt_replication_blob *b = &img->blobs[i];
        if (pt_replication_blob_held_by(b, region))
            continue;
        out->blobs++;
        out->bytes =
            b->size > (uint64_t)INT64_MAX - out->bytes ? (uint64_t)INT64_MAX : out->bytes + b->size;
    }
}

/* Appends v to a (both may be NULL after an allocation failure); returns v != NULL. */
static int append(json_t *a, json_t *v)
{
    return v != NULL && json_array_append_new(a, v) == 0;
}

json_t *pt_replication_image_json(const struct pt_replication_image *img)
{
    json_t *regions = json_array(), *blobs = json_array(), *complete = json_array();
    json_t *missing = json_object();
    int ok = regions != NULL && blobs != NULL && complete != NULL && missing != NULL;

    for (size_t i = 0; ok && i < img->nregions; i++) {
        const char *r = img->regions[i];
        struct pt_replication_gap gap;
        ok = append(regions, json_string(r));
        pt_replication_image_gap(img, r, &gap);
        if (ok && gap.blobs == 0)
            ok = append(complete, json_string(r));
        else if (ok)
            ok = json_object_set_new(missing, r,
                                     json_pack("{s:I,s:I}", "blobs", (json_int_t)gap.blobs, "bytes",
                                               (json_int_t)gap.bytes)) == 0;
    }
    for (size_t i = 0; ok && i < img->nblobs; i++) {
        const struct pt_replication_blob *b = &img->blobs[i];
        json_t *holders = json_array();
        ok = holders != NULL;
        for (size_t j = 0; ok && j < b->nholders; j++)
            ok = append(holders, json_string(b->holders[j]));
        if (!ok) {
            json_decref(holders);
            break;
        }
        ok = append(blobs, json_pack("{s:s,s:I,s:o}", "digest", b->digest, "size",
                                     (json_int_t)b->size, "regions", holders));
    }
    if (!ok) {
        json_decref(regions);
        json_decref(blobs);
        json_decref(complete);
        json_decref(missing);
        return NULL;
    }
    return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o}", "name", img->name, "reference",
                     img->reference, "digest", img->digest, "regions", regions, "blobs", blobs,
                     "complete", complete, "missing", missing);
}

/* ---- the handler ------------------------------------------------------------------------- */

#define IMAGE_BYTES_MAX (128u << 20) /* manifest bodies read for one image */

struct image_op {
    struct pt_async async;
    uv_work_t work;
    struct pt_metastore *ms;
    const struct pt_cluster_config *cluster; /* the cluster file (read-only), or NULL */
    char own_region[PT_CLUSTER_NAME_MAX + 1];
    int is_digest;
    struct pt_digest digest; /* when is_digest */
    struct pt_replication_image img;
    int status;         /* PT_E_* of the work, 0 when text is the answer */
    const char *detail; /* static message for the error, or NULL */
    char *text;         /* owned: the JSON answer */
};

/* Manifests of the walk, each once: the breadth-first queue is also the visited set. */
struct walk {
    struct pt_digest *queue; /* owned */
    size_t n, cap, next;
    uint32_t *slots; /* owned */
};

static int walk_same(const void *arg, size_t pos, const struct pt_digest *d)
{
    const struct walk *wk = arg;
    return pt_digest_equal(&wk->queue[pos], d);
}

/* Queues d unless seen. Returns 0 or PT_E_TOO_LARGE / PT_E_NOMEM. */
static int walk_push(struct walk *wk, const struct pt_digest *d)
{
    size_t slot = 0;
    if (wk->slots == NULL) {
        wk->slots = calloc(INDEX_SLOTS, sizeof(*wk->slots));
        if (wk->slots == NULL)
            return PT_E_NOMEM;
    }
    if (index_find(wk->slots, d, walk_same, wk, &slot) != 0)
        return 0;
    if (wk->n == PT_REPLICATION_IMAGE_MANIFESTS_MAX)
        return PT_E_TOO_LARGE;
    if (wk->n == wk->cap && pt_array_grow(&wk->queue, &wk->cap, sizeof(*wk->queue), 16,
                                          PT_REPLICATION_IMAGE_MANIFESTS_MAX) != 0)
        return PT_E_NOMEM;
    wk->queue[wk->n] = *d;
    wk->slots[slot] = (uint32_t)++wk->n;
    return 0;
}

/* Lists the blobs of every manifest reachable from the first one queued. */
static int walk_manifests(struct image_op *op, struct walk *wk)
{
    uint64_t read = 0;
    for (; wk->next < wk->n; wk->next++) {
        char digest[PT_DIGEST_STR_MAX + 1];
        struct pt_manifest_rec rec;
        struct pt_manifest_info info;
        pt_digest_format(&wk->queue[wk->next], digest);
        int rv = pt_metastore_get_manifest(op->ms, op->img.name, digest, &rec);
        if (rv == PT_E_MANIFEST_UNKNOWN && wk->next > 0)
            continue; /* a child deleted since its index was pushed */
        if (rv != 0)
            return rv;
        if (rec.len > IMAGE_BYTES_MAX - read) {
            pt_manifest_rec_free(&rec);
            op->detail = "the image's manifests are too large to summarize";
            return PT_E_TOO_LARGE;
        }
        read += rec.len;
        rv = pt_manifest_parse(rec.body, rec.len, rec.media_type, &info);
        pt_manifest_rec_free(&rec);
        if (rv != 0)
            return rv == PT_E_NOMEM ? rv : PT_E_CORRUPT; /* it was valid when stored */
        for (size_t i = 0; rv >= 0 && i < info.nblobs; i++)
            rv = pt_replication_image_add_blob(&op->img, &info.blobs[i].digest, info.blobs[i].size);
        if (rv == PT_E_TOO_LARGE)
            op->detail = "the image references too many blobs to summarize";
        for (size_t i = 0; rv >= 0 && i < info.nchildren; i++)
            rv = walk_push(wk, &info.children[i].digest);
        if (rv == PT_E_TOO_LARGE && op->detail == NULL)
            op->detail = "the image has too many manifests to summarize";
        pt_manifest_info_free(&info);
        if (rv < 0)
            return rv;
    }
    return 0;
}

static int collect(struct image_op *op)
{
    struct pt_replication_image *img = &op->img;
    int rv = pt_metastore_repo_exists(op->ms, img->name);
    if (rv <= 0)
        return rv < 0 ? rv : PT_E_NAME_UNKNOWN;
    struct pt_digest top = op->digest;
    if (!op->is_digest) {
        char digest[PT_DIGEST_STR_MAX + 1];
        rv = pt_metastore_get_tag(op->ms, img->name, img->reference, digest);
        if (rv != 0)
            return rv;
        if (pt_digest_parse(digest, strlen(digest), &top) != 0)
            return PT_E_CORRUPT;
    }
    pt_digest_format(&top, img->digest);

    struct walk wk = {0};
    rv = walk_push(&wk, &top);
    if (rv == 0)
        rv = walk_manifests(op, &wk);
    free(wk.queue);
    free(wk.slots);
    if (rv != 0)
        return rv;

    for (size_t i = 0; i < img->nblobs; i++) {
        struct pt_replication_blob *b = &img->blobs[i];
        uint64_t size;
        rv = pt_metastore_blob_regions(op->ms, b->digest, &size, &b->holders, &b->nholders);
        if (rv == PT_E_BLOB_UNKNOWN)
            continue;
        if (rv != 0)
            return rv;
        b->size = size;
    }

    struct pt_region_rec *recs = NULL;
    size_t nrecs = 0;
    rv = pt_metastore_list_regions(op->ms, &recs, &nrecs);
    for (size_t i = 0; rv == 0 && i < nrecs; i++) {
        if (recs[i].name[0] != '\0')
            rv = pt_replication_image_add_region(img, recs[i].name);
    }
    free(recs);
    /* regions of the cluster file have no records unless added later */
    for (size_t i = 0; rv == 0 && op->cluster != NULL && i < op->cluster->nregions; i++)
        rv = pt_replication_image_add_region(img, op->cluster->regions[i].name);
    if (rv == 0)
        rv = pt_replication_image_add_region(img, op->own_region);
    if (rv == PT_E_TOO_LARGE)
        op->detail = "the cluster has too many region records";
    return rv;
}

static void image_work(uv_work_t *work)
{
    struct image_op *op = work->data;
    op->status = collect(op);
    if (op->status != 0)
        return;
    json_t *doc = pt_replication_image_json(&op->img);
    op->text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (op->text == NULL)
        op->status = PT_E_NOMEM;
}

static void image_after(uv_work_t *work, int status)
{
    struct image_op *op = work->data;
    h2o_req_t *req = pt_async_unbind(&op->async);
    if (req != NULL && (status != 0 || op->status != 0))
        pt_http_error(req, op->status != 0 ? op->status : PT_E_INTERNAL, op->detail, NULL);
    else if (req != NULL)
        pt_http_send(req, 200, "application/json", op->text, strlen(op->text));
    pt_replication_image_free(&op->img);
    free(op->text);
    free(op);
}

/* Reads and checks name and reference from the query into op; sends the error itself. */
static int read_query(h2o_req_t *req, struct image_op *op)
{
    h2o_iovec_t q = pt_http_query(req);
    struct pt_replication_image *img = &op->img;
    int len = pt_query_get(q.base, q.len, "name", 0, img->name, sizeof(img->name));
    if (len == PT_E_NOT_FOUND || len == 0) {
        pt_http_error(req, PT_E_NAME_INVALID, "the name parameter (a repository) is required",
                      NULL);
        return -1;
    }
    if (len < 0 || pt_name_validate(img->name, (size_t)len) != 0) {
        pt_http_error(req, PT_E_NAME_INVALID, NULL, NULL);
        return -1;
    }
    len = pt_query_get(q.base, q.len, "reference", 0, img->reference, sizeof(img->reference));
    if (len == PT_E_NOT_FOUND || len == 0) {
        pt_http_error(req, PT_E_TAG_INVALID,
                      "the reference parameter (a tag or digest) is required", NULL);
        return -1;
    }
    if (len > 0 && memchr(img->reference, ':', (size_t)len) != NULL) {
        if (pt_digest_parse(img->reference, (size_t)len, &op->digest) != 0) {
            pt_http_error(req, PT_E_DIGEST_INVALID, "the reference is not a digest", NULL);
            return -1;
        }
        op->is_digest = 1;
        return 0;
    }
    if (len < 0 || pt_tag_validate(img->reference, (size_t)len) != 0) {
        pt_http_error(req, PT_E_TAG_INVALID, "the reference is neither a tag nor a digest", NULL);
        return -1;
    }
    return 0;
}

void pt_api_replication_image(struct pt_worker *w, h2o_req_t *req)
{
    if (!pt_http_method_is(req, "GET") && !pt_http_is_head(req)) {
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
        return;
    }
    struct image_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    pt_replication_image_init(&op->img);
    if (read_query(req, op) != 0) {
        free(op);
        return;
    }
    op->ms = w->node->ms;
    op->cluster = w->node->cluster;
    snprintf(op->own_region, sizeof(op->own_region), "%s", w->node->cfg.region);
    op->work.data = op;
    pt_async_bind(&op->async, req);
    if (uv_queue_work(&w->loop, &op->work, image_work, image_after) != 0) {
        pt_http_error(pt_async_unbind(&op->async), PT_E_INTERNAL, NULL, NULL);
        free(op);
    }
}
