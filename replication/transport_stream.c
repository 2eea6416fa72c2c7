/*
 * transport_stream.c - the stream seam of the raft transport: plain TCP.
 *
 * Role: the only code that touches a connection's socket while the handshake runs. The
 * handshake (transport_handshake.c) never calls libuv stream functions itself; it goes through
 * transport_seam_start / _write / _read / _detach / _close, and is called back through
 * transport_conn_ready / _wrote / _read and transport_conn_tcp_closed.
 *
 * Design: plain TCP implements each step with one libuv call. TLS belongs here:
 * transport_seam_start runs the TLS handshake and then calls transport_conn_ready, reads and
 * writes pass through the TLS engine, and transport_seam_detach hands raft the plaintext end
 * of a socketpair that the engine pumps, so raft keeps a uv_stream_t.
 *
 * Invariants: reads ask libuv for exactly the bytes still missing from the current message
 * (c->in_want), so no byte of what follows the handshake is ever consumed here; c->tcp is
 * raft_free'd in its close callback, never before. Threads: the raft loop thread.
 */
#include "transport.h"

#include <assert.h>
#include <stddef.h>

#include "transport_int.h"

#define KEEPALIVE_S 30

static void seam_tcp_close_cb(uv_handle_t *handle)
{
    struct conn *c = handle->data;
    raft_free(handle);
    c->tcp = NULL;
    c->tcp_closing = false;
    c->writing = false;
    transport_conn_tcp_closed(c);
}

/* Closes c->tcp; transport_conn_tcp_closed(c) runs once it is closed. */
void transport_seam_close(struct conn *c)
{
    if (c->tcp == NULL || c->tcp_closing)
        return;
    c->tcp_closing = true;
    uv_close((uv_handle_t *)c->tcp, seam_tcp_close_cb);
}

/* The peer is reachable: set socket options, then start the handshake. */
void transport_seam_start(struct conn *c)
{
    /* Raft messages are small and latency-bound; keepalive notices a peer that vanished
     * without closing an otherwise idle inbound stream. Failures only cost performance. */
    (void)uv_tcp_nodelay(c->tcp, 1);
    (void)uv_tcp_keepalive(c->tcp, 1, KEEPALIVE_S);
    transport_conn_ready(c);
}

static void seam_write_cb(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    c->writing = false;
    transport_conn_wrote(c, status);
}

/* Writes c->out[0..out_len); transport_conn_wrote(c, status) follows unless this returns an error.
 */
int transport_seam_write(struct conn *c)
{
    uv_buf_t buf = uv_buf_init((char *)c->out, (unsigned)c->out_len);
    int rv;
    c->write.data = c;
    rv = uv_write(&c->write, (uv_stream_t *)c->tcp, &buf, 1, seam_write_cb);
    if (rv == 0)
        c->writing = true;
    return rv;
}

static void seam_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = handle->data;
    (void)suggested;
    assert(c->in_got < c->in_want && c->in_want <= sizeof(c->in));
    *buf = uv_buf_init((char *)c->in + c->in_got, (unsigned)(c->in_want - c->in_got));
}

static void seam_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        uv_read_stop(stream);
        transport_conn_read(c, (int)nread);
        return;
    }
    c->in_got += (size_t)nread;
    if (c->in_got < c->in_want)
        return;
    uv_read_stop(stream);
    transport_conn_read(c, 0);
}

/* Reads until c->in holds c->in_want bytes; transport_conn_read(c, status) follows unless this
 * returns an error. Never reads past in_want. */
int transport_seam_read(struct conn *c)
{
    return uv_read_start((uv_stream_t *)c->tcp, seam_alloc_cb, seam_read_cb);
}

/* Gives up the stream: it is raft's from now on (raft_uv closes it and raft_frees it). */
uv_stream_t *transport_seam_detach(struct conn *c)
{
    uv_stream_t *stream = (uv_stream_t *)c->tcp;
    uv_read_stop(stream);
    stream->data = NULL;
    c->tcp = NULL;
    return stream;
}
