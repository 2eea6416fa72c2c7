/*
 * api_blob.c - /v2/<name>/blobs/<digest>: end-2 (GET/HEAD, with Range) and end-10 (DELETE),
 * OCI distribution-spec v1.1 "Pulling blobs" and "Deleting Blobs".
 *
 * A blob is served only if it is linked in the repository (uploaded or mounted there).
 * The body streams from the verified file through a fixed-size buffer: each chunk is read
 * by a libuv pool thread and handed to h2o; the next read starts when h2o asks for more
 * (generator proceed), so memory per download is one chunk whatever the blob size.
 *
 * A blob the region does not hold yet (linked through another region, not replicated here
 * yet) is served from its transfer (replication/blob_sync.h): the committer thread attaches
 * the request to the one transfer of that digest, and the stream reads the transfer's file as
 * far as it is written, waiting for the feed to move on when it catches up. The feed holds
 * back the last byte until the digest verified, so a client never completes a corrupt blob:
 * a failed transfer ends the response with an error instead. HEAD answers from metadata.
 *
 * Lifetime: the stream is malloc'd, not pool-allocated, because a read may be in flight (or a
 * feed may be about to wake it) when the client goes away. A pool-shared anchor tells the
 * stream that its request is gone; the stream frees itself when the request is gone and no
 * read or wake-up is pending.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "api_common.h"
#include "auth_gate.h"
#include "command.h"
#include "blob_sync.h"
#include "blobstore.h"
#include "clock.h"
#include "committer.h"
#include "digest.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "metastore.h"
#include "worker.h"
#include "range.h"
#include "throttle.h"

#define CHUNK_SIZE (1024 * 1024)

struct blob_stream {
    h2o_generator_t super;
    h2o_req_t *req; /* NULL once the request is disposed */
    struct blob_stream **anchor;
    uv_work_t work;
    int fd;                     /* a stored blob: owned; -1 for a feed */
    int rfd;                    /* what the next read reads */
    struct pt_blob_feed *feed;  /* a blob still arriving: a reference; NULL otherwise */
    struct pt_feed_waiter wait; /* registered with the feed while waiting */
    int waiting;
    uint64_t limit; /* the next read stops here (end, or what the feed had) */
    int in_flight;
    int stopped;       /* h2o aborted the response: send nothing more */
    uint64_t pos, end; /* next byte to read, one past the last byte to send */
    ssize_t nread;
    int read_errno;
    char buf[CHUNK_SIZE];
};

static void stream_free(struct blob_stream *s)
{
    if (s->fd >= 0)
        close(s->fd);
    pt_blob_feed_release(s->feed);
    free(s);
}

static void on_req_dispose(void *p)
{
    struct blob_stream *s = *(struct blob_stream **)p;
    if (s == NULL)
        return;
    s->req = NULL;
    if (s->waiting && pt_blob_feed_withdraw(s->feed, &s->wait))
        s->waiting = 0; /* else the wake-up is on its way and frees s */
    if (!s->in_flight && !s->waiting)
        stream_free(s);
}

static void read_work(uv_work_t *work)
{
    struct blob_stream *s = work->data;
    size_t want = s->limit - s->pos < CHUNK_SIZE ? (size_t)(s->limit - s->pos) : CHUNK_SIZE;
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(s->rfd, s->buf + got, want - got, (off_t)(s->pos + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s->read_errno = n < 0 ? errno : EIO;
            break;
        }
        got += (size_t)n;
    }
    s->nread = (ssize_t)got;
}

