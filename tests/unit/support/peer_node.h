/*
 * peer_node.h - nodes for the tests of the peer RPC service (replication/peer.c): each node is
 * a transport listening on 127.0.0.1 as raft_start leaves it (raft connections are counted and
 * dropped, see loopback.h) plus a pt_peers whose request handler answers Propose and
 * ReadIndex, echoes type PT_PEER_NODE_ECHO, holds "hold" proposals for the test to answer
 * later, refuses "deny" proposals with PT_E_DENIED and unknown types with PT_E_UNSUPPORTED;
 * and requests from one node to another whose answers are kept for the test to check.
 *
 * Design: one test at a time runs every node on the loop its fixture was given (cmocka's
 * prestate, the test's uv_loop_t), which this module remembers until teardown. Callbacks
 * number themselves in one sequence across objects (answer seq, peers_close_seq), reset by the
 * fixture, so a test can check their order; every callback asserts that it does not run from
 * inside a pt_peers call made through this module.
 *
 * Invariants: functions run on the loop's thread, outside its callbacks (those that wait run
 * the loop, see loop.h). Failures are cmocka assertions. A node holds handles of the loop from
 * pt_peer_node_start until pt_peer_node_stop returns.
 */
#ifndef PT_TEST_PEER_NODE_H
#define PT_TEST_PEER_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "loopback.h"
#include "peer.h"
#include "peer.pb-c.h"

#define PT_PEER_NODE_CLUSTER    "peer-test"
#define PT_PEER_NODE_PROPOSE    PORTOLAN__PEER_TYPE__PEER_PROPOSE
#define PT_PEER_NODE_READ_INDEX PORTOLAN__PEER_TYPE__PEER_READ_INDEX
#define PT_PEER_NODE_ECHO       100 /* not in the enum: peer.c passes any type through */
#define PT_PEER_NODE_HELD_MAX   512

/* A node; caller-owned, stays in place from pt_peer_node_start to pt_peer_node_stop. */
struct pt_peer_node {
    struct pt_loopback_transport net; /* counts raft connections, which it drops */
    struct pt_peers *peers;           /* NULL once closed */
    uint64_t id;
    int peers_closed;
    int peers_close_seq;
    /* request handler */
    int requests;
    uint64_t last_from;
    uint32_t last_type;
    uint64_t next_index;
    struct pt_peer_call *held[PT_PEER_NODE_HELD_MAX]; /* held calls, for the test to answer */
    int n_held;
};

/* Clears n and starts it as server id: its transport listening on 127.0.0.1:port, and its
 * pt_peers on PT_CHANNEL_PEER with the handler above. */
void pt_peer_node_start(struct pt_peer_node *n, uint64_t id, unsigned port);

/* Closes n's pt_peers and waits for its close callback, which must come once, after the call
 * returned. */
void pt_peer_node_close_peers(struct pt_peer_node *n);

/* Answers what the handler still holds (dropped if the channel is gone), closes the peers
 * (unless already closed) and the transport, and releases the transport. */
void pt_peer_node_stop(struct pt_peer_node *n);

/* Tells a and b each other's address. */
void pt_peer_node_link(struct pt_peer_node *a, struct pt_peer_node *b);

/* pt_peer_reply(call, status, body, len), marked as a call into pt_peers. */
void pt_peer_node_reply(struct pt_peer_call *call, int status, const void *body, size_t len);

/* What a request got back. Caller-owned; clear it before the request. */
struct pt_peer_answer {
    int calls;
    int status;
    int seq;
    uint64_t at; /* the loop's time of the answer */
    size_t len;
    unsigned char *body; /* copy, freed by pt_peer_answers_free */
};

/* Frees the bodies of the n answers at a (kept: the structs themselves). */
void pt_peer_answers_free(struct pt_peer_answer *a, int n);

/* pt_peers_request from node from to server to, answered into a (borrowed until its
 * callback); body borrowed for the call. Returns what pt_peers_request returned; on success
 * the callback has not fired yet. */
int pt_peer_node_request(struct pt_peer_node *from, uint64_t to, uint32_t type, const void *body,
                         size_t len, unsigned timeout_ms, struct pt_peer_answer *a);

/* A Propose of command (borrowed) from from to server to; the request must be accepted. */
void pt_peer_node_propose(struct pt_peer_node *from, uint64_t to, const char *command,
                          unsigned timeout_ms, struct pt_peer_answer *a);

/* The index of the ProposeResult in a's body, whose status must be 0. */
uint64_t pt_peer_answer_index(const struct pt_peer_answer *a);

/* cmocka fixtures: *state is the test's uv_loop_t (caller-owned). Setup resets the sequence
 * and initialises the loop; teardown completes pending closes and fails the test unless
 * uv_loop_close returns 0, i.e. every handle the test, the transports and the peers opened
 * was closed. */
int pt_peer_node_setup(void **state);
int pt_peer_node_teardown(void **state);

#endif
