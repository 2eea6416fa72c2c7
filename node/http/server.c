/*
 * server.c - process layout of one node (DESIGN.md section 2).
 *
 *   main thread      opens the stores, starts everything, waits for SIGINT/SIGTERM
 *   committer        one thread applying replicated commands (replication/committer.c)
 *   HTTP workers     N threads, each a libuv loop with its own h2o context and its own
 *                    listening socket bound with SO_REUSEPORT, so the kernel spreads
 *                    connections over the loops without any shared accept lock
 *   thread pool      libuv's: blob hashing/writing/reading, fsync, rename
 *
 * h2o 2.2.5 buffers whole request bodies before a handler runs: small bodies in memory,
 * bodies above cfg.body_spill_threshold (1 MiB while the node's anonymous memory is above
 * cfg.body_memory_limit) in an unlinked temp file under <data>/tmp that is mmap'd
 * (file-backed pages, not anonymous memory). The HTTP/1 request timeout covers the
 * body too, so it is a setting (default one hour) rather than h2o's ten seconds; request heads,
 * idle connections, per-address caps and HTTP/2 rapid reset are bounded by worker.c's
 * connection guard, and ambiguous HTTP/1 framing (request smuggling) is refused in on_req.
 *
 * Readiness (/readyz, api_base.c): a single region is ready once its stores are open; a
 * cluster region once the committer's start-up catch-up is done (raft_node.h, node.progress).
 *
 * Shutdown (SIGTERM or SIGINT; README "Stopping a region"), bounded by cfg.shutdown_timeout:
 *   1. node.draining is set at once: /readyz answers 503 "draining" while everything else
 *      still serves, so a load balancer stops sending new clients;
 *   2. cluster: a leader hands leadership to the most up-to-date voter (raft_transfer,
 *      TimeoutNow: the target starts an election at once, no election timeout passes), waiting
 *      at most TRANSFER_WAIT_MS or a third of the timeout; writes in flight follow the
 *      new leader (raft_node.h); a follower skips this;
 *   3. the listeners close, HTTP/1 connections close after their current response, HTTP/2
 *      ones get GOAWAY; the workers wait for them until the timeout less CLOSE_RESERVE_MS;
 *   4. the committer stops, the stores are synced and closed, and the process exits 0.
 * A watchdog thread started at the signal ends the process with status 0 when the timeout
 * passes anyway (a stuck close): every acknowledged write is already on disk.
 * A second signal during shutdown is only logged.
 */
#include "server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "audit.h"
#include "audit_hook.h"
#include "auth_gate.h"
#include "auth_startup.h"
#include "blobstore.h"
#include "cluster_config.h"
#include "committer.h"
#include "diskspace.h"
#include "err.h"
#include "framing.h"
#include "http.h"
#include "log.h"
#include "metastore.h"
#include "metrics.h"
#include "gc.h"
#include "retention.h"
#include "worker.h"
#include "raft_node.h"
#include "clock.h"
#include "router.h"
#include "routes.h"
#include "throttle.h"
#include "upload_expiry.h"

#define AUDIT_ROTATE_BYTES (64ull << 20) /* audit.log is rotated at this size */
#define AUDIT_KEEP_FILES   16            /* rotated audit files kept */

struct server_handler {
    h2o_handler_t super;
    struct pt_node *node;
};

struct server_logger {
    h2o_logger_t super;
    struct pt_node *node;
};

/* Dispatch ----------------------------------------------------------------------------- */

static void new_request_id(h2o_req_t *req, char *id, size_t size)
{
    static _Atomic unsigned long long counter;
    unsigned long long n = ++counter;
    struct pt_worker *w = pt_worker_of(req);
    snprintf(id, size, "%llx-%x-%llx", (unsigned long long)w->node->started_ms, w->index, n);
    pt_http_header(req, "X-Request-Id", id, strlen(id));
}

/* 1 when req came in on the metrics listener (cfg.metrics_listen). */
static int on_metrics_port(struct pt_worker *w, h2o_req_t *req)
{
    struct sockaddr_storage ss;
    if (w->node->metrics_port == 0 || req->conn->callbacks->get_sockname == NULL)
        return 0;
    socklen_t sl = req->conn->callbacks->get_sockname(req->conn, (struct sockaddr *)&ss);
    unsigned port = 0;
    if (sl != 0 && ss.ss_family == AF_INET)
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else if (sl != 0 && ss.ss_family == AF_INET6)
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return port == w->node->metrics_port;
}

/* 1 when an HTTP/1 request's framing is ambiguous (request smuggling): Content-Length values
 * that differ, or Content-Length next to Transfer-Encoding (RFC 9112 section 6.3). h2o 2.2.5
 * keeps neither header in req->headers: it frames the body by the first Content-Length, or by
 * Transfer-Encoding when both are present, and reads whatever follows as the next request. Its
 * HTTP/1 parser leaves the raw head in the socket's input buffer until the response is done,
 * so the head is read from there; a head not found there (it must start with the method) is
 * left alone. */
