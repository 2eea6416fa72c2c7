/*
 * peer_node.c - nodes of the peer RPC tests, their request handler, requests between them and
 * the fixture (see peer_node.h). Failures are cmocka assertions: these run inside tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "err.h"
#include "loop.h"
#include "peer_node.h"
#include "transport.h"

static uv_loop_t *loop; /* the running test's, from pt_peer_node_setup */
static int seq;         /* orders callbacks across objects */
static bool in_api;     /* set while the test is inside a pt_peers call */

/* ---- Nodes: a listening transport and its pt_peers ---------------------------------------- */

void pt_peer_node_reply(struct pt_peer_call *call, int status, const void *body, size_t len)
{
    in_api = true;
    pt_peer_reply(call, status, body, len);
    in_api = false;
}

static void on_request(void *arg, uint64_t from, uint32_t type, const void *body, size_t len,
                       struct pt_peer_call *call)
{
    struct pt_peer_node *n = arg;
    uint8_t out[64];

    assert_false(in_api);
    assert_non_null(call);
    n->requests++;
    n->last_from = from;
    n->last_type = type;
    switch (type) {
    case PT_PEER_NODE_PROPOSE: {
        Portolan__Propose *pr = portolan__propose__unpack(NULL, len, body);
        Portolan__ProposeResult res = PORTOLAN__PROPOSE_RESULT__INIT;
        assert_non_null(pr);
        if (pr->command.len == 4 && memcmp(pr->command.data, "hold", 4) == 0) {
            assert_true(n->n_held < PT_PEER_NODE_HELD_MAX);
            n->held[n->n_held++] = call;
        } else if (pr->command.len == 4 && memcmp(pr->command.data, "deny", 4) == 0) {
            pt_peer_node_reply(call, PT_E_DENIED, "no", 2);
        } else {
            res.index = ++n->next_index;
            pt_peer_node_reply(call, 0, out, portolan__propose_result__pack(&res, out));
        }
        portolan__propose__free_unpacked(pr, NULL);
        return;
    }
    case PT_PEER_NODE_READ_INDEX: {
        Portolan__ReadIndexResult res = PORTOLAN__READ_INDEX_RESULT__INIT;
        assert_int_equal(len, 0);
        res.index = n->next_index;
        pt_peer_node_reply(call, 0, out, portolan__read_index_result__pack(&res, out));
        return;
    }
    case PT_PEER_NODE_ECHO:
        pt_peer_node_reply(call, 0, body, len);
        return;
    default:
        pt_peer_node_reply(call, PT_E_UNSUPPORTED, NULL, 0);
    }
}

static void peers_close_cb(void *arg)
{
    struct pt_peer_node *n = arg;
    assert_false(in_api);
    n->peers_closed++;
    n->peers_close_seq = ++seq;
    n->peers = NULL;
}

void pt_peer_node_start(struct pt_peer_node *n, uint64_t id, unsigned port)
{
    memset(n, 0, sizeof(*n));
    n->id = id;
    pt_loopback_transport_init(&n->net, loop, PT_PEER_NODE_CLUSTER, id, port);
    assert_int_equal(pt_peers_init(&n->peers, loop, &n->net.t, PT_CHANNEL_PEER, id, on_request, n),
                     0);
    pt_loopback_transport_listen(&n->net);
}

void pt_peer_node_close_peers(struct pt_peer_node *n)
{
    in_api = true;
    pt_peers_close(n->peers, peers_close_cb, n);
    in_api = false;
    assert_int_equal(n->peers_closed, 0);
    assert_true(PT_LOOP_RUN_UNTIL_GE(loop, &n->peers_closed, 1, 5000));
    assert_int_equal(n->peers_closed, 1);
}

/* Answers what the handler still holds (dropped if the channel is gone), closes the peers
 * (unless already closed) and the transport, and releases the transport. */
void pt_peer_node_stop(struct pt_peer_node *n)
{
    for (int i = 0; i < n->n_held; i++)
        pt_peer_node_reply(n->held[i], 0, NULL, 0);
    n->n_held = 0;
    if (n->peers != NULL)
        pt_peer_node_close_peers(n);
    pt_loopback_transport_close(&n->net, loop, 5000);
}

void pt_peer_node_link(struct pt_peer_node *a, struct pt_peer_node *b)
{
    assert_int_equal(pt_peers_set_address(a->peers, b->id, b->net.address), 0);
    assert_int_equal(pt_peers_set_address(b->peers, a->id, a->net.address), 0);
}

/* ---- Requests ----------------------------------------------------------------------------- */

static void answer_cb(void *arg, int status, const void *body, size_t len)
{
    struct pt_peer_answer *a = arg;
    assert_false(in_api); /* never from inside an API call */
    a->calls++;
    a->status = status;
    a->seq = ++seq;
    a->at = uv_now(loop);
    if (len == 0) {
        assert_null(body);
    } else {
        assert_non_null(body);
        free(a->body);
        a->body = malloc(len);
        assert_non_null(a->body);
        memcpy(a->body, body, len);
    }
    a->len = len;
}

void pt_peer_answers_free(struct pt_peer_answer *a, int n)
{
    for (int i = 0; i < n; i++) {
        free(a[i].body);
        a[i].body = NULL;
    }
}

int pt_peer_node_request(struct pt_peer_node *from, uint64_t to, uint32_t type, const void *body,
                         size_t len, unsigned timeout_ms, struct pt_peer_answer *a)
{
    int rv;
    in_api = true;
    rv = pt_peers_request(from->peers, to, type, body, len, timeout_ms, answer_cb, a);
    in_api = false;
    if (rv == 0)
        assert_int_equal(a->calls, 0);
    return rv;
}

void pt_peer_node_propose(struct pt_peer_node *from, uint64_t to, const char *command,
                          unsigned timeout_ms, struct pt_peer_answer *a)
{
    Portolan__Propose pr = PORTOLAN__PROPOSE__INIT;
    uint8_t buf[128];
    size_t n;

    pr.command.data = (uint8_t *)command;
    pr.command.len = strlen(command);
    n = portolan__propose__pack(&pr, buf);
    assert_int_equal(pt_peer_node_request(from, to, PT_PEER_NODE_PROPOSE, buf, n, timeout_ms, a),
                     0);
}

uint64_t pt_peer_answer_index(const struct pt_peer_answer *a)
{
    Portolan__ProposeResult *res = portolan__propose_result__unpack(NULL, a->len, a->body);
    uint64_t index;
    assert_non_null(res);
    assert_int_equal(res->status, 0);
    index = res->index;
    portolan__propose_result__free_unpacked(res, NULL);
    return index;
}

/* ---- Fixture ------------------------------------------------------------------------------ */

int pt_peer_node_setup(void **state)
{
    loop = *state;
    seq = 0;
    in_api = false;
    return uv_loop_init(loop);
}

int pt_peer_node_teardown(void **state)
{
    (void)state;
    uv_run(loop, UV_RUN_NOWAIT);
    /* 0 only if every handle the test, the transports and the peers opened was closed */
    assert_int_equal(uv_loop_close(loop), 0);
    loop = NULL;
    return 0;
}
