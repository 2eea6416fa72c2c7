/*
 * api_upload.c - blob uploads, OCI distribution-spec v1.1 "Pushing blobs":
 *   POST   /v2/<name>/blobs/uploads/                 end-4a/4b  session, or monolithic ?digest=
 *   POST   /v2/<name>/blobs/uploads/?mount=&from=    end-11     cross-repository mount
 *   PATCH  /v2/<name>/blobs/uploads/<id>             end-5      chunk (Content-Range)
 *   PUT    /v2/<name>/blobs/uploads/<id>?digest=     end-6      last chunk + close
 *   GET    /v2/<name>/blobs/uploads/<id>             end-13     status
 *   DELETE /v2/<name>/blobs/uploads/<id>                        cancel
 *
 * h2o has buffered the request body before the handler runs (NOTES.md); a body above
 * body_spill_threshold lies in pages of h2o's unlinked, shared-mapped temp file. An ingest
 * moves the body into the upload file without blocking the loop:
 *  - spilled body: the ingest takes the body's pages into a mapping of its own (map_body),
 *    so they stay valid whatever h2o does with the request; one pool job hashes and writes
 *    it piece by piece (writeback started as it goes; hashing a piece just before writing it
 *    reads the body from memory once, which measured twice as fast as a hashing job and a
 *    writing job in parallel, each reading the whole body) and then records the chunk or
 *    commits the blob in the same thread. No byte is copied in user space or on the loop. The view
 * is unmapped before the answer: h2o reuses a connection's buffer only after it.
 *  - body in h2o's memory (at most the threshold): on the loop one slice (SLICE_SIZE) at a
 *    time is copied out, a pool thread appends it (pwrite + SHA-256), then the next slice.
 *    Copying lets a vanished client free its body at any moment: the pool thread only ever
 *    touches the ingest's own slice.
 * Memory per upload in flight: one slice, or no anonymous memory at all for a spilled body.
 *
 * Session state (offset, SHA-256 context, times) is recorded in the metadata store after
 * the data it covers is written (not fsync'd: one fsync at the final PUT suffices). What a
 * 202 to a PATCH guarantees: after a kill -9 of the node the chunk is there (the bytes are in
 * the page cache, the record in RocksDB's WAL), the file may only be longer than the record
 * says and start-up cuts it back (upload_expiry.c). After a power loss the session resumes at
 * the last recorded state that reached the disk (bytes past it are cut off), or, when a record
 * outlived its bytes, the start-up check of the file against the record drops the session and
 * the client starts the upload again (404 BLOB_UPLOAD_UNKNOWN). A final PUT does not record its
 * chunk: it commits, or leaves the session as it was recorded. A blob becomes visible only
 * through pt_blobstore_upload_commit (verify, fsync of the file, rename, fsync of the
 * directory) followed by a committed LinkBlob: a 201 means durable. One operation at a time
 * per session: a second concurrent one gets 416.
 *
 * The time each request spends per phase goes to portolan_upload_phase_seconds (metrics.h).
 *
 * A repository locked for writes (store/metastore_policy.c) refuses a POST with 403 DENIED, once
 * the lock is confirmed at the leader's commit index (a region a moment behind an unlock waits).
 *
 * Free space (base/diskspace.h): below the reserve a POST (session, monolithic or mount), a
 * PATCH and a closing PUT get 507 with Retry-After before anything is written; GET and the
 * cancelling DELETE still work. A body that runs into the reserve midway (the blob store checks
 * before every slice) is refused with 507 as well.
 *
 * Storage quotas (api_quota.c): before any byte of a body is written, the size the session
 * would reach (its offset plus the body, which h2o has buffered) is checked against the
 * quotas of the repository as of now: a monolithic POST and a closing PUT with the blob's
 * digest (a blob the repository holds already adds nothing), a PATCH as a new blob. A refusal
 * is 403 DENIED naming the quota. The FSM checks again when LinkBlob applies (linearizable:
 * two uploads racing for the last bytes), before the blob becomes visible.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#include "api.h"
#include "api_common.h"
#include "api_quota.h"
#include "auth_gate.h"
#include "command.h"
#include "async.h"
#include "clock.h"
#include "blobstore.h"
#include "cluster_config.h"
#include "digest.h"
#include "diskspace.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "metastore.h"
#include "metrics.h"
#include "worker.h"
#include "query.h"
#include "range.h"
#include "reference.h"

#define SLICE_SIZE (1024 * 1024)

enum phase {
    PHASE_BEGIN,    /* create a new session (file; record unless monolithic) */
    PHASE_APPEND,   /* append the current slice */
    PHASE_VIEW,     /* hash and write the mapped body, then PHASE_END, in one job */
    PHASE_END,      /* record the new state; commit the blob if finishing */
    PHASE_ROLLBACK, /* cut the file back to the recorded state */
};

