/*
 * transport_stream.c - the stream seam of the raft transport: plain TCP, or TLS through a pump.
 *
 * Role: the only code that touches a connection's socket while the handshake runs. The
 * handshake (transport_handshake.c) never calls libuv stream functions itself; it goes through
 * transport_seam_start / _write / _read / _detach / _close, and is called back through
 * transport_conn_ready / _wrote / _read and transport_conn_tcp_closed.
 *
 * Design: plain TCP implements each step with one libuv call. With TLS (t->tls set),
 * transport_seam_start hands a duplicate of the TCP socket to a pump thread
 * (transport_tls.c), closes the libuv handle of the TCP socket, and puts in its place
 * (c->tcp) a uv_tcp_t opened on the plaintext end of the pump's socketpair; everything after
 * that, the HELLO / WELCOME handshake and the stream handed to raft or the peer layer, is the
 * same code as plain TCP. An outbound connection first asks the identity callback for the
 * region name of the server dialed, which the server's certificate must carry.
 *
 * Invariants: reads ask libuv for exactly the bytes still missing from the current message
 * (c->in_want), so no byte of what follows the handshake is ever consumed here; c->tcp is
 * raft_free'd in its close callback, never before. Threads: the raft loop thread.
 */
#include "transport.h"

#include <assert.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <unistd.h>

#include "log.h"
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

static void seam_raw_close_cb(uv_handle_t *handle)
{
    raft_free(handle);
}

/* Puts a TLS pump between c->tcp and the handshake: see the file comment. Returns 0, or a
 * libuv error (c->tcp is then unchanged). Also used a second time on a connection tunneled
 * through a relay: then c->tcp is the plaintext end of the pump to the relay, and the new pump
 * runs the TLS to the server tunneled to inside it. */
int transport_seam_start_tls(struct conn *c)
{
    struct transport *t = c->t;
    uv_os_fd_t fd;
    uv_tcp_t *plain;
    int dup_fd, plain_fd, rv;

    transport_tls_pump_release(c->pump); /* an earlier address's */
    c->pump = NULL;
    rv = uv_fileno((uv_handle_t *)c->tcp, &fd);
    if (rv != 0)
        return rv;
    plain = raft_malloc(sizeof(*plain));
    if (plain == NULL)
        return UV_ENOMEM;
    dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) {
        raft_free(plain);
        return UV_EMFILE;
    }
    if (transport_tls_pump_start(t, dup_fd, c->role == ROLE_IN, c->inner, c->peer_name, &c->pump,
                                 &plain_fd) != 0) {
        close(dup_fd);
        raft_free(plain);
        return UV_ENOMEM;
    }
    uv_tcp_init(t->loop, plain);
    rv = uv_tcp_open(plain, plain_fd);
    if (rv != 0) {
        close(plain_fd); /* the pump sees its peer gone and ends */
        uv_close((uv_handle_t *)plain, seam_raw_close_cb);
        return rv;
    }
    plain->data = c;
    c->tcp->data = NULL;
    uv_close((uv_handle_t *)c->tcp, seam_raw_close_cb); /* the pump holds the socket now */
    c->tcp = plain;
    return 0;
}

/* The peer is reachable: set socket options, then start the handshake. */
void transport_seam_start(struct conn *c)
{
    struct transport *t = c->t;
    int rv;

    /* Raft messages are small and latency-bound; keepalive notices a peer that vanished
     * without closing an otherwise idle inbound stream. Failures only cost performance. */
    (void)uv_tcp_nodelay(c->tcp, 1);
    (void)uv_tcp_keepalive(c->tcp, 1, KEEPALIVE_S);
    /* A link that went silent (packets dropped, no reset) ends the connection once data sent
     * stays unacknowledged this long, instead of after the kernel's minutes of retransmissions:
     * raft then dials again, through a relay if the direct path is still down. */
    uv_os_fd_t fd;
    unsigned silent = PT_TRANSPORT_SILENT_MS;
    if (uv_fileno((uv_handle_t *)c->tcp, &fd) == 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &silent, sizeof(silent));
    if (t->tls != NULL) {
        if (c->role == ROLE_OUT &&
            (t->identity_cb == NULL ||
             t->identity_cb(t->identity_arg, c->via != 0 ? c->via : c->peer_id, c->peer_name) <
                 0)) {
            transport_handshake_fail(c, PT_LOG_WARN, "no region known for this server id", 0);
            return;
        }
        rv = transport_seam_start_tls(c);
        if (rv != 0) {
            transport_handshake_fail(c, PT_LOG_ERROR, "tls setup", rv);
            return;
        }
    }
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
