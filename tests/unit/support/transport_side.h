/*
 * transport_side.h - a Raft transport (replication/transport.h) driven by hand from a unit
 * test, the test playing raft_uv's part: init with an id and an address, listen with an accept
 * callback that keeps the streams it is handed, connect and wait for the outcome, close. Also
 * the cmocka fixture the transport tests share, and a check that bytes flow over two streams.
 *
 * Design: a side and an outcome are caller-owned structs embedding what the transport needs
 * (struct raft_uv_transport, struct raft_uv_connect); their callbacks count calls and note
 * what they got. pt_side_seq numbers callbacks across objects, so a test can check that a
 * connect's callback came before the close callback; the fixture resets it to 0.
 *
 * Invariants: every function here runs on the thread of the side's loop and outside that
 * loop's callbacks (those that wait run the loop themselves, see loop.h). Failures are cmocka
 * assertions. A side holds handles of its loop until pt_side_close returns.
 */
#ifndef PT_TEST_TRANSPORT_SIDE_H
#define PT_TEST_TRANSPORT_SIDE_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "bounds.h"

/* Orders callbacks across objects: each callback here stores ++pt_side_seq. */
extern int pt_side_seq;

/* One transport of the test, with what its accept callback received. Caller-owned; t.data
 * points at the side while it is open. */
struct pt_side {
    struct raft_uv_transport t;
    uv_loop_t *loop; /* borrowed, from pt_side_init */
    int n_accepted;
    raft_id accepted_id;
    char accepted_address[PT_CLUSTER_ADDRESS_MAX + 1];
    uv_stream_t *accepted[8]; /* owned by the test once accepted (see pt_side_close) */
    int closed;
    int close_seq;
};

/* One connect request and what its callback received. Caller-owned; req.data points at it. */
struct pt_outcome {
    struct raft_uv_connect req;
    int calls;
    int status;
    uv_stream_t *stream; /* owned by the test when status is 0 */
    int seq;
};

/* raft_uv_accept_cb: keeps the stream and the peer's identity in the side at t->data. */
void pt_side_accept_cb(struct raft_uv_transport *t, raft_id id, const char *address,
                       uv_stream_t *stream);

/* raft_uv_connect_cb: notes the outcome at req->data; a failure must come without a stream. */
void pt_side_connect_cb(struct raft_uv_connect *req, uv_stream_t *stream, int status);

/* The transport's close callback: counts it in the side at t->data. */
void pt_side_close_cb(struct raft_uv_transport *t);

/* Clears s (caller-owned, stays in place until pt_side_close) and sets it up as raft_uv does:
 * pt_transport_init on loop (borrowed, must outlive s) for cluster (borrowed), then t.init as
 * server id at address (borrowed). Does not listen. */
void pt_side_init(struct pt_side *s, uv_loop_t *loop, const char *cluster, raft_id id,
                  const char *address);

/* Listens on s's address with pt_side_accept_cb. */
void pt_side_listen(struct pt_side *s);

/* Closes the streams s accepted, then its transport (waiting for the close callback), and
 * releases it. */
void pt_side_close(struct pt_side *s);

/* Clears o (caller-owned), connects s to server id at address (borrowed) and runs the loop
 * until the callback has fired; the callback must not fire from inside connect. */
void pt_side_connect_and_wait(struct pt_side *s, struct pt_outcome *o, raft_id id,
                              const char *address);

/* Sends text (borrowed) over from and reads it back on to (both borrowed, of one loop); to's
 * data field is used while reading and left NULL. */
void pt_side_check_data_flows(uv_stream_t *from, uv_stream_t *to, const char *text);

/* cmocka fixtures of the transport tests: the test's state (cmocka's prestate) is the test's
 * uv_loop_t (caller-owned). Setup resets pt_side_seq and initialises the loop; teardown
 * completes pending closes and fails the test unless uv_loop_close returns 0, i.e. every
 * handle the test and the transport opened was closed. */
int pt_side_setup(void **state);
int pt_side_teardown(void **state);

#endif