struct ingest;
/* Runs on the loop with the live request once the ingest is over; status 0 or PT_E_*. */
typedef void (*ingest_cb)(struct ingest *ing, h2o_req_t *req, int status);

struct ingest {
    struct pt_async async;
    struct pt_worker *w;
    uv_work_t work;
    enum phase phase;
    struct pt_upload u;     /* state being advanced */
    struct pt_upload saved; /* state as last recorded */
    int create;             /* session created by this request */
    int record;             /* keep a session record (not for monolithic uploads) */
    int busy;               /* holds the session's busy mark */
    int finish;             /* commit the blob against expected */
    struct pt_digest expected;
    const char *src; /* request body: valid only while async.req is alive */
    size_t src_len, src_done;
    char *slice;
    size_t slice_len;
    void *view;                /* own mapping of a spilled body's pages, or NULL (owned) */
    size_t view_len;           /* length of that mapping */
    const unsigned char *vsrc; /* the body inside view */
    int ended;                 /* PHASE_VIEW: the job ran PHASE_END too */
    uint64_t work_end_ns;      /* uv_hrtime when the last pool job ended (response phase) */
    double copy_s;             /* copying slices out of h2o's memory, this request */
    int status;
    ingest_cb done;
    char name[PT_NAME_MAX + 1];
};

static int save_state(struct pt_node *node, struct pt_upload *u)
{
    unsigned char buf[1024];
    size_t n = pt_upload_encoded_size();
    if (n > sizeof(buf))
        return PT_E_INTERNAL;
    u->updated_ms = pt_clock_wall_ms();
    pt_upload_encode(u, buf);
    return pt_metastore_upload_put(node->ms, u->id, buf, n);
}

static int load_state(struct pt_node *node, const char *id, struct pt_upload *u)
{
    void *val;
    size_t len;
    int rv = pt_metastore_upload_get(node->ms, id, &val, &len);
    if (rv != 0)
        return rv;
    rv = pt_upload_decode(val, len, u);
    free(val);
    return rv;
}

static double seconds_since(uint64_t t0_ns)
{
    return (double)(uv_hrtime() - t0_ns) / 1e9;
}

/* Seconds from the first byte of req to now. */
static double request_age(h2o_req_t *req)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    return (double)h2o_timeval_subtract(&req->timestamps.request_begin_at, &now) / 1e6;
}

/* Records the response and total phases of req, answered now, the work having ended at
 * work_end_ns (uv_hrtime; 0 = unknown). */
static void answered(h2o_req_t *req, uint64_t work_end_ns)
{
    if (work_end_ns != 0)
        pt_metrics_upload_phase(PT_METRICS_UP_RESPONSE, seconds_since(work_end_ns));
    pt_metrics_upload_phase(PT_METRICS_UP_TOTAL, request_age(req));
}

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4 /* Linux 5.7; shared mappings since 5.13 */
#endif

/*
 * A mapping of its own for the pages under body[0, len) when they belong to a shared mapping
 * (a body h2o spilled to its temp file): it stays valid after h2o unmaps its own, and holds
 * the file's pages (page cache, not anonymous memory). NULL when the body is in private memory
 * or the range is not one mapping. *map_len gets the mapping's length (for munmap), *at the
 * body's first byte inside it.
 *
 * The page tables are moved to the new address (MREMAP_DONTUNMAP): h2o's range stays mapped
 * to the same file and faults the same pages back in if it touches them, while the readers of
 * the new range find every page already mapped (a fresh second mapping instead costs a page
 * fault per page, as long as hashing the body). Only a shared mapping may be moved this way:
 * a private one would leave zero pages behind, so a one-page mremap with old size 0, which
 * succeeds for shared mappings only, is asked first. Without MREMAP_DONTUNMAP (older kernels)
 * the second mapping is made with old size 0.
 */
static void *map_body(const char *body, size_t len, size_t *map_len, const unsigned char **at)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)body & ~(page - 1);
    size_t span = (size_t)(((uintptr_t)body + len - start + page - 1) & ~(page - 1));
    void *v = mremap((void *)start, 0, page, MREMAP_MAYMOVE);
    if (v == MAP_FAILED)
        return NULL;
    munmap(v, page);
    v = mremap((void *)start, span, span, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    if (v == MAP_FAILED)
        v = mremap((void *)start, 0, span, MREMAP_MAYMOVE);
    if (v == MAP_FAILED)
        return NULL;
    *map_len = span;
    *at = (const unsigned char *)v + ((uintptr_t)body - start);
    return v;
}

static void ingest_unmap(struct ingest *ing)
{
    if (ing->view != NULL)
        munmap(ing->view, ing->view_len);
    ing->view = NULL;
}

static void ingest_work(uv_work_t *work);

