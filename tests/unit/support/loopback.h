/*
 * loopback.h - network pieces on 127.0.0.1 for the unit tests of the replication code:
 * free ports, a Raft transport (replication/transport.h) set up the way raft_uv sets it up,
 * and a TCP server that accepts and never says a word.
 *
 * Design: the tests exercise the real transport, peer and blob sync code over real sockets
 * on one libuv loop, without raft itself. pt_loopback_transport stands in for the part of
 * raft_uv they need: pt_transport_init, the transport's init with its id and address, and
 * (as raft_start does) listen with an accept callback; raft's side of an accepted connection
 * is played by a callback that counts the connection and closes it. Everything here fails
 * the running cmocka test on an unexpected error rather than returning one.
 *
 * Invariants: every function runs on the thread of the loop it is given, outside that loop's
 * callbacks (those that wait run the loop themselves, see loop.h). A struct set up here holds
 * handles of that loop until its stop or close function returns; the test's loop must not be
 * closed before.
 */
#ifndef PT_TEST_LOOPBACK_H
#define PT_TEST_LOOPBACK_H

#include <stdbool.h>
#include <stddef.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

/* Most ports one pt_loopback_free_ports call chooses. */
#define PT_LOOPBACK_PORTS_MAX 8

/* Writes n (1..PT_LOOPBACK_PORTS_MAX) distinct TCP ports on 127.0.0.1 that were free when
 * chosen into ports (borrowed, n entries): all n sockets stay bound while choosing, then are
 * closed, so the ports are free again on return. A port whose loopback connections do not
 * reach its own listener (a port forward a container left in nftables) is never chosen. */
void pt_loopback_free_ports(unsigned *ports, int n);

/* A uv_close callback for a stream the transport handed over: the stream was allocated with
 * raft_malloc and its ownership passed to the test, which gives it back here. */
void pt_loopback_free_stream_cb(uv_handle_t *h);

/*
 * A Raft transport of this process at "127.0.0.1:PORT", embedded in the test's own structs.
 * t.data points at this struct (the callbacks in loopback.c find it there): tests leave it.
 */
struct pt_loopback_transport {
    struct raft_uv_transport t;
    char address[64];  /* "127.0.0.1:PORT" */
    int raft_accepted; /* raft connections accepted since listen (each closed at once) */
    int closed;        /* close callbacks of t */
    bool open;         /* pt_transport_init succeeded and pt_loopback_transport_close is due */
};

/* Sets lt up (caller-owned; cleared first; must stay at the same address until
 * pt_loopback_transport_close) as raft_uv does before raft_start: pt_transport_init on loop
 * (borrowed, must outlive lt) for cluster (borrowed, copied), then t.init as server id at
 * 127.0.0.1:port. It does not listen yet, so that a test can attach services first. */
void pt_loopback_transport_init(struct pt_loopback_transport *lt, uv_loop_t *loop,
                                const char *cluster, raft_id id, unsigned port);

/* Listens on lt's address as raft_start would; every raft connection accepted increments
 * lt->raft_accepted and is closed and freed at once. */
void pt_loopback_transport_listen(struct pt_loopback_transport *lt);

/* Closes lt's transport (t.close), runs loop (borrowed, the one lt was set up on) until the
 * close callback has fired, for ms at most, then releases it (pt_transport_close). */
void pt_loopback_transport_close(struct pt_loopback_transport *lt, uv_loop_t *loop, unsigned ms);

/* Connections one silent server keeps. */
#define PT_LOOPBACK_SILENT_CLIENTS 4

/* A TCP server that accepts up to PT_LOOPBACK_SILENT_CLIENTS connections and never reads or
 * writes a byte: a peer that never answers a handshake. Caller-owned, embedded. */
struct pt_loopback_silent {
    uv_tcp_t server;
    uv_tcp_t clients[PT_LOOPBACK_SILENT_CLIENTS];
    int n;      /* connections accepted */
    int closed; /* handles closed by pt_loopback_silent_stop */
};

/* Clears s (caller-owned, must stay in place until pt_loopback_silent_stop) and listens on
 * 127.0.0.1:port with loop (borrowed). */
void pt_loopback_silent_start(struct pt_loopback_silent *s, uv_loop_t *loop, unsigned port);

/* Closes every connection s accepted and its server, and runs s's loop until all are closed
 * (2 s at most). */
void pt_loopback_silent_stop(struct pt_loopback_silent *s);

#endif