static int ambiguous_framing(h2o_req_t *req)
{
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return 0;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->input == NULL)
        return 0;
    const char *buf = sock->input->bytes, *buf_end = buf + sock->input->size;
    /* With a body, the head is copied out for the handler and the buffer starts with it, the
     * body right behind; without one, the request line is read in place. */
    const char *p = req->input.method.base, *head_end = buf_end;
    if (req->entity.base != NULL && req->entity.base >= buf && req->entity.base <= buf_end) {
        p = buf;
        head_end = req->entity.base;
    }
    if (p == NULL || p < buf || p >= buf_end || (size_t)(head_end - p) < req->input.method.len ||
        memcmp(p, req->input.method.base, req->input.method.len) != 0)
        return 0;
    return pt_http_framing_ambiguous(p, (size_t)(head_end - p));
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct pt_worker *w = pt_worker_of(req);
    (void)self;
    pt_conn_guard_request_start(req);
    if (ambiguous_framing(req)) {
        /* Whatever follows on this connection cannot be framed: answer and close it. */
        req->http1_is_persistent = 0;
        pt_http_error(req, PT_E_INVALID, "ambiguous request framing",
                      "Content-Length and Transfer-Encoding, or differing Content-Length");
        return 0;
    }
    char rid[64];
    new_request_id(req, rid, sizeof(rid));
    pt_http_header(req, "Docker-Distribution-API-Version", PT_HTTP_API_VERSION,
                   strlen(PT_HTTP_API_VERSION));

    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    struct pt_route rt;
    int rv = pt_router_match(req->path.base, path_len, &rt);
    /* With a metrics listener, it serves /metrics alone and the client port does not. */
    if (w->node->metrics_port != 0 &&
        (on_metrics_port(w, req) ? rt.id != PT_ROUTE_METRICS : rt.id == PT_ROUTE_METRICS)) {
        pt_http_error(req, PT_E_NOT_FOUND, NULL, NULL);
        return 0;
    }
    if (rv == PT_E_TAG_INVALID && rt.id == PT_ROUTE_MANIFEST) {
        pt_auth_gate(w, req, &rt, rid, pt_api_manifest_bad_tag);
        return 0;
    }
    if (rv != 0) {
        pt_http_error(req, rv, NULL, NULL);
        return 0;
    }
    pt_auth_gate(w, req, &rt, rid, pt_routes_dispatch);
    return 0;
}

static double elapsed(const struct timeval *from, const struct timeval *to)
{
    return (double)(to->tv_sec - from->tv_sec) + (double)(to->tv_usec - from->tv_usec) / 1e6;
}

/* Runs when a request is done (h2o logger): metrics and the access log. */
static void on_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    struct server_logger *lg = (struct server_logger *)self;
    /* HTTP/2 streams reset before their response are counted by the guard, not logged. */
    if (pt_conn_guard_request_done(req))
        return;
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    struct pt_route rt;
    if (req->path.base == NULL || pt_router_match(req->path.base, path_len, &rt) != 0)
        rt.id = PT_ROUTE_UNKNOWN;
    struct timeval now;
    gettimeofday(&now, NULL);
    double secs = elapsed(&req->timestamps.request_begin_at, &now);
    char method[16];
    snprintf(method, sizeof(method), "%.*s", (int)req->method.len, req->method.base);
    uint64_t bytes_in = req->entity.base != NULL ? req->entity.len : 0;
    pt_metrics_request((unsigned)rt.id, method, req->res.status, secs, bytes_in, req->bytes_sent);
    if (rt.id != PT_ROUTE_UNKNOWN)
        pt_http_audit_done(pt_worker_of(req), req, &rt);
    if (!lg->node->cfg.access_log || !pt_log_enabled(PT_LOG_INFO))
        return;
    ssize_t i = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1);
    char rid[64] = "";
    if (i >= 0)
        snprintf(rid, sizeof(rid), "%.*s", (int)req->res.headers.entries[i].value.len,
                 req->res.headers.entries[i].value.base);
    char path[512];
    snprintf(path, sizeof(path), "%.*s", (int)(req->path.len < 511 ? req->path.len : 511),
             req->path.base != NULL ? req->path.base : "");
    /* receive_us: from the first byte of the request until the handler ran, which covers the
     * whole body (h2o buffers it); duration_us: until the response was done. */
    double receive = elapsed(&req->timestamps.request_begin_at, &req->processed_at.at);
    char who[PT_AUTH_NAME_MAX + 16] = "-";
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    if (ctx != NULL && ctx->enforced)
        pt_auth_identity_text(&ctx->id, who, sizeof(who));
    pt_log(PT_LOG_INFO, "request", "{s:s,s:s,s:s,s:s,s:s,s:i,s:I,s:I,s:I,s:I,s:i}", "req_id", rid,
           "identity", who, "method", method, "path", path, "route", pt_route_name(rt.id), "status",
           req->res.status, "bytes_in", (json_int_t)bytes_in, "bytes_out",
           (json_int_t)req->bytes_sent, "receive_us", (json_int_t)(receive * 1e6), "duration_us",
           (json_int_t)(secs * 1e6), "http", req->version >= 0x200 ? 2 : 1);
}