/*
 * Thread pool: PHASE_VIEW. Hashes and writes the mapped body piece by piece (each piece
 * hashed, then written while it is still in the CPU's cache: one read of the body from
 * memory), then goes on with PHASE_END at once (record the chunk, or commit the blob), saving
 * a round trip through the loop. It does so even if the client has gone meanwhile: the body
 * was received whole, so the recorded state (or the stored blob) is true, and the session's
 * status tells a client that comes back where to resume.
 */
static void view_work(uv_work_t *work)
{
    struct ingest *ing = work->data;
    uint64_t t0 = uv_hrtime();
    double hash_s;
    ing->status =
        pt_blobstore_upload_ingest(ing->w->node->bs, &ing->u, ing->vsrc, ing->src_len, &hash_s);
    pt_metrics_upload_phase(PT_METRICS_UP_HASH, hash_s);
    pt_metrics_upload_phase(PT_METRICS_UP_WRITE, seconds_since(t0) - hash_s);
    ing->work_end_ns = uv_hrtime();
    if (ing->status != 0)
        return;
    ing->src_done = ing->src_len;
    ing->phase = PHASE_END;
    ingest_work(work);
    ing->ended = 1;
}

/* Thread pool. */
static void ingest_work(uv_work_t *work)
{
    struct ingest *ing = work->data;
    struct pt_node *node = ing->w->node;
    int rv = 0;
    switch (ing->phase) {
    case PHASE_BEGIN:
        rv = pt_blobstore_upload_begin(node->bs, ing->name, pt_clock_wall_ms(), &ing->u);
        if (rv == 0 && ing->record) {
            uint64_t t0 = uv_hrtime();
            rv = save_state(node, &ing->u);
            pt_metrics_upload_phase(PT_METRICS_UP_RECORD, seconds_since(t0));
        }
        if (rv != 0 && ing->u.id[0] != '\0')
            pt_blobstore_upload_abort(node->bs, ing->u.id);
        if (rv == 0)
            ing->saved = ing->u;
        break;
    case PHASE_APPEND: { /* write and hash of one copied slice: counted as write */
        uint64_t t0 = uv_hrtime();
        rv = pt_blobstore_upload_write(node->bs, &ing->u, ing->slice, ing->slice_len);
        pt_metrics_upload_phase(PT_METRICS_UP_WRITE, seconds_since(t0));
        break;
    }
    case PHASE_VIEW: /* runs as view_work */
        break;
    case PHASE_END:
        if (ing->finish) {
            /* The commit fsyncs the whole file; on failure the session stays as recorded. A
             * session whose blob a lost final PUT already stored just gets linked again. The
             * record goes once the link is committed (on_linked), so a crash in between
             * leaves a session the client can close again. */
            struct pt_digest stored;
            if (ing->record && pt_blobstore_upload_stored(node->bs, &ing->u, &stored) &&
                pt_digest_equal(&stored, &ing->expected)) {
                pt_blobstore_upload_abort(node->bs, ing->u.id);
                rv = 0;
            } else {
                uint64_t t0 = uv_hrtime();
                rv = pt_blobstore_upload_commit(node->bs, &ing->u, &ing->expected);
                pt_metrics_upload_phase(PT_METRICS_UP_FSYNC, seconds_since(t0));
            }
            if (rv != 0 && !ing->record) {
                pt_blobstore_upload_abort(node->bs, ing->u.id);
            } else if (rv != 0) {
                pt_blobstore_upload_repair(node->bs, &ing->saved);
                ing->u = ing->saved;
            }
        } else if (ing->record && ing->u.offset != ing->saved.offset) {
            /* no fsync: the final PUT's commit makes the whole file durable (see the top) */
            uint64_t t0 = uv_hrtime();
            rv = save_state(node, &ing->u);
            pt_metrics_upload_phase(PT_METRICS_UP_RECORD, seconds_since(t0));
        }
        break;
    case PHASE_ROLLBACK:
        if (ing->record)
            pt_blobstore_upload_repair(node->bs, &ing->saved);
        else
            pt_blobstore_upload_abort(node->bs, ing->u.id);
        break;
    }
    ing->status = rv;
    ing->work_end_ns = uv_hrtime();
}

/* Ends the session's busy mark; before the response goes out, since a client may send its
 * next request for the session the moment it has the answer. */
static void ingest_release(struct ingest *ing)
{
    if (ing->busy)
        pt_node_upload_release(ing->w->node, ing->u.id);
    ing->busy = 0;
}

static void ingest_free(struct ingest *ing)
{
    ingest_release(ing);
    pt_async_unbind(&ing->async);
    pt_metrics_uploads_in_progress(-1);
    ingest_unmap(ing);
    free(ing->slice);
    free(ing);
}

static void ingest_after(uv_work_t *work, int status);
static void view_after(uv_work_t *work, int status);

