/*
 * worker.c - what a handler reaches through its worker: the worker that owns a request, the
 * node-wide set of uploads that have an operation in flight (one PATCH or PUT of a session at
 * a time, whichever loop it arrives on), and the connection guard (accept, per-address caps,
 * time-outs, the HTTP/2 reset bound; see "Connection guard" below).
 *
 * Threads: the busy set and the address table are node-wide under their mutexes; everything
 * else of the guard belongs to one worker's loop thread.
 *
 * The busy set is a short list under node->busy_lock: it holds one entry per upload being
 * written at this instant, so a list walk is cheaper than a table.
 */
#include "worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <h2o/http2.h>
#include <h2o/http2_internal.h>
#include <jansson.h>

#include "err.h"
#include "log.h"

struct pt_busy_upload {
    struct pt_busy_upload *next;
    char id[80];
};

struct pt_worker *pt_worker_of(h2o_req_t *req)
{
    return (struct pt_worker *)((char *)req->conn->ctx - offsetof(struct pt_worker, ctx));
}

int pt_node_upload_acquire(struct pt_node *node, const char *id)
{
    int rv = 0;
    pthread_mutex_lock(&node->busy_lock);
    for (struct pt_busy_upload *b = node->busy; b != NULL; b = b->next) {
        if (strcmp(b->id, id) == 0) {
            rv = -1;
            break;
        }
    }
    if (rv == 0) {
        struct pt_busy_upload *b = calloc(1, sizeof(*b));
        if (b == NULL) {
            rv = -1;
        } else {
            snprintf(b->id, sizeof(b->id), "%s", id);
            b->next = node->busy;
            node->busy = b;
        }
    }
    pthread_mutex_unlock(&node->busy_lock);
    return rv;
}

void pt_node_upload_release(struct pt_node *node, const char *id)
{
    pthread_mutex_lock(&node->busy_lock);
    for (struct pt_busy_upload **p = &node->busy; *p != NULL; p = &(*p)->next) {
        if (strcmp((*p)->id, id) == 0) {
            struct pt_busy_upload *b = *p;
            *p = b->next;
            free(b);
            break;
        }
    }
    pthread_mutex_unlock(&node->busy_lock);
}

/* Connection guard ------------------------------------------------------------------------
 *
 * Every client connection is a struct pt_conn whose first member is the libuv handle h2o reads
 * and writes, so h2o's close callback hands it back. A node-wide table counts connections per
 * peer address (SO_REUSEPORT spreads one address over every loop); a per-loop table finds the
 * connection of an h2o socket, so a request (req->conn->callbacks->get_socket) reaches its own
 * record. A timer per loop sweeps the connections twice a second:
 *   - an HTTP/1 request head (input that starts with a method and holds no blank line yet)
 *     older than header_timeout is closed: h2o 2.2.5's only HTTP/1 timer covers the whole
 *     request, body included, and stays long so that uploads are not cut off;
 *   - a connection that finished its last request (or never started one), has nothing
 *     buffered, and saw no traffic for keepalive_timeout is closed. HTTP/2 gets the same from
 *     h2o's own idle timer, which runs only while no stream is open. Once the worker stops
 *     (shutdown, server.c), such a connection is closed at the next sweep, whatever its idle
 *     time: nothing is lost, and an idle keep-alive client must not hold the shutdown up.
 * Closing means shutdown(2) on the socket: h2o's pending read then fails and h2o tears the
 * connection down itself, on its own terms.
 *
 * HTTP/2 rapid reset: h2o 2.2.5 has no hook for RST_STREAM, but a reset stream is disposed at
 * once, which runs the access logger. A stream disposed while the connection is open and
 * before its response was handed to the connection (no status yet, body not all sent, or
 * response data still queued) counts as reset early; a response without a body whose headers
 * already went out cannot be told from a normal end and is not counted. Past
 * http2_max_resets in one second (or 100 times that over the connection's life) the connection gets
 * GOAWAY (ENHANCE_YOUR_CALM) and is closed once that is written, the way h2o handles its own
 * protocol errors; reset streams are counted, not logged one by one.
 */

