/*
 * handshake_probe.c - raw TCP clients on 127.0.0.1 that send fixed bytes and keep what comes
 * back, and the HELLO bytes they send (see handshake_probe.h). Failures are cmocka
 * assertions: these run inside tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "handshake_probe.h"
#include "loop.h"

static void probe_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct pt_probe *p = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)p->in + p->in_len, (unsigned)(sizeof(p->in) - p->in_len));
}

static void probe_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct pt_probe *p = s->data;
    (void)buf;
    if (nread > 0) {
        p->in_len += (size_t)nread;
    } else if (nread < 0) {
        p->ended = 1;
        p->ended_at = uv_now(s->loop);
        uv_read_stop(s);
    }
}

void pt_probe_write_cb(uv_write_t *w, int status)
{
    (void)w;
    (void)status; /* the server may drop us before everything is written */
}

static void probe_connect_cb(uv_connect_t *c, int status)
{
    struct pt_probe *p = c->data;
    assert_int_equal(status, 0);
    p->connected = 1;
    if (p->out_len > 0) {
        uv_buf_t b = uv_buf_init((char *)p->out, (unsigned)p->out_len);
        assert_int_equal(uv_write(&p->w, (uv_stream_t *)&p->tcp, &b, 1, pt_probe_write_cb), 0);
    }
    assert_int_equal(uv_read_start((uv_stream_t *)&p->tcp, probe_alloc_cb, probe_read_cb), 0);
}

void pt_probe_start(struct pt_probe *p, uv_loop_t *loop, unsigned port, const void *bytes,
                    size_t len)
{
    pt_probe_start_from(p, loop, "127.0.0.1", port, bytes, len);
}

void pt_probe_start_from(struct pt_probe *p, uv_loop_t *loop, const char *source, unsigned port,
                         const void *bytes, size_t len)
{
    struct sockaddr_in sa, src;
    memset(p, 0, sizeof(*p));
    assert_true(len <= sizeof(p->out));
    memcpy(p->out, bytes, len);
    p->out_len = len;
    assert_int_equal(uv_ip4_addr("127.0.0.1", (int)port, &sa), 0);
    assert_int_equal(uv_ip4_addr(source, 0, &src), 0);
    uv_tcp_init(loop, &p->tcp);
    assert_int_equal(uv_tcp_bind(&p->tcp, (struct sockaddr *)&src, 0), 0);
    p->tcp.data = p;
    p->conn.data = p;
    assert_int_equal(uv_tcp_connect(&p->conn, &p->tcp, (struct sockaddr *)&sa, probe_connect_cb),
                     0);
}

static void probe_close_cb(uv_handle_t *h)
{
    struct pt_probe *p = h->data;
    p->closed = 1;
}

void pt_probe_close(struct pt_probe *p)
{
    uv_close((uv_handle_t *)&p->tcp, probe_close_cb);
    assert_true(PT_LOOP_RUN_UNTIL_GE(p->tcp.loop, &p->closed, 1, 2000));
}

/* A handshake message as transport.c documents it. */
size_t pt_probe_hello(unsigned char *p, unsigned version, unsigned type, uint64_t id,
                      const char *cluster, const char *address, long body_len)
{
    size_t clen = strlen(cluster), alen = strlen(address);
    size_t natural = 12 + clen + alen;
    uint32_t blen = body_len >= 0 ? (uint32_t)body_len : (uint32_t)natural;

    memcpy(p, "\x89PTRAFT\n", 8);
    p[8] = (unsigned char)(version >> 8);
    p[9] = (unsigned char)version;
    p[10] = (unsigned char)type;
    p[11] = 0;
    for (int i = 0; i < 4; i++)
        p[12 + i] = (unsigned char)(blen >> (24 - 8 * i));
    for (int i = 0; i < 8; i++)
        p[16 + i] = (unsigned char)(id >> (56 - 8 * i));
    p[24] = (unsigned char)(clen >> 8);
    p[25] = (unsigned char)clen;
    p[26] = (unsigned char)(alen >> 8);
    p[27] = (unsigned char)alen;
    memcpy(p + 28, cluster, clen);
    memcpy(p + 28 + clen, address, alen);
    /* pad to the announced body length when it is longer than the content (bounded) */
    if (blen > natural && blen - natural < 512) {
        memset(p + 16 + natural, 'x', blen - natural);
        return 16 + blen;
    }
    return 16 + natural;
}