static void queue_phase(struct ingest *ing, enum phase phase)
{
    ing->phase = phase;
    ing->work.data = ing;
    if (phase != PHASE_VIEW) {
        uv_queue_work(&ing->w->loop, &ing->work, ingest_work, ingest_after);
        return;
    }
    ing->ended = 0;
    uv_queue_work(&ing->w->loop, &ing->work, view_work, view_after);
}

/* Loop thread: decides the next phase. */
static void ingest_next(struct ingest *ing)
{
    if (ing->async.req == NULL) {
        /* The client is gone: nothing is acknowledged, so the recorded state stands. */
        if (ing->u.offset != ing->saved.offset || (ing->create && !ing->record))
            queue_phase(ing, PHASE_ROLLBACK);
        else
            ingest_free(ing);
        return;
    }
    if (ing->src_done < ing->src_len && ing->view != NULL) {
        queue_phase(ing, PHASE_VIEW);
        return;
    }
    if (ing->src_done < ing->src_len) {
        size_t n = ing->src_len - ing->src_done;
        uint64_t t0 = uv_hrtime();
        ing->slice_len = n < SLICE_SIZE ? n : SLICE_SIZE;
        memcpy(ing->slice, ing->src + ing->src_done, ing->slice_len);
        ing->src_done += ing->slice_len;
        ing->copy_s += seconds_since(t0);
        if (ing->src_done == ing->src_len)
            pt_metrics_upload_phase(PT_METRICS_UP_COPY, ing->copy_s);
        queue_phase(ing, PHASE_APPEND);
        return;
    }
    queue_phase(ing, PHASE_END);
}

/* Loop thread: PHASE_VIEW's job is done (and with it PHASE_END, unless it failed). */
static void view_after(uv_work_t *work, int status)
{
    struct ingest *ing = work->data;
    ingest_unmap(ing);               /* the body is written (or refused): its pages go back */
    if (status == 0 && ing->ended) { /* view_work ran PHASE_END */
        ing->phase = PHASE_END;
        ingest_after(work, 0);
        return;
    }
    if (ing->status == 0) /* cancelled before it ran */
        ing->status = PT_E_INTERNAL;
    ing->phase = PHASE_APPEND; /* refused like the last slice of a copied body */
    ingest_after(work, 0);
}

static void ingest_after(uv_work_t *work, int status)
{
    struct ingest *ing = work->data;
    if (status != 0 && ing->status == 0)
        ing->status = PT_E_INTERNAL;
    switch (ing->phase) {
    case PHASE_BEGIN:
    case PHASE_APPEND:
    case PHASE_VIEW:
        if (ing->status == 0) {
            ingest_next(ing);
            return;
        }
        if (ing->phase == PHASE_APPEND) {
            int err = ing->status;
            ing->phase = PHASE_ROLLBACK;
            h2o_req_t *req = pt_async_unbind(&ing->async); /* what remains is clean-up */
            if (req != NULL)
                ing->done(ing, req, err);
            queue_phase(ing, PHASE_ROLLBACK);
            return;
        }
        break;
    case PHASE_END:
        break;
    case PHASE_ROLLBACK:
        ingest_free(ing);
        return;
    }
    h2o_req_t *req = pt_async_unbind(&ing->async);
    ingest_release(ing);
    if (req != NULL)
        ing->done(ing, req, ing->status);
    ingest_free(ing);
}

/* Starts moving req's body into an upload. Takes ownership of ing (freed when done). */
static void ingest_start(struct ingest *ing, h2o_req_t *req)
{
    pt_async_bind(&ing->async, req);
    ing->src = req->entity.base;
    ing->src_len = req->entity.base != NULL ? req->entity.len : 0;
    if (ing->src_len > 0)
        ing->view = map_body(ing->src, ing->src_len, &ing->view_len, &ing->vsrc);
    pt_metrics_upload_phase(
        PT_METRICS_UP_RECEIVE,
        (double)h2o_timeval_subtract(&req->timestamps.request_begin_at, &req->processed_at.at) /
            1e6);
    pt_metrics_uploads_in_progress(1);
    if (ing->create)
        queue_phase(ing, PHASE_BEGIN);
    else
        ingest_next(ing);
}

static struct ingest *ingest_new(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                                 ingest_cb done)
{
    struct ingest *ing = calloc(1, sizeof(*ing));
    if (ing == NULL || (ing->slice = malloc(SLICE_SIZE)) == NULL) {
        free(ing);
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return NULL;
    }
    ing->w = w;
    ing->done = done;
    snprintf(ing->name, sizeof(ing->name), "%.*s", (int)rt->name_len, rt->name);
    return ing;
}

/* Response helpers ----------------------------------------------------------------------- */