#define ADDR_BUCKETS  4096
#define SOCK_BUCKETS  1024
#define SMALL_CLIENT  8 /* addresses holding at most this many may use the reserved slots */
#define SWEEP_MS      500
#define HEAD_SCAN_MAX 65536

struct pt_addr_count {
    struct pt_addr_count *next;
    unsigned char addr[16];
    unsigned count;
};

struct pt_conn {
    uv_tcp_t tcp; /* first: h2o's close callback receives this handle */
    struct pt_worker *w;
    struct pt_conn *prev, *next, *hnext;
    h2o_socket_t *sock;
    unsigned char addr[16];
    size_t seen_bytes;        /* bytes read + written at the last sweep */
    size_t read_at_done;      /* bytes read when the last request finished */
    uint64_t active_ms;       /* loop time traffic was last seen */
    uint64_t head_since_ms;   /* 0, or since when an incomplete HTTP/1 head is buffered */
    unsigned inflight;        /* requests that reached the handler and are not disposed */
    unsigned resets_second;   /* early-reset HTTP/2 streams in the current second */
    uint64_t resets_since_ms; /* start of that second */
    unsigned long long resets_total;
    int closing;
    int goaway;
};

static unsigned addr_hash(const unsigned char *a)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ a[i]) * 16777619u;
    return h % ADDR_BUCKETS;
}

/* 1 and counted when the address may open one more connection now. */
static int addr_acquire(struct pt_node *node, const unsigned char *a)
{
    const struct pt_config *cfg = &node->cfg;
    unsigned max = cfg->max_connections;
    unsigned reserved = cfg->reserved_connections < max / 2 ? cfg->reserved_connections : max / 2;
    pthread_mutex_lock(&node->conn_lock);
    struct pt_addr_count **slot = &node->addr_table[addr_hash(a)], *e = *slot;
    while (e != NULL && memcmp(e->addr, a, 16) != 0)
        e = e->next;
    unsigned held = e != NULL ? e->count : 0;
    int ok = held < cfg->max_connections_per_address && node->conn_total < max &&
             (node->conn_total < max - reserved || held < SMALL_CLIENT);
    if (ok && e == NULL) {
        if ((e = calloc(1, sizeof(*e))) == NULL) {
            ok = 0;
        } else {
            memcpy(e->addr, a, 16);
            e->next = *slot;
            *slot = e;
        }
    }
    if (ok) {
        e->count++;
        node->conn_total++;
    }
    pthread_mutex_unlock(&node->conn_lock);
    return ok;
}

static void addr_release(struct pt_node *node, const unsigned char *a)
{
    pthread_mutex_lock(&node->conn_lock);
    for (struct pt_addr_count **p = &node->addr_table[addr_hash(a)]; *p != NULL; p = &(*p)->next) {
        if (memcmp((*p)->addr, a, 16) == 0) {
            struct pt_addr_count *e = *p;
            node->conn_total--;
            if (--e->count == 0) {
                *p = e->next;
                free(e);
            }
            break;
        }
    }
    pthread_mutex_unlock(&node->conn_lock);
}

/* The peer address as 16 bytes (IPv4 as ::ffff:a.b.c.d); all zero when unknown. */
static void peer_key(uv_tcp_t *tcp, unsigned char out[16])
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    memset(out, 0, 16);
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        memcpy(out, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    }
}

static unsigned sock_hash(const h2o_socket_t *sock)
{
    return (unsigned)(((uintptr_t)sock >> 4) % SOCK_BUCKETS);
}

static struct pt_conn *conn_of_req(h2o_req_t *req)
{
    if (req->conn == NULL || req->conn->callbacks->get_socket == NULL)
        return NULL;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    struct pt_worker *w = pt_worker_of(req);
    if (sock == NULL || w->conn_by_sock == NULL)
        return NULL;
    for (struct pt_conn *c = w->conn_by_sock[sock_hash(sock)]; c != NULL; c = c->hnext)
        if (c->sock == sock)
            return c;
    return NULL;
}