/* Workers ------------------------------------------------------------------------------ */

static int open_listener(struct pt_worker *w, uv_tcp_t *listener, const char *host, unsigned port)
{
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%u", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    int gai = getaddrinfo(host[0] != '\0' ? host : NULL, portstr, &hints, &res);
    if (gai != 0) {
        pt_log(PT_LOG_ERROR, "cannot resolve listen address", "{s:s,s:s}", "host", host, "error",
               gai_strerror(gai));
        return PT_E_CONFIG;
    }
    int one = 1;
    int rv = PT_E_CONFIG;
    /* SO_REUSEPORT lets every loop of this node accept on one address, but it would also let
     * a second process of the same user join in silently and take a share of the
     * connections. The first loop binds a socket without it first, which fails while anything
     * listens there. */
    if (w->index == 0) {
        int probe = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0)
            setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (probe < 0 || bind(probe, res->ai_addr, res->ai_addrlen) != 0) {
            pt_log(PT_LOG_ERROR, "cannot listen", "{s:s,s:i,s:s}", "host", host, "port", (int)port,
                   "error", strerror(errno));
            if (probe >= 0)
                close(probe);
            goto out;
        }
        close(probe);
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto out;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        pt_log(PT_LOG_ERROR, "cannot listen", "{s:s,s:i,s:s}", "host", host, "port", (int)port,
               "error", strerror(errno));
        close(fd);
        goto out;
    }
    uv_tcp_init(&w->loop, listener);
    listener->data = w;
    if (uv_tcp_open(listener, fd) != 0 ||
        uv_listen((uv_stream_t *)listener, 1024, pt_conn_guard_on_connection) != 0) {
        close(fd);
        goto out;
    }
    rv = 0;
out:
    freeaddrinfo(res);
    return rv;
}

#define DRAIN_POLL_MS    50
#define TRANSFER_WAIT_MS 10000 /* shutdown: longest wait for a leadership transfer */
#define CLOSE_RESERVE_MS 2000  /* shutdown: kept for stopping raft and closing the stores */

static void on_closed_free_nothing(uv_handle_t *h)
{
    (void)h;
}

/* Waits for open connections to finish (up to node.drain_timeout_ms); idle ones are closed
 * at once (worker.c), h2o closes each HTTP/1 connection after its current
 * response and sends GOAWAY on HTTP/2 once shutdown is requested. */