static void upload_headers(h2o_req_t *req, const char *name, const struct pt_upload *u)
{
    pt_http_headerf(req, "Location", "/v2/%s/blobs/uploads/%s", name, u->id);
    pt_http_header(req, "Docker-Upload-UUID", u->id, strlen(u->id));
    pt_http_headerf(req, "Range", "0-%llu",
                    (unsigned long long)(u->offset > 0 ? u->offset - 1 : 0));
    pt_http_header(req, "OCI-Chunk-Min-Length", "1", 1);
}

struct blob_done {
    char name[PT_NAME_MAX + 1];
    char digest[PT_DIGEST_STR_MAX + 1];
    uint64_t size;
    char upload_id[PT_UPLOAD_ID_MAX + 1]; /* session closed by this link, or "" */
    int mount;                            /* a cross-repository mount (POST ?mount=) */
    uint64_t proposed_ns;                 /* uv_hrtime when the link was proposed */
    int upload;                           /* an upload's link (its phases are recorded) */
};

static void open_session(struct pt_worker *w, h2o_req_t *req, const char *name);

static void on_linked(h2o_req_t *req, int status, void *data)
{
    struct blob_done *d = data;
    uint64_t committed = uv_hrtime();
    if (d->upload)
        pt_metrics_upload_phase(PT_METRICS_UP_COMMIT, (double)(committed - d->proposed_ns) / 1e9);
    if (status == PT_E_QUOTA_EXCEEDED) {
        pt_api_quota_refuse(pt_worker_of(req), req, d->name, d->digest, d->size);
        return;
    }
    if (status == PT_E_BLOB_UNKNOWN && d->mount) {
        /* the blob was collected between the mount's check and its LinkBlob, which the FSM
         * then refused: the blob cannot be mounted, so an upload session (202), as end-11
         * asks; the client never sees a 404 for a mount it was about to be granted */
        open_session(pt_worker_of(req), req, d->name);
        return;
    }
    if (status != 0) {
        pt_http_error(req, status, NULL, NULL);
        return;
    }
    if (d->upload_id[0] != '\0') /* one small unsynced RocksDB write */
        pt_metastore_upload_delete(pt_worker_of(req)->node->ms, d->upload_id);
    pt_http_headerf(req, "Location", "/v2/%s/blobs/%s", d->name, d->digest);
    pt_http_header(req, "Docker-Content-Digest", d->digest, strlen(d->digest));
    if (d->upload)
        answered(req, committed);
    pt_http_send_empty(req, 201);
}

/* Proposes LinkBlob (+ BlobStored when this region just stored it), then answers 201. */
static void link_blob(struct pt_worker *w, h2o_req_t *req, const char *name,
                      const struct pt_digest *d, uint64_t size, int stored_here,
                      const char *upload_id)
{
    struct blob_done done;
    done.mount = !stored_here && upload_id[0] == '\0';
    snprintf(done.name, sizeof(done.name), "%s", name);
    snprintf(done.upload_id, sizeof(done.upload_id), "%s", upload_id);
    done.proposed_ns = uv_hrtime();
    done.upload = stored_here;
    pt_digest_format(d, done.digest);
    done.size = size;
    struct pt_command_builder b;
    int rv = pt_api_command(w, &b);
    if (rv == 0) {
        int added = 0;
        if (stored_here)
            added = pt_command_add_blob_stored(&b, done.digest, size, w->node->cfg.region);
        if (added == 0)
            added = pt_command_add_link_blob(&b, done.name, done.digest, size);
        rv = pt_api_commit(w, req, &b, added, on_linked, &done, sizeof(done));
    }
    if (rv != 0)
        pt_http_error(req, rv, NULL, NULL);
}

static void on_finished(struct ingest *ing, h2o_req_t *req, int status)
{
    if (status == PT_E_BLOB_UPLOAD_INVALID || status == PT_E_DIGEST_INVALID ||
        status == PT_E_TOO_LARGE) {
        if (ing->record)
            upload_headers(req, ing->name, &ing->u);
    }
    if (status != 0) {
        pt_http_error(req, status, NULL, NULL);
        return;
    }
    link_blob(ing->w, req, ing->name, &ing->expected, ing->u.offset, 1,
              ing->record ? ing->u.id : "");
}

static void on_created(struct ingest *ing, h2o_req_t *req, int status)
{
    if (status != 0) {
        pt_http_error(req, status, NULL, NULL);
        return;
    }
    upload_headers(req, ing->name, &ing->u);
    answered(req, ing->work_end_ns);
    pt_http_send_empty(req, 202);
}

static void on_chunk(struct ingest *ing, h2o_req_t *req, int status)
{
    if (status != 0) {
        upload_headers(req, ing->name, &ing->saved);
        pt_http_error(req, status, NULL, NULL);
        return;
    }
    upload_headers(req, ing->name, &ing->u);
    answered(req, ing->work_end_ns);
    pt_http_send_empty(req, 202);
}