static void after_read(uv_work_t *work, int status)
{
    struct blob_stream *s = work->data;
    s->in_flight = 0;
    if (s->req == NULL) {
        stream_free(s);
        return;
    }
    if (s->stopped)
        return;
    if (status != 0 || s->read_errno != 0) {
        pt_log(PT_LOG_ERROR, "blob read failed", "{s:s}", "error", strerror(s->read_errno));
        h2o_send(s->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    s->pos += (uint64_t)s->nread;
    h2o_iovec_t buf = h2o_iovec_init(s->buf, (size_t)s->nread);
    h2o_send(s->req, &buf, 1, s->pos >= s->end ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void start_read(struct blob_stream *s);

/* Worker loop: the feed moved on (more bytes, or an end). */
static void on_feed_moved(struct pt_mail *mail)
{
    struct blob_stream *s =
        (struct blob_stream *)((char *)mail - offsetof(struct blob_stream, wait));
    s->waiting = 0;
    if (s->req == NULL) {
        stream_free(s);
        return;
    }
    if (!s->stopped)
        start_read(s);
}

static void start_read(struct blob_stream *s)
{
    s->limit = s->end;
    if (s->feed != NULL) {
        uint64_t avail;
        int error;
        int state = pt_blob_feed_poll(s->feed, s->pos, &avail, &error, &s->wait);
        if (state == PT_FEED_FAILED) {
            pt_log(PT_LOG_WARN, "blob transfer failed under a reader", "{s:s}", "error",
                   pt_err_message(error));
            h2o_send(s->req, NULL, 0, H2O_SEND_STATE_ERROR);
            return;
        }
        if (avail <= s->pos) {
            s->waiting = 1; /* registered by the poll */
            return;
        }
        s->rfd = s->feed->fd;
        if (avail < s->limit)
            s->limit = avail;
    }
    s->in_flight = 1;
    s->work.data = s;
    uv_queue_work(&pt_worker_of(s->req)->loop, &s->work, read_work, after_read);
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    struct blob_stream *s = (struct blob_stream *)g;
    if (s->pos < s->end)
        start_read(s);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    /* An in-flight read finishes unsent; the dispose anchor frees the stream. */
    ((struct blob_stream *)g)->stopped = 1;
}

static void serve_blob(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                       int may_catch_up);
static void respond(h2o_req_t *req, const char *digest, uint64_t size, int fd,
                    struct pt_blob_feed *feed);

/* The committer attached the request to the blob's transfer (or could not). */
static void on_feed(h2o_req_t *req, struct pt_proposal *p, void *data)
{
    if (p->status != 0) {
        pt_http_error(req, p->status, NULL, NULL);
        return;
    }
    struct pt_blob_feed *feed = p->out;
    p->out = NULL;
    respond(req, data, feed->size, -1, feed);
}

static void get_blob_again(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    serve_blob(w, req, rt, 0);
}

static void get_blob(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    serve_blob(w, req, rt, 1);
}

static void serve_blob(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                       int may_catch_up)
{
    char *name = pt_api_name(req, rt);
    char digest[PT_DIGEST_STR_MAX + 1];
    pt_digest_format(&rt->digest, digest);
    uint64_t size;
    int rv = pt_metastore_blob_linked(w->node->ms, name, digest, &size);
    /* A link committed through another region a moment ago may not be applied here yet. */
    if (rv == PT_E_BLOB_UNKNOWN && may_catch_up &&
        pt_api_catch_up(w, req, rt, digest, get_blob_again) == 0)
        return;
    int fd = -1, linked = rv == 0;
    if (linked)
        rv = pt_blobstore_open_blob(w->node->bs, &rt->digest, &fd, &size);
    /* linked, but not here yet: from its transfer (HEAD needs the size only, which the link
     * gave; open_blob leaves it alone when it fails) */
    if (linked && rv == PT_E_BLOB_UNKNOWN && pt_committer_is_cluster(w->node->committer)) {
        if (pt_http_is_head(req)) {
            respond(req, digest, size, -1, NULL);
            return;
        }
        char *key = strdup(digest);
        if (key == NULL || pt_api_job_target(w, req, PT_JOB_BLOB_FEED, key, strlen(key), size,
                                             on_feed, digest, sizeof(digest)) != 0)
            pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    if (rv != 0) {
        pt_http_error(req, rv, NULL, NULL);
        return;
    }
    respond(req, digest, size, fd, NULL);
}

/* Answers a blob GET/HEAD of size bytes: from fd (owned; -1 for HEAD or a feed) or from feed
 * (a reference, moved here). */
static void respond(h2o_req_t *req, const char *digest, uint64_t size, int fd,
                    struct pt_blob_feed *feed)
{
    int rv;
    uint64_t start = 0, end = size > 0 ? size - 1 : 0;
    int partial = 0;
    h2o_iovec_t range = pt_http_req_header(req, "range");
    if (range.base != NULL) {
        rv = pt_range_parse(range.base, range.len, size, &start, &end);
        if (rv < 0) {
            if (fd >= 0)
                close(fd);
            pt_blob_feed_release(feed);
            pt_http_headerf(req, "Content-Range", "bytes */%llu", (unsigned long long)size);
            pt_http_error(req, PT_E_RANGE_INVALID, "requested range not satisfiable", NULL);
            return;
        }
        partial = rv == 0;
        if (!partial) {
            start = 0;
            end = size > 0 ? size - 1 : 0;
        }
    }
    uint64_t len = size == 0 ? 0 : end - start + 1;
    pt_http_header(req, "Docker-Content-Digest", digest, strlen(digest));
    pt_http_headerf(req, "ETag", "\"%s\"", digest);
    pt_http_header(req, "Accept-Ranges", "bytes", 5);
    pt_http_header(req, "Cache-Control", "max-age=31536000", 16);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/octet-stream"));
    if (partial)
        pt_http_headerf(req, "Content-Range", "bytes %llu-%llu/%llu", (unsigned long long)start,
                        (unsigned long long)end, (unsigned long long)size);
    req->res.status = partial ? 206 : 200;
    req->res.reason = pt_http_reason(req->res.status);
    req->res.content_length = (size_t)len;

    if (pt_http_is_head(req) || len == 0) {
        if (fd >= 0)
            close(fd);
        pt_blob_feed_release(feed);
        static h2o_generator_t none = {NULL, NULL};
        h2o_start_response(req, &none);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    struct pt_worker *w = pt_worker_of(req);
    if (w->node->throttle != NULL) {
        /* the bytes about to be sent count against the identity's read bandwidth
         * (throttle.h): a next request waits while the bucket is in debt */
        char key[PT_THROTTLE_KEY_MAX + 1], subject[PT_THROTTLE_KEY_MAX + 1];
        pt_auth_throttle_key(pt_auth_ctx_of(req), key, sizeof(key), subject, sizeof(subject));
        pt_throttle_charge(w->node->throttle, key, subject, len, pt_clock_mono_ms());
    }
    struct blob_stream *s = malloc(sizeof(*s));
    if (s == NULL) {
        if (fd >= 0)
            close(fd);
        pt_blob_feed_release(feed);
        req->res.content_length = SIZE_MAX;
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    s->super.proceed = on_proceed;
    s->super.stop = on_stop;
    s->req = req;
    s->fd = fd;
    s->rfd = fd;
    s->feed = feed;
    s->waiting = 0;
    s->wait.mailbox = &pt_worker_of(req)->mailbox;
    s->wait.cb = on_feed_moved;
    s->in_flight = 0;
    s->stopped = 0;
    s->pos = start;
    s->end = end + 1;
    s->read_errno = 0;
    s->anchor = h2o_mem_alloc_shared(&req->pool, sizeof(*s->anchor), on_req_dispose);
    *s->anchor = s;
    h2o_start_response(req, &s->super);
    start_read(s);
}

static void on_unlinked(h2o_req_t *req, int status, void *data)
{
    (void)data;
    if (status != 0)
        pt_http_error(req, status, NULL, NULL);
    else
        pt_http_send_empty(req, 202);
}

static void delete_blob(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    char *name = pt_api_name(req, rt);
    char digest[PT_DIGEST_STR_MAX + 1];
    pt_digest_format(&rt->digest, digest);
    struct pt_command_builder b;
    int rv = pt_api_command(w, &b);
    if (rv == 0)
        rv = pt_api_commit(w, req, &b, pt_command_add_unlink_blob(&b, name, digest), on_unlinked,
                           NULL, 0);
    if (rv != 0)
        pt_http_error(req, rv, NULL, NULL);
}

void pt_api_blob(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    if (pt_http_method_is(req, "GET") || pt_http_is_head(req))
        get_blob(w, req, rt);
    else if (pt_http_method_is(req, "DELETE"))
        delete_blob(w, req, rt);
    else
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
}
