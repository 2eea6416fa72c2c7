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
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"
#include "loopback.h"
#include "transport.h"

void pt_loopback_free_ports(unsigned *ports, int n)
{
    int fds[PT_LOOPBACK_PORTS_MAX];
    assert_true(n <= PT_LOOPBACK_PORTS_MAX);
    for (int i = 0; i < n; i++) {
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fds[i] >= 0);
        assert_int_equal(bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fds[i], (struct sockaddr *)&sa, &len), 0);
        ports[i] = ntohs(sa.sin_port);
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