static void on_conn_close(uv_handle_t *h)
{
    struct pt_conn *c = (struct pt_conn *)h;
    struct pt_worker *w = c->w;
    if (c->sock != NULL) {
        for (struct pt_conn **p = &w->conn_by_sock[sock_hash(c->sock)]; *p != NULL;
             p = &(*p)->hnext) {
            if (*p == c) {
                *p = c->hnext;
                break;
            }
        }
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            w->conns = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
        if (c->resets_total > 0 && !c->goaway) /* a GOAWAY was logged already */
            pt_log(PT_LOG_INFO, "HTTP/2 connection closed after early-reset streams", "{s:I,s:b}",
                   "reset_streams", (json_int_t)c->resets_total, "goaway", c->goaway);
    }
    addr_release(w->node, c->addr);
    w->connections--;
    free(c);
}

void pt_conn_guard_on_connection(uv_stream_t *listener, int status)
{
    struct pt_worker *w = listener->data;
    if (status != 0)
        return;
    struct pt_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->w = w;
    uv_tcp_init(listener->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    peer_key(&c->tcp, c->addr);
    if (!addr_acquire(w->node, c->addr)) {
        /* Over the address cap or out of slots: closed at once, before h2o sees it. */
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    w->connections++;
    uv_tcp_nodelay(&c->tcp, 1);
    c->active_ms = uv_now(&w->loop);
    c->sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_close);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    unsigned hb = sock_hash(c->sock);
    c->hnext = w->conn_by_sock[hb];
    w->conn_by_sock[hb] = c;
    h2o_accept(&w->accept, c->sock);
}

/* 1 when input holds the start of an HTTP/1 request head without its end. */
static int incomplete_head(const h2o_buffer_t *in)
{
    if (in == NULL || in->size == 0 || in->bytes[0] < 'A' || in->bytes[0] > 'Z')
        return 0;
    size_t n = in->size < HEAD_SCAN_MAX ? in->size : HEAD_SCAN_MAX;
    return memmem(in->bytes, n, "\r\n\r\n", 4) == NULL && memmem(in->bytes, n, "\n\n", 2) == NULL;
}

static void conn_shutdown(struct pt_conn *c)
{
    uv_os_fd_t fd;
    c->closing = 1;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        shutdown(fd, SHUT_RDWR);
}

static void on_sweep(uv_timer_t *t)
{
    struct pt_worker *w = t->data;
    const struct pt_config *cfg = &w->node->cfg;
    uint64_t now = uv_now(&w->loop);
    unsigned head_closed = 0, idle_closed = 0;
    for (struct pt_conn *c = w->conns; c != NULL; c = c->next) {
        h2o_socket_t *s = c->sock;
        if (c->closing)
            continue;
        size_t bytes = s->bytes_read + s->bytes_written;
        if (bytes != c->seen_bytes) {
            c->seen_bytes = bytes;
            c->active_ms = now;
        }
        int reading = h2o_socket_is_reading(s);
        if (reading && incomplete_head(s->input)) {
            if (c->head_since_ms == 0) {
                c->head_since_ms = now;
            } else if (now - c->head_since_ms >= cfg->header_timeout_ms) {
                conn_shutdown(c);
                head_closed++;
                continue;
            }
        } else {
            c->head_since_ms = 0;
        }
        if (reading && c->inflight == 0 && s->bytes_read == c->read_at_done &&
            (s->input == NULL || s->input->size == 0) &&
            (w->stopping || now - c->active_ms >= cfg->keepalive_timeout_ms)) {
            conn_shutdown(c);
            idle_closed++;
        }
    }
    if (head_closed + idle_closed > 0)
        pt_log(PT_LOG_INFO, "closed stalled connections", "{s:i,s:i,s:i}", "worker", (int)w->index,
               "header_timeout", (int)head_closed, "idle", (int)idle_closed);
}

void pt_conn_guard_sweep(struct pt_worker *w)
{
    on_sweep(&w->sweep);
}

int pt_conn_guard_init(struct pt_node *node)
{
    pthread_mutex_init(&node->conn_lock, NULL);
    node->addr_table = calloc(ADDR_BUCKETS, sizeof(*node->addr_table));
    return node->addr_table != NULL ? 0 : PT_E_NOMEM;
}

int pt_conn_guard_worker_init(struct pt_worker *w)
{
    w->conn_by_sock = calloc(SOCK_BUCKETS, sizeof(*w->conn_by_sock));
    if (w->conn_by_sock == NULL)
        return PT_E_NOMEM;
    w->sweep.data = w;
    uv_timer_init(&w->loop, &w->sweep);
    uv_timer_start(&w->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    return 0;
}

void pt_conn_guard_worker_close(struct pt_worker *w)
{
    uv_close((uv_handle_t *)&w->sweep, NULL);
    free(w->conn_by_sock);
    w->conn_by_sock = NULL;
}

void pt_conn_guard_request_start(h2o_req_t *req)
{
    struct pt_conn *c = conn_of_req(req);
    if (c != NULL)
        c->inflight++;
}

/* Sends GOAWAY (ENHANCE_YOUR_CALM) and lets h2o close the connection once it is written, as h2o
 * does after a protocol error: queue the frame, ask for a write, then mark it closing so that
 * no further frame is read. */
static void h2_goaway(h2o_http2_conn_t *conn)
{
    static const char why[] = "too many reset streams";
    h2o_http2_encode_goaway_frame(&conn->_write.buf, conn->pull_stream_ids.max_open,
                                  H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM,
                                  h2o_iovec_init(why, sizeof(why) - 1));
    h2o_http2_conn_request_write(conn);
    conn->state = H2O_HTTP2_CONN_STATE_IS_CLOSING;
    h2o_socket_read_stop(conn->sock);
}

int pt_conn_guard_request_done(h2o_req_t *req)
{
    struct pt_conn *c = conn_of_req(req);
    if (c == NULL)
        return 0;
    if (c->inflight > 0)
        c->inflight--;
    c->read_at_done = c->sock->bytes_read;
    if (req->version < 0x200)
        return 0;
    h2o_http2_conn_t *conn = (h2o_http2_conn_t *)req->conn;
    h2o_http2_stream_t *st = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
    if (conn->state == H2O_HTTP2_CONN_STATE_IS_CLOSING)
        return c->goaway;
    /* h2o stamps response_end_at when the last DATA frame of a response is handed to the
     * connection. A response without a body (HEAD, 204, length 0) leaves nothing to tell a
     * reset from a normal end once its headers went out, so only its earlier stages count. */
    int has_body = req->res.content_length != 0 &&
                   !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    int early =
        req->res.status == 0 || st->state != H2O_HTTP2_STREAM_STATE_END_STREAM ||
        st->_data.size != 0 ||
        (has_body &&
         (req->timestamps.response_end_at.tv_sec == 0 ||
          (req->res.content_length != SIZE_MAX && req->bytes_sent < req->res.content_length)));
    if (!early)
        return 0;
    const struct pt_config *cfg = &c->w->node->cfg;
    uint64_t now = uv_now(&c->w->loop);
    if (now - c->resets_since_ms >= 1000) {
        c->resets_since_ms = now;
        c->resets_second = 0;
    }
    c->resets_second++;
    c->resets_total++;
    if (c->resets_second > cfg->http2_max_resets ||
        c->resets_total > 100ull * cfg->http2_max_resets) {
        char who[64] = "";
        struct sockaddr_storage ss;
        socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
        if (sl != 0 && ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, who, sizeof(who));
        else if (sl != 0 && ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, who, sizeof(who));
        pt_log(PT_LOG_WARN, "HTTP/2 client resets too many streams: GOAWAY", "{s:s,s:I,s:i}",
               "peer", who, "reset_streams", (json_int_t)c->resets_total, "per_second_limit",
               (int)cfg->http2_max_resets);
        c->goaway = 1;
        h2_goaway(conn);
    }
    return 1;
}