static void on_drain_tick(uv_timer_t *t)
{
    struct pt_worker *w = t->data;
    w->drain_ms += DRAIN_POLL_MS;
    if (w->connections > 0)
        pt_conn_guard_sweep(w); /* closes the connections that went idle */
    if (w->connections > 0 && w->drain_ms < atomic_load(&w->node->drain_timeout_ms))
        return;
    if (w->connections > 0) {
        /* Requests still running at the deadline: leave them to the process exit. */
        pt_log(PT_LOG_WARN, "connections still open at shutdown", "{s:i,s:i}", "worker",
               (int)w->index, "connections", (int)w->connections);
        uv_stop(&w->loop);
        return;
    }
    uv_close((uv_handle_t *)t, on_closed_free_nothing);
    uv_close((uv_handle_t *)&w->stop, on_closed_free_nothing);
    pt_conn_guard_worker_close(w);
    pt_mailbox_close(&w->mailbox);
    if (h2o_timeout_is_linked(&w->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&w->ctx.http2._graceful_shutdown_timeout);
    h2o_context_dispose(&w->ctx);
    w->clean = 1;
}

static void on_stop(uv_async_t *a)
{
    struct pt_worker *w = a->data;
    w->stopping = 1;
    uv_close((uv_handle_t *)&w->listener, on_closed_free_nothing);
    if (w->metrics_open)
        uv_close((uv_handle_t *)&w->metrics_listener, on_closed_free_nothing);
    h2o_context_request_shutdown(&w->ctx);
    w->drain.data = w;
    uv_timer_init(&w->loop, &w->drain);
    uv_timer_start(&w->drain, on_drain_tick, 0, DRAIN_POLL_MS);
}

static void *worker_main(void *arg)
{
    struct pt_worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (w->clean)
        uv_loop_close(&w->loop);
    return NULL;
}

static int worker_init(struct pt_worker *w, struct pt_node *node, unsigned index, const char *host,
                       unsigned port)
{
    w->node = node;
    w->index = index;
    if (uv_loop_init(&w->loop) != 0)
        return PT_E_INTERNAL;
    w->loop.data = w;
    h2o_context_init(&w->ctx, &w->loop, &node->h2o);
    w->accept.ctx = &w->ctx;
    w->accept.hosts = node->h2o.hosts;
    w->accept.ssl_ctx = node->ssl_ctx;
    w->stop.data = w;
    uv_async_init(&w->loop, &w->stop, on_stop);
    if (pt_mailbox_init(&w->mailbox, &w->loop) != 0)
        return PT_E_INTERNAL;
    if (pt_conn_guard_worker_init(w) != 0)
        return PT_E_NOMEM;
    int rv = open_listener(w, &w->listener, host, port);
    if (rv == 0 && index == 0 && node->metrics_port != 0) {
        char mhost[256];
        unsigned mport;
        struct pt_config mc = node->cfg;
        snprintf(mc.listen, sizeof(mc.listen), "%s", node->cfg.metrics_listen);
        rv = pt_config_listen_addr(&mc, mhost, sizeof(mhost), &mport);
        if (rv == 0)
            rv = open_listener(w, &w->metrics_listener, mhost, mport);
        w->metrics_open = rv == 0;
    }
    return rv;
}

/* Asks the first n workers' loops to stop and waits for their threads; 1 if every one shut
 * down with its handles closed. */
static int stop_workers(struct pt_worker *workers, unsigned n)
{
    int clean = 1;
    for (unsigned i = 0; i < n; i++)
        uv_async_send(&workers[i].stop);
    for (unsigned i = 0; i < n; i++) {
        pthread_join(workers[i].thread, NULL);
        clean = clean && workers[i].clean;
    }
    return clean;
}

/* Stops what runs beside the workers, in dependency order, once no worker runs: the
 * background threads that read the stores (auth start-up, the collector: a pass waits for the
 * committer's answers, so it stops first), then the committer, and closes the stores with every
 * applied command on disk. Used by a normal shutdown and by a start-up that fails half way. */
static void stop_services(struct pt_node *node)
{
    pt_auth_startup_stop();
    pt_gc_stop(node->gc);
    node->gc = NULL;
    pt_retention_stop(node->retention); /* likewise waits for the committer's answers */
    node->retention = NULL;
    pt_committer_stop(node->committer);
    pt_auth_service_free(node->auth);
    node->auth = NULL;
    pt_throttle_free(node->throttle);
    node->throttle = NULL;
    pt_audit_close(node->audit);
    node->audit = NULL;
    pt_metastore_sync(node->ms);
    pt_metastore_close(node->ms);
    pt_blobstore_close(node->bs);
}

/* Start-up ----------------------------------------------------------------------------- */

static SSL_CTX *make_ssl_ctx(const struct pt_config *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        pt_log(PT_LOG_ERROR, "cannot load TLS certificate or key", "{s:s,s:s,s:s}", "cert",
               cfg->tls_cert, "key", cfg->tls_key, "error", buf);
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
}

/* Client side of HTTPS to other regions (uploads forwarded to the region that owns them,
 * api_upload.c): the peer's certificate must chain to tls_peer_ca (or the system's CAs) and
 * name the host of its URL. */
static SSL_CTX *make_peer_ssl_ctx(const struct pt_config *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    int ok = cfg->tls_peer_ca[0] != '\0'
                 ? SSL_CTX_load_verify_locations(ctx, cfg->tls_peer_ca, NULL)
                 : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        pt_log(PT_LOG_ERROR, "cannot load the CAs of other regions", "{s:s,s:s}", "file",
               cfg->tls_peer_ca, "error", buf);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

/* Memory for request bodies. h2o keeps a body in memory while its buffer stays below the
 * mmap threshold, and above it in a file-backed mapping (page cache, reclaimable). In memory
 * is far cheaper for chunks of a few MiB (a shared file mapping takes a filesystem page fault
 * per page), so the threshold is cfg.body_spill_threshold; but many connections sending such
 * bodies at once could then take memory without bound, so while the node's anonymous memory
 * is at or above cfg.body_memory_limit (checked every SPILL_CHECK_MS on the main loop) the
 * threshold is SPILL_LOW. h2o reads the threshold at each growth of a buffer, from any loop
 * thread: it is written with a relaxed atomic store of an aligned size_t. */
#define SPILL_CHECK_MS 100
#define SPILL_LOW      ((size_t)1 << 20)

static size_t spill_threshold(const struct pt_config *cfg)
{
    long long anon = pt_metrics_rss_anon();
    size_t want = (size_t)cfg->body_spill_threshold;
    if (want > SPILL_LOW && anon >= 0 && (uint64_t)anon >= cfg->body_memory_limit)
        want = SPILL_LOW;
    return want;
}

static void spill_set(size_t threshold)
{
    __atomic_store_n(&h2o_socket_buffer_mmap_settings.threshold, threshold, __ATOMIC_RELAXED);
}

static void on_spill_timer(uv_timer_t *t)
{
    struct pt_node *node = t->data;
    spill_set(spill_threshold(&node->cfg));
}

static void setup_h2o(struct pt_node *node)
{
    const struct pt_config *cfg = &node->cfg;
    h2o_config_init(&node->h2o);
    node->h2o.server_name = h2o_iovec_init(H2O_STRLIT("portolan"));
    node->h2o.max_request_entity_size = (size_t)cfg->max_body_size;
    node->h2o.http1.req_timeout = cfg->request_timeout_ms;
    /* h2o runs this timer only while no stream is open: it is the HTTP/2 keep-alive limit. */
    node->h2o.http2.idle_timeout = cfg->keepalive_timeout_ms;
    node->h2o.http2.max_concurrent_requests_per_connection = 64;
    h2o_hostconf_t *host =
        h2o_config_register_host(&node->h2o, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    struct server_handler *h = (void *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->node = node;
    struct server_logger *lg = (void *)h2o_create_logger(path, sizeof(*lg));
    lg->super.log_access = on_log_access;
    lg->node = node;

    /* Request bodies above the threshold spill to unlinked files in the data directory. */
    snprintf(h2o_socket_buffer_mmap_settings.fn_template,
             sizeof(h2o_socket_buffer_mmap_settings.fn_template), "%s/body.XXXXXX",
             pt_blobstore_tmp_dir(node->bs));
    spill_set(spill_threshold(cfg));
}

/* Starts the free-space watcher (base/diskspace.h) on the data directory and the trees that
 * may be mounted apart from it (blobs, meta, raft); the reserve was checked by the config. */
static void watch_disk(const struct pt_config *cfg)
{
    static const char *const subdirs[] = {"blobs", "meta", "raft"};
    char paths[1 + sizeof subdirs / sizeof subdirs[0]][PT_DISK_PATH_MAX];
    const char *ptrs[1 + sizeof subdirs / sizeof subdirs[0]];
    size_t n = 0;
    snprintf(paths[n], sizeof paths[n], "%s", cfg->data_dir);
    ptrs[n] = paths[n];
    n++;
    for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
        if (snprintf(paths[n], sizeof paths[n], "%s/%s", cfg->data_dir, subdirs[i]) >=
            (int)sizeof paths[n])
            continue;
        ptrs[n] = paths[n];
        n++;
    }
    struct pt_disk_reserve r;
    if (pt_disk_reserve_parse(cfg->disk_reserve, &r) != 0)
        r = (struct pt_disk_reserve){.automatic = true};
    pt_disk_init(ptrs, n, &r);
    struct pt_disk_state d;
    pt_disk_sample(&d);
    pt_log(d.low ? PT_LOG_WARN : PT_LOG_INFO, "disk reserve", "{s:s,s:I,s:I,s:b}", "setting",
           cfg->disk_reserve, "free_bytes", (json_int_t)d.free_bytes, "reserve_bytes",
           (json_int_t)d.reserve_bytes, "low", d.low);
}

static int open_stores(struct pt_node *node)
{
    char path[4200];
    watch_disk(&node->cfg);
    int rv = pt_blobstore_open(node->cfg.data_dir, &node->bs);
    if (rv != 0) {
        pt_log(PT_LOG_ERROR, "cannot open blob store", "{s:s}", "dir", node->cfg.data_dir);
        return rv;
    }
    snprintf(path, sizeof(path), "%s/meta", node->cfg.data_dir);
    rv = pt_metastore_open(path, &node->ms);
    if (rv != 0) {
        pt_log(PT_LOG_ERROR, "cannot open metadata store", "{s:s}", "dir", path);
        return rv;
    }
    /* the index of the blobs this region lacks (blob replication), built once if absent; a
     * read-only store without it leaves replication to walk blob_locations */
    rv = pt_metastore_missing_index(node->ms, node->cfg.region);
    if (rv != 0 && rv != PT_E_DISK_FULL) {
        pt_log(PT_LOG_ERROR, "cannot index the blobs this region lacks", "{s:s}", "error",
               pt_err_message(rv));
        return rv;
    }
    /* A failed recovery is logged and leaves the sessions (and their files) as they are. */
    unsigned resumed, dropped;
    pt_upload_expiry_recover(node, pt_clock_wall_ms(), &resumed, &dropped);
    pt_log(PT_LOG_INFO, "stores open", "{s:s,s:I,s:i,s:i}", "data_dir", node->cfg.data_dir,
           "applied_index", (json_int_t)pt_metastore_applied_index(node->ms), "uploads_resumed",
           (int)resumed, "uploads_expired", (int)dropped);
    return 0;
}

/* Main thread (never an HTTP loop): drops upload sessions idle for longer than upload_ttl. */
static void on_expire_timer(uv_timer_t *t)
{
    unsigned expired = pt_upload_expiry_pass(t->data);
    if (expired > 0)
        pt_log(PT_LOG_INFO, "expired abandoned uploads", "{s:i}", "count", (int)expired);
}

/* Single region, or Raft when a cluster file is configured (DESIGN.md section 4). */
static int start_committer(struct pt_node *node)
{
    const struct pt_config *cfg = &node->cfg;
    if (cfg->cluster_file[0] == '\0') {
        atomic_store(&node->progress, PT_RAFT_CAUGHT_UP); /* its own state is the latest */
        return pt_committer_start(node->ms, NULL, &node->committer);
    }
    static struct pt_raft_node_config rc;
    char err[512] = "";
    memset(&rc, 0, sizeof(rc));
    if (pt_cluster_config_load(&rc.cluster, cfg->cluster_file, err, sizeof(err)) != 0) {
        pt_log(PT_LOG_ERROR, "cannot load the cluster file", "{s:s}", "error", err);
        return PT_E_CONFIG;
    }
    const struct pt_cluster_region *me = NULL;
    for (size_t i = 0; i < rc.cluster.nregions; i++)
        if (strcmp(rc.cluster.regions[i].name, cfg->region) == 0)
            me = &rc.cluster.regions[i];
    if (me == NULL) {
        pt_log(PT_LOG_ERROR, "region not in the cluster file", "{s:s,s:s}", "region", cfg->region,
               "file", cfg->cluster_file);
        return PT_E_CONFIG;
    }
    rc.self_id = me->id;
    /* session ids name the region that holds them (api_upload.c forwards the others) */
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "%llx-", (unsigned long long)me->id);
    if (pt_blobstore_set_id_prefix(node->bs, prefix) != 0)
        return PT_E_CONFIG;
    node->region_id = me->id;
    node->cluster = &rc.cluster;
    snprintf(rc.bind, sizeof(rc.bind), "%s", cfg->raft_listen);
    if (strlen(cfg->data_dir) + sizeof("/raft") > sizeof(rc.dir))
        return PT_E_CONFIG;
    memcpy(rc.dir, cfg->data_dir, strlen(cfg->data_dir));
    memcpy(rc.dir + strlen(cfg->data_dir), "/raft", sizeof("/raft"));
    rc.write_timeout_ms = (unsigned)cfg->write_timeout_ms;
    rc.read_index_timeout_ms = (unsigned)cfg->read_index_timeout_ms;
    rc.join = cfg->join;
    rc.snapshot_every = cfg->snapshot_every;
    rc.blobs = node->bs;
    rc.progress = &node->progress;
    rc.replication_concurrency = cfg->replication_concurrency;
    rc.replication_bandwidth = cfg->replication_bandwidth;
    if (cfg->peer_tls) {
        snprintf(rc.peer_tls_cert, sizeof(rc.peer_tls_cert), "%s", cfg->peer_tls_cert);
        snprintf(rc.peer_tls_key, sizeof(rc.peer_tls_key), "%s", cfg->peer_tls_key);
        snprintf(rc.peer_tls_ca, sizeof(rc.peer_tls_ca), "%s", cfg->peer_tls_ca);
    }
    return pt_committer_start(node->ms, &rc, &node->committer);
}

/* Access control and the audit log (README "Access control"); both stay NULL when off.
 * Request throttling (throttle.h) always exists: it counts nothing until a limit is set. */
static int open_access_control(struct pt_node *node)
{
    const struct pt_config *cfg = &node->cfg;
    int rv;
    if ((rv = pt_throttle_create(node->ms, &node->throttle)) != 0)
        return rv;
    if (cfg->metrics_listen[0] != '\0') {
        struct pt_config mc = *cfg;
        char mhost[256];
        snprintf(mc.listen, sizeof(mc.listen), "%s", cfg->metrics_listen);
        if (pt_config_listen_addr(&mc, mhost, sizeof(mhost), &node->metrics_port) != 0)
            return PT_E_CONFIG;
    }
    if (cfg->audit != PT_AUDIT_OFF &&
        (rv = pt_audit_open(cfg->data_dir, cfg->region, cfg->audit == PT_AUDIT_STDERR,
                            AUDIT_ROTATE_BYTES, AUDIT_KEEP_FILES, &node->audit)) != 0) {
        pt_log(PT_LOG_ERROR, "cannot open the audit log", "{s:s,s:i}", "dir", cfg->data_dir,
               "error", rv);
        return rv;
    }
    if (!cfg->auth) {
        pt_log(PT_LOG_WARN, "access control is off: every client may pull, push and delete",
               "{s:s}", "listen", cfg->listen);
        return 0;
    }
    return pt_auth_service_create(node, &node->auth);
}

static uv_loop_t main_loop;
static uv_timer_t expire_timer;
static uv_timer_t spill_timer;
static uv_signal_t sigint, sigterm;

/* Shutdown (file comment), on the main loop. */
static struct {
    struct pt_node *node;
    uint64_t started;          /* uv_now at the signal */
    struct pt_mailbox mailbox; /* the committer answers the transfer here */
    struct pt_proposal transfer;
    uv_timer_t transfer_timer;
    int stopped;
} shutdown_state;

static void *watchdog_main(void *arg)
{
    uint64_t ms = *(const uint64_t *)arg;
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    pt_log(PT_LOG_ERROR, "shutdown timeout reached: exiting now", "{s:I}", "shutdown_timeout_ms",
           (json_int_t)ms);
    _exit(0);
    return NULL;
}

/* Step 3 on: the main loop stops, pt_server_run closes the rest. */
static void shutdown_stop(void)
{
    if (shutdown_state.stopped)
        return;
    shutdown_state.stopped = 1;
    struct pt_node *node = shutdown_state.node;
    uint64_t spent = uv_now(&main_loop) - shutdown_state.started;
    uint64_t budget = node->cfg.shutdown_timeout_ms;
    uint64_t left = budget > spent + CLOSE_RESERVE_MS ? budget - spent - CLOSE_RESERVE_MS : 0;
    atomic_store(&node->drain_timeout_ms, (unsigned)(left < UINT32_MAX ? left : UINT32_MAX));
    uv_stop(&main_loop);
}

static void on_transfer_timeout(uv_timer_t *t)
{
    (void)t;
    pt_log(PT_LOG_WARN, "leadership transfer not finished in time: stopping anyway", NULL);
    shutdown_stop();
}

static void on_transferred(struct pt_proposal *p)
{
    uv_timer_stop(&shutdown_state.transfer_timer);
    if (p->status == 0)
        pt_log(PT_LOG_INFO, "leadership handed over before shutdown", "{s:I,s:I}", "leader_id",
               (json_int_t)p->index, "ms",
               (json_int_t)(uv_now(&main_loop) - shutdown_state.started));
    else if (p->status != PT_E_UNAVAILABLE) /* UNAVAILABLE: this region did not lead */
        pt_log(PT_LOG_WARN, "leadership transfer before shutdown failed", "{s:s}", "error",
               pt_err_message(p->status));
    shutdown_stop();
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct pt_node *node = s->data;
    if (atomic_exchange(&node->draining, 1)) {
        pt_log(PT_LOG_INFO, "already shutting down", "{s:i}", "signal", signum);
        return;
    }
    pt_log(PT_LOG_INFO, "shutting down", "{s:i,s:I}", "signal", signum, "shutdown_timeout_ms",
           (json_int_t)node->cfg.shutdown_timeout_ms);
    pt_metrics_ready(0);
    static uint64_t watchdog_ms;
    watchdog_ms = node->cfg.shutdown_timeout_ms;
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, watchdog_main, &watchdog_ms) != 0)
        pt_log(PT_LOG_WARN, "no shutdown watchdog thread", NULL);
    pthread_attr_destroy(&attr);
    shutdown_state.node = node;
    shutdown_state.started = uv_now(&main_loop);
    if (node->cluster == NULL) {
        shutdown_stop();
        return;
    }
    uint64_t wait = node->cfg.shutdown_timeout_ms / 3;
    if (wait > TRANSFER_WAIT_MS)
        wait = TRANSFER_WAIT_MS;
    shutdown_state.transfer = (struct pt_proposal){.reply_to = &shutdown_state.mailbox,
                                                   .done_cb = on_transferred,
                                                   .kind = PT_JOB_TRANSFER,
                                                   .target = 0};
    uv_timer_start(&shutdown_state.transfer_timer, on_transfer_timeout, wait, 0);
    pt_committer_submit(node->committer, &shutdown_state.transfer);
}