/* POST /v2/<name>/blobs/uploads/ ------------------------------------------------------- */

/* Digest from ?digest=; sends DIGEST_INVALID itself. Returns 1 found, 0 absent, -1 sent. */
static int query_digest(h2o_req_t *req, const char *key, struct pt_digest *d)
{
    h2o_iovec_t q = pt_http_query(req);
    char buf[PT_DIGEST_STR_MAX + 32];
    int len = pt_query_get(q.base, q.len, key, 0, buf, sizeof(buf));
    if (len == PT_E_NOT_FOUND)
        return 0;
    if (len < 0 || pt_digest_parse(buf, (size_t)len, d) != 0) {
        pt_http_error(req, PT_E_DIGEST_INVALID, "invalid digest parameter", NULL);
        return -1;
    }
    return 1;
}

/* end-11: returns 1 if the response was sent (mounted, or an error), 0 to fall back to a
 * normal upload session (202), as the spec asks when the blob cannot be mounted. */
static int try_mount(struct pt_worker *w, h2o_req_t *req, const char *name)
{
    struct pt_digest d;
    int found = query_digest(req, "mount", &d);
    if (found <= 0)
        return found < 0;
    h2o_iovec_t q = pt_http_query(req);
    char from[PT_NAME_MAX + 1], digest[PT_DIGEST_STR_MAX + 1];
    int flen = pt_query_get(q.base, q.len, "from", 0, from, sizeof(from));
    if (flen >= 0 && pt_name_validate(from, (size_t)flen) != 0) {
        pt_http_error(req, PT_E_NAME_INVALID, "invalid from parameter", NULL);
        return 1;
    }
    /* With access control a mount needs pull on `from`; without `from` (any repository
     * holding the digest) it would reveal blobs of repositories the client cannot read. */
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    if (ctx != NULL && ctx->enforced &&
        (flen < 0 || !(pt_auth_actions(w, req, from, (size_t)flen) & PT_ACTION_PULL)))
        return 0;
    pt_digest_format(&d, digest);
    uint64_t size, local;
    int rv = flen >= 0 ? pt_metastore_blob_linked(w->node->ms, from, digest, &size)
                       : pt_metastore_blob_location(w->node->ms, digest, &size);
    if (rv != 0 || pt_blobstore_stat(w->node->bs, &d, &local) != 0)
        return 0;
    link_blob(w, req, name, &d, size, 0, "");
    return 1;
}

/* Opens an empty upload session for name (borrowed) and answers 202 (end-4a). */
static void open_session(struct pt_worker *w, h2o_req_t *req, const char *name)
{
    struct pt_route rt = {.name = name, .name_len = strlen(name)};
    struct ingest *ing = ingest_new(w, req, &rt, on_created);
    if (ing == NULL)
        return;
    ing->create = 1;
    ing->record = 1;
    req->entity = h2o_iovec_init(NULL, 0); /* a session starts empty */
    ingest_start(ing, req);
}

static void uploads(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                    int may_catch_up);

/* The POST again, once this region caught up with the leader: its refusal is final. */
static void uploads_again(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    uploads(w, req, rt, 0);
}

void pt_api_uploads(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    uploads(w, req, rt, 1);
}

/* POST (may_catch_up: a lock found in this region's state is checked again once the region
 * has caught up with the leader, so an unlock committed elsewhere a moment ago is seen). */
static void uploads(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                    int may_catch_up)
{
    if (!pt_http_method_is(req, "POST")) {
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
        return;
    }
    /* new sessions, mounts and monolithic blobs all need space: refused below the reserve */
    if (pt_disk_low(req->entity.base != NULL ? req->entity.len : 0)) {
        pt_http_error(req, PT_E_DISK_FULL, NULL, NULL);
        return;
    }
    char *name = pt_api_name(req, rt);
    /* A repository locked for writes takes no manifest (the FSM refuses it): its uploads are
     * refused up front, so a client learns it before sending blobs. The lock is read from this
     * region's state, confirmed at the leader's commit index before refusing (in a cluster). */
    char msg[PT_POLICY_MSG_MAX];
    if (pt_metastore_policy_explain(w->node->ms, PT_POLICY_PUSH, name, NULL, NULL, msg,
                                    sizeof(msg)) == PT_E_LOCKED) {
        if (may_catch_up && pt_api_catch_up(w, req, rt, NULL, uploads_again) == 0)
            return;
        pt_http_error(req, PT_E_LOCKED, msg, NULL);
        return;
    }
    if (try_mount(w, req, name))
        return;
    struct pt_digest d;
    int monolithic = query_digest(req, "digest", &d);
    if (monolithic < 0)
        return;
    if (monolithic) {
        char ds[PT_DIGEST_STR_MAX + 1];
        pt_digest_format(&d, ds);
        if (pt_api_quota_check(w, req, name, ds, req->entity.base != NULL ? req->entity.len : 0) !=
            0)
            return;
    }
    struct ingest *ing = ingest_new(w, req, rt, monolithic ? on_finished : on_created);
    if (ing == NULL)
        return;
    ing->create = 1;
    ing->record = !monolithic;
    ing->finish = monolithic;
    if (monolithic)
        ing->expected = d;
    else
        req->entity = h2o_iovec_init(NULL, 0); /* a session starts empty */
    ingest_start(ing, req);
}

