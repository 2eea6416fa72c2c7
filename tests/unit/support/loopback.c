/*
 * loopback.c - free ports, raft_uv's part around a Raft transport, and a silent TCP server,
 * all on 127.0.0.1 (see loopback.h). Failures are cmocka assertions: these run inside tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"
#include "loopback.h"
#include "transport.h"

/* A socket bound to a port of 127.0.0.1 the kernel chose, its port into *port. */
static int bind_any(unsigned *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Whether a connection to 127.0.0.1:port reaches fd (bound there) itself: a port forward a
 * container left behind (a DNAT rule in the output hook) takes loopback connections to such
 * a port somewhere else, where they time out. fd listens afterwards. */
static bool reaches_itself(int fd, unsigned port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    assert_int_equal(listen(fd, 1), 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(c >= 0);
    bool ok = false;
    int a = -1;
    if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        /* a loopback connection that is not diverted is accepted at once */
        if (poll(&p, 1, 1000) == 1) {
            a = accept(fd, NULL, NULL);
            ok = a >= 0;
        }
    }
    /* reset, not closed: no side keeps the port in TIME_WAIT, which would refuse the bind
     * of the listener the caller puts there */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(c);
    if (a >= 0)
        close(a);
    return ok;
}

void pt_loopback_free_ports(unsigned *ports, int n)
{
    int fds[PT_LOOPBACK_PORTS_MAX];
    assert_true(n <= PT_LOOPBACK_PORTS_MAX);
    for (int i = 0; i < n; i++) {
        for (int tries = 0;; tries++) {
            assert_true(tries < 64);
            fds[i] = bind_any(&ports[i]);
            if (reaches_itself(fds[i], ports[i]))
                break;
            close(fds[i]); /* diverted: the kernel hands out another port next time */
        }
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

void pt_loopback_free_stream_cb(uv_handle_t *h)
{
    raft_free(h);
}

/* ---- A transport with raft_uv's part played here ----------------------------------------- */

/* Raft's side of an accepted connection (ownership passed here): counted, then closed and
 * freed. */
static void raft_accept_cb(struct raft_uv_transport *t, raft_id id, const char *address,
                           uv_stream_t *stream)
{
    struct pt_loopback_transport *lt = t->data;
    (void)id;
    (void)address;
    lt->raft_accepted++;
    uv_close((uv_handle_t *)stream, pt_loopback_free_stream_cb);
}

/* t.close's callback: counts it in the struct t is embedded in. */
static void transport_close_cb(struct raft_uv_transport *t)
{
    struct pt_loopback_transport *lt = t->data;
    lt->closed++;
}

void pt_loopback_transport_init(struct pt_loopback_transport *lt, uv_loop_t *loop,
                                const char *cluster, raft_id id, unsigned port)
{
    memset(lt, 0, sizeof(*lt));
    snprintf(lt->address, sizeof(lt->address), "127.0.0.1:%u", port);
    lt->t.data = lt;
    assert_int_equal(pt_transport_init(&lt->t, loop, cluster), 0);
    lt->open = true;
    assert_int_equal(lt->t.init(&lt->t, id, lt->address), 0);
}

void pt_loopback_transport_listen(struct pt_loopback_transport *lt)
{
    assert_int_equal(lt->t.listen(&lt->t, raft_accept_cb), 0);
}

void pt_loopback_transport_close(struct pt_loopback_transport *lt, uv_loop_t *loop, unsigned ms)
{
    lt->t.close(&lt->t, transport_close_cb);
    assert_true(PT_LOOP_RUN_UNTIL_GE(loop, &lt->closed, 1, ms));
    pt_transport_close(&lt->t);
    lt->open = false;
}

/* ---- A server that never says a word ----------------------------------------------------- */

/* Accepts a connection into the next client slot (on the server's loop) and leaves it idle. */
static void silent_conn_cb(uv_stream_t *server, int status)
{
    struct pt_loopback_silent *s = server->data;
    assert_int_equal(status, 0);
    assert_true(s->n < PT_LOOPBACK_SILENT_CLIENTS);
    uv_tcp_init(server->loop, &s->clients[s->n]);
    s->clients[s->n].data = s;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&s->clients[s->n]), 0);
    s->n++;
}

/* Counts one closed handle of the silent server (server or client) in the server's struct. */
static void silent_close_cb(uv_handle_t *h)
{
    struct pt_loopback_silent *s = h->data;
    s->closed++;
}

void pt_loopback_silent_start(struct pt_loopback_silent *s, uv_loop_t *loop, unsigned port)
{
    struct sockaddr_in sa;
    memset(s, 0, sizeof(*s));
    assert_int_equal(uv_ip4_addr("127.0.0.1", (int)port, &sa), 0);
    uv_tcp_init(loop, &s->server);
    s->server.data = s;
    assert_int_equal(uv_tcp_bind(&s->server, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->server, 16, silent_conn_cb), 0);
}

void pt_loopback_silent_stop(struct pt_loopback_silent *s)
{
    uv_loop_t *loop = s->server.loop;

    for (int i = 0; i < s->n; i++)
        uv_close((uv_handle_t *)&s->clients[i], silent_close_cb);
    uv_close((uv_handle_t *)&s->server, silent_close_cb);
    assert_true(PT_LOOP_RUN_UNTIL_GE(loop, &s->closed, s->n + 1, 2000));
}