int pt_server_run(const struct pt_config *cfg)
{
    static struct pt_node node;
    node.cfg = *cfg;
    node.started_ms = pt_clock_wall_ms();
    pthread_mutex_init(&node.busy_lock, NULL);
    if (pt_conn_guard_init(&node) != 0)
        return PT_E_NOMEM;
    if (node.cfg.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        node.cfg.threads = n > 0 ? (unsigned)n : 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Hashing, disk writes and reads run in libuv's pool: size it before first use. */
    if (getenv("UV_THREADPOOL_SIZE") == NULL)
        setenv("UV_THREADPOOL_SIZE", "16", 1);

    char host[256];
    unsigned port;
    int rv = pt_config_listen_addr(&node.cfg, host, sizeof(host), &port);
    if (rv != 0)
        return rv;
    if ((rv = open_stores(&node)) != 0)
        return rv;
    if ((rv = start_committer(&node)) != 0)
        return rv;
    if (node.cfg.tls_cert[0] != '\0') {
        node.ssl_ctx = make_ssl_ctx(&node.cfg);
        if (node.ssl_ctx == NULL) {
            rv = PT_E_CONFIG;
            goto fail;
        }
    }
    SSL_CTX *peer_ctx = NULL;
    if (node.cluster != NULL && (peer_ctx = make_peer_ssl_ctx(&node.cfg)) == NULL) {
        rv = PT_E_CONFIG;
        goto fail;
    }
    if ((rv = open_access_control(&node)) != 0)
        goto fail;
    uv_loop_init(&main_loop);
    if ((rv = pt_retention_start(&node, &main_loop, &node.retention)) != 0)
        goto fail;
    if ((rv = pt_gc_start(&node, &main_loop, &node.gc)) != 0)
        goto fail;
    /* A single region publishes its key and first administrator before it serves; a cluster
     * region does it in the background once a leader commits. */
    if ((rv = pt_auth_startup_run(&node, &main_loop, node.cluster == NULL)) != 0)
        goto fail;
    static const char *route_names[PT_ROUTE__COUNT];
    for (unsigned i = 0; i < PT_ROUTE__COUNT; i++)
        route_names[i] = pt_route_name((enum pt_route_id)i);
    pt_metrics_init(route_names, PT_ROUTE__COUNT);
    setup_h2o(&node);
    node.h2o.proxy.ssl_ctx = peer_ctx;

    struct pt_worker *workers = calloc(node.cfg.threads, sizeof(*workers));
    if (workers == NULL) {
        rv = PT_E_NOMEM;
        goto fail;
    }
    node.workers = workers;
    for (unsigned i = 0; i < node.cfg.threads; i++) {
        if ((rv = worker_init(&workers[i], &node, i, host, port)) != 0)
            goto fail;
    }
    unsigned started = 0;
    while (started < node.cfg.threads) {
        int err = pthread_create(&workers[started].thread, NULL, worker_main, &workers[started]);
        if (err != 0) {
            pt_log(PT_LOG_ERROR, "cannot start an HTTP worker thread", "{s:i,s:i,s:s}", "worker",
                   (int)started, "threads", (int)node.cfg.threads, "error", strerror(err));
            break;
        }
        started++;
    }
    if (started < node.cfg.threads) {
        /* Stop the loops that run; the ones never started keep their handles until exit. */
        stop_workers(workers, started);
        rv = PT_E_INTERNAL;
        goto fail;
    }
    pt_log(PT_LOG_INFO, "listening", "{s:s,s:i,s:i,s:b,s:s,s:s}", "host", host, "port", (int)port,
           "threads", (int)node.cfg.threads, "tls", node.ssl_ctx != NULL, "region", node.cfg.region,
           "version", PT_VERSION);

    uv_timer_init(&main_loop, &shutdown_state.transfer_timer);
    if (node.cluster != NULL && pt_mailbox_init(&shutdown_state.mailbox, &main_loop) != 0)
        return PT_E_INTERNAL;
    uv_signal_init(&main_loop, &sigint);
    uv_signal_init(&main_loop, &sigterm);
    sigint.data = &node;
    sigterm.data = &node;
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uint64_t every = node.cfg.upload_ttl_ms / 4;
    if (every > 600000)
        every = 600000;
    if (every < 1000)
        every = 1000;
    expire_timer.data = &node;
    uv_timer_init(&main_loop, &expire_timer);
    uv_timer_start(&expire_timer, on_expire_timer, every, every);
    spill_timer.data = &node;
    uv_timer_init(&main_loop, &spill_timer);
    uv_timer_start(&spill_timer, on_spill_timer, SPILL_CHECK_MS, SPILL_CHECK_MS);
    uv_run(&main_loop, UV_RUN_DEFAULT);

    if (!atomic_load(&node.draining)) /* the loop ended without a signal */
        atomic_store(&node.drain_timeout_ms, 3000);
    int clean = stop_workers(workers, node.cfg.threads);
    /* Everything below runs after the workers are gone; applied commands reach the disk. */
    stop_services(&node);
    uv_close((uv_handle_t *)&expire_timer, NULL);
    uv_close((uv_handle_t *)&spill_timer, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&shutdown_state.transfer_timer, NULL);
    if (node.cluster != NULL)
        pt_mailbox_close(&shutdown_state.mailbox);
    uv_run(&main_loop, UV_RUN_DEFAULT);
    uv_loop_close(&main_loop);
    if (clean) {
        /* With connections left open, workers stay allocated (reachable) until exit. */
        h2o_config_dispose(&node.h2o);
        if (node.ssl_ctx != NULL)
            SSL_CTX_free(node.ssl_ctx);
        if (peer_ctx != NULL)
            SSL_CTX_free(peer_ctx);
        free(workers);
        node.workers = NULL;
    }
    return 0;

fail: /* a start-up that failed once the committer ran: the threads stop before the stores */
    stop_services(&node);
    return rv;
}