/* /v2/<name>/blobs/uploads/<id> ---------------------------------------------------------- */

/* Loads the session named by rt and checks it belongs to the repository. */
static int find_session(struct pt_worker *w, const struct pt_route *rt, const char *name,
                        struct pt_upload *u)
{
    char id[PT_UPLOAD_ID_MAX + 1];
    if (rt->ref_len > PT_UPLOAD_ID_MAX)
        return PT_E_BLOB_UPLOAD_UNKNOWN;
    snprintf(id, sizeof(id), "%.*s", (int)rt->ref_len, rt->ref);
    int rv = load_state(w->node, id, u);
    if (rv == 0 && strcmp(u->repo, name) != 0)
        rv = PT_E_BLOB_UPLOAD_UNKNOWN;
    return rv;
}

/* Checks Content-Range (if any) against the session offset and the body length. */
static int check_chunk(h2o_req_t *req, const struct pt_upload *u)
{
    h2o_iovec_t cr = pt_http_req_header(req, "content-range");
    size_t len = req->entity.base != NULL ? req->entity.len : 0;
    if (cr.base == NULL)
        return 0;
    uint64_t start, end;
    if (pt_content_range_parse(cr.base, cr.len, &start, &end) != 0)
        return PT_E_RANGE_INVALID;
    if (start != u->offset || end - start + 1 != len)
        return PT_E_RANGE_INVALID;
    return 0;
}

static void upload_status(struct pt_worker *w, h2o_req_t *req, const char *name,
                          const struct pt_upload *u)
{
    (void)w;
    upload_headers(req, name, u);
    pt_http_send_empty(req, 204);
}

struct cancel_op {
    struct pt_async async;
    struct pt_worker *w;
    uv_work_t work;
    char id[PT_UPLOAD_ID_MAX + 1];
};

static void cancel_work(uv_work_t *work)
{
    struct cancel_op *op = work->data;
    pt_blobstore_upload_abort(op->w->node->bs, op->id);
    pt_metastore_upload_delete(op->w->node->ms, op->id);
}

static void cancel_after(uv_work_t *work, int status)
{
    (void)status;
    struct cancel_op *op = work->data;
    h2o_req_t *req = pt_async_unbind(&op->async);
    pt_node_upload_release(op->w->node, op->id);
    if (req != NULL)
        pt_http_send_empty(req, 204);
    free(op);
}

static void cancel_upload(struct pt_worker *w, h2o_req_t *req, const struct pt_upload *u)
{
    struct cancel_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        pt_node_upload_release(w->node, u->id);
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    op->w = w;
    snprintf(op->id, sizeof(op->id), "%s", u->id);
    pt_async_bind(&op->async, req);
    op->work.data = op;
    uv_queue_work(&w->loop, &op->work, cancel_work, cancel_after);
}

/* The region that owns session id: its raft id in hex before the UUID (ids of a cluster
 * have five dashes, see pt_blobstore_set_id_prefix); 0 when id names none. */
static uint64_t session_owner(const struct pt_route *rt)
{
    unsigned dashes = 0;
    uint64_t owner = 0;
    size_t i = 0;
    for (size_t j = 0; j < rt->ref_len; j++)
        dashes += rt->ref[j] == '-';
    if (dashes != 5)
        return 0;
    for (; i < rt->ref_len && i < 16 && rt->ref[i] != '-'; i++) {
        char c = rt->ref[i];
        owner = owner * 16 + (uint64_t)(c >= 'a' ? c - 'a' + 10 : c - '0');
    }
    return i > 0 && i < rt->ref_len && rt->ref[i] == '-' ? owner : 0;
}

/* The client URL of region id (copied into url[len]): PT_E_NOT_FOUND when none is known. */
static int region_url(struct pt_node *node, uint64_t id, char *url, size_t len)
{
    struct pt_region_rec *recs = NULL;
    size_t n = 0;
    const char *name, *found;
    /* the cluster file first; the replicated records only for a region added later */
    pt_cluster_config_describe(node->cluster, NULL, 0, id, &name, &found);
    if (found[0] == '\0' && pt_metastore_list_regions(node->ms, &recs, &n) == 0)
        pt_cluster_config_describe(NULL, recs, n, id, &name, &found);
    snprintf(url, len, "%s", found);
    free(recs);
    return url[0] != '\0' ? 0 : PT_E_NOT_FOUND;
}

/*
 * A session another region owns (a client whose DNS answer moved it to this region in the
 * middle of a chunked upload): the request goes on to the owner as it came, through h2o's
 * proxy (HTTPS when the owner's URL says so, verified with tls_peer_ca), and the owner's
 * answer comes back as it is. The owner's Location is relative, so the client keeps talking
 * to this region. A request forwarded once is never forwarded again.
 * Returns 0 when forwarded, else the error to answer.
 */
static int forward_to_owner(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    static const char mark[] = "x-portolan-forwarded";
    uint64_t owner = session_owner(rt);
    char url[512];
    h2o_url_t parsed;
    if (owner == 0 || owner == w->node->region_id || pt_http_req_header(req, mark).base != NULL ||
        region_url(w->node, owner, url, sizeof(url)) != 0)
        return PT_E_BLOB_UPLOAD_UNKNOWN;
    char *copy = h2o_mem_alloc_pool(&req->pool, strlen(url) + 1);
    memcpy(copy, url, strlen(url) + 1);
    if (h2o_url_parse(copy, SIZE_MAX, &parsed) != 0 ||
        (parsed.scheme == &H2O_URL_SCHEME_HTTPS && w->ctx.globalconf->proxy.ssl_ctx == NULL))
        return PT_E_UNAVAILABLE;
    h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT(mark), 0, NULL, H2O_STRLIT("1"));
    req->scheme = parsed.scheme;
    req->authority = parsed.authority;
    if (pt_log_enabled(PT_LOG_INFO)) {
        pt_log(PT_LOG_INFO, "upload forwarded to its region", "{s:s,s:I}", "to", url, "region_id",
               (json_int_t)owner);
    }
    h2o__proxy_process_request(req);
    return 0;
}

void pt_api_upload(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    char *name = pt_api_name(req, rt);
    int is_get = pt_http_method_is(req, "GET") || pt_http_is_head(req);
    int is_patch = pt_http_method_is(req, "PATCH"), is_put = pt_http_method_is(req, "PUT");
    int is_delete = pt_http_method_is(req, "DELETE");
    if (!is_get && !is_patch && !is_put && !is_delete) {
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
        return;
    }
    struct pt_upload u;
    int rv = find_session(w, rt, name, &u);
    if (rv == PT_E_BLOB_UPLOAD_UNKNOWN && w->node->cluster != NULL &&
        (rv = forward_to_owner(w, req, rt)) == 0)
        return;
    if (rv != 0) {
        pt_http_error(req, rv, NULL, NULL);
        return;
    }
    if (is_get) {
        upload_status(w, req, name, &u);
        return;
    }
    /* a chunk, or the close that links the blob, needs space; a cancel frees it */
    if ((is_patch || is_put) && pt_disk_low(req->entity.base != NULL ? req->entity.len : 0)) {
        upload_headers(req, name, &u);
        pt_http_error(req, PT_E_DISK_FULL, NULL, NULL);
        return;
    }
    struct pt_digest d;
    if (is_put) {
        int found = query_digest(req, "digest", &d);
        if (found < 0)
            return;
        if (found == 0) {
            pt_http_error(req, PT_E_DIGEST_INVALID, "digest parameter missing", NULL);
            return;
        }
    }
    if (is_patch || is_put) {
        char ds[PT_DIGEST_STR_MAX + 1];
        if (is_put)
            pt_digest_format(&d, ds);
        uint64_t reach = u.offset + (req->entity.base != NULL ? req->entity.len : 0);
        if (pt_api_quota_check(w, req, name, is_put ? ds : NULL, reach) != 0)
            return;
    }
    if (pt_node_upload_acquire(w->node, u.id) != 0) {
        upload_headers(req, name, &u);
        pt_http_error(req, PT_E_RANGE_INVALID, "another request is writing to this upload", NULL);
        return;
    }
    if (is_delete) {
        cancel_upload(w, req, &u);
        return;
    }
    if ((rv = check_chunk(req, &u)) != 0) {
        pt_node_upload_release(w->node, u.id);
        upload_headers(req, name, &u);
        pt_http_error(req, rv, NULL, NULL);
        return;
    }
    struct ingest *ing = ingest_new(w, req, rt, is_put ? on_finished : on_chunk);
    if (ing == NULL) {
        pt_node_upload_release(w->node, u.id);
        return;
    }
    ing->u = u;
    ing->saved = u;
    ing->record = 1;
    ing->busy = 1;
    ing->finish = is_put;
    if (is_put)
        ing->expected = d;
    ingest_start(ing, req);
}
