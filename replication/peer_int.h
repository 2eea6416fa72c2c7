/*
 * peer_int.h - what the pieces of the peer RPC service share (private to peer*.c).
 *
 * The service (peer.h) is split by concept:
 *   peer.c          the peer table and each peer's outbound channel (connect, backoff),
 *                   inbound channels from the transport, life cycle, pt_peers_init/_close
 *   peer_channel.c  one open channel: frame encoding, writing with its limits, reading and
 *                   splitting frames, opening and closing
 *   peer_rpc.c      the request/response machinery: outgoing calls (queue, in flight,
 *                   timeouts), incoming calls and their answers
 *   peer_ping.c     pings: RTT measurement and the idle limit
 *
 * Ownership and threads are those of peer.c's comment: everything runs on the loop thread given
 * to pt_peers_init, and every structure below belongs to its struct pt_peers.
 */
#ifndef PT_PEER_INT_H
#define PT_PEER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "peer.h"
#include "peer.pb-c.h"
#include "transport.h"

/* Bytes of a frame's length prefix. */
#define PREFIX 4
/* Least room a channel's input buffer grows by for a read. */
#define READ_CHUNK   (64 * 1024)
#define HASH_BUCKETS 1024
#define TYPE_INVALID PORTOLAN__PEER_TYPE__PEER_INVALID
#define TYPE_PING    PORTOLAN__PEER_TYPE__PEER_PING

/* States of a peer's outbound channel, and of an outgoing call. */
enum { PEER_IDLE, PEER_CONNECTING, PEER_OPEN, PEER_BACKOFF };
enum { CALL_NEW, CALL_QUEUED, CALL_SENT, CALL_FAILING, CALL_DONE };

struct conn;
struct peer;

/* One frame being written: the length prefix and the encoded PeerFrame. */
struct outbuf {
    uv_write_t req;
    struct conn *conn;
    size_t len; /* bytes in data */
    unsigned char data[];
};

/* One outgoing request; see peer_rpc.c's comment. */
struct call {
    struct pt_peers *p;
    struct call *prev, *next; /* peer->queue or conn->sent */
    struct call *hnext;       /* hash chain while SENT */
    struct peer *peer;        /* NULL when sent to no known peer */
    struct conn *conn;        /* SENT: the channel it was written to */
    uint64_t id;
    int state;
    int status;           /* FAILING: the status to report */
    size_t size;          /* bytes of the encoded frame */
    struct outbuf *frame; /* owned until written */
    pt_peer_reply_cb cb;
    void *arg;
    uv_timer_t timer;
};

/* A FIFO of calls: a peer's queue or a channel's sent list. */
struct call_list {
    struct call *head, *tail;
    unsigned n;
    size_t bytes;
};

/* One incoming request; see peer_rpc.c's comment. */
struct pt_peer_call {
    struct conn *conn; /* NULL once the channel closed: the answer is dropped */
    struct pt_peer_call *prev, *next;
    uint64_t id;
    uint32_t type;
};

/* One open channel; see peer_channel.c's comment. */
struct conn {
    struct pt_peers *p;
    struct conn *prev, *next; /* p->conns, oldest first */
    struct peer *peer;
    bool outbound;
    bool closing;
    uv_stream_t *stream;
    unsigned char *in; /* bytes received and not consumed: in[0..in_len) */
    size_t in_len, in_cap;
    size_t charged;   /* of in_cap, against PT_PEERS_PARTIAL_BUDGET */
    bool over_budget; /* the next frame did not fit in the budget */
    struct call_list sent;
    struct pt_peer_call *incoming;
    unsigned n_incoming;
    uint64_t last_rx; /* loop time of the last byte received, ms */
};

/* A connection attempt in the transport; peer NULL once orphaned by pt_peers_close. */
struct attempt {
    struct peer *peer;
};

/* One server id; see peer.c's comment. */
struct peer {
    struct pt_peers *p;
    struct peer *next;
    uint64_t id;
    char address[PT_CLUSTER_ADDRESS_MAX + 1]; /* empty: not known */
    int state;
    bool used;               /* asked something once: keep a channel open */
    struct conn *out;        /* OPEN: the outbound channel */
    struct attempt *attempt; /* CONNECTING */
    struct call_list queue;
    unsigned backoff_ms; /* the next backoff */
    uv_timer_t backoff;
    unsigned n_open; /* open channels to this peer, both directions */
    int64_t rtt_us;  /* -1: unknown */
};

/* The service (peer.h); owns every peer, channel and call above. */
struct pt_peers {
    uv_loop_t *loop;
    struct raft_uv_transport *t;
    int channel; /* PT_CHANNEL_* this service runs on */
    uint64_t self_id;
    pt_peer_request_cb on_request;
    void *arg;
    struct peer *peers;
    unsigned n_peers;
    struct conn *conns, *conns_tail;
    struct call *hash[HASH_BUCKETS];
    uint64_t next_call_id;
    uv_timer_t tick;
    uint64_t jitter;    /* state of the backoff jitter (xorshift64, never 0) */
    unsigned n_handles; /* handles open, close callbacks pending included */
    bool closing;
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* ---- peer.c: peers and life cycle ---------------------------------------------------------- */

/* The peer of id, or NULL. */
struct peer *peer_find(struct pt_peers *p, uint64_t id);
/* Starts the outbound channel of an IDLE peer; a failure to start backs off at once. */
void peer_connect(struct peer *peer);
/* The outbound channel failed or dropped: fail what waits for it and back off. */
void peer_down(struct peer *peer);
/* One handle of p finished closing; frees p once closing and none is left. */
void peer_handle_closed(struct pt_peers *p);
/* Close callback of a stream the service does not keep: raft_frees it. */
void peer_free_stream_cb(uv_handle_t *h);

/* ---- peer_channel.c: channels -------------------------------------------------------------- */

/* Encodes one frame behind its length prefix (returned owned, free()); NULL when out of memory
 * or longer than PT_PEERS_FRAME_MAX. */
struct outbuf *peer_encode_frame(uint64_t call_id, uint32_t type, bool response, int status,
                                 const void *body, size_t len);
/* Writes ob (transferred) to c; on failure closes c and returns an error. */
int peer_conn_write(struct conn *c, struct outbuf *ob);
/* Encodes and writes one frame to c; on failure closes c and returns an error. */
int peer_send_frame(struct conn *c, uint64_t call_id, uint32_t type, bool response, int status,
                    const void *body, size_t len);
/* Takes over stream (transferred) as a channel to peer; NULL (stream closed) on failure. */
struct conn *peer_conn_open(struct pt_peers *p, struct peer *peer, uv_stream_t *stream,
                            bool outbound);
/* Closes c: its calls fail, its incoming calls are orphaned, an outbound peer backs off. */
void peer_conn_close(struct conn *c, int level, const char *reason);

/* ---- peer_rpc.c: calls --------------------------------------------------------------------- */

/* Writes queued requests of peer on its outbound channel, as far as the limits allow. */
void peer_pump(struct peer *peer);
/* Detaches c and reports status from its timer, on a later loop iteration. */
void peer_call_fail_later(struct call *c, int status);
/* Fails every request waiting in peer's queue (later, from their timers). */
void peer_fail_queue(struct peer *peer);
/* A request frame (f borrowed) arrived on c. */
void peer_handle_request(struct conn *c, const Portolan__PeerFrame *f);
/* A response frame (f borrowed) arrived on c. */
void peer_handle_response(struct conn *c, const Portolan__PeerFrame *f);

/* ---- peer_ping.c: pings -------------------------------------------------------------------- */

/* Sends a Ping carrying this node's monotonic clock on c. */
void peer_send_ping(struct conn *c);
/* Answers the Ping in f (borrowed) on c with a Pong that echoes its clock. */
void peer_answer_ping(struct conn *c, const Portolan__PeerFrame *f);
/* Takes the RTT sample of the Pong in f (borrowed) into c's peer. */
void peer_take_pong(struct conn *c, const Portolan__PeerFrame *f);
/* Every PT_PEERS_PING_MS: pings every channel, closes those silent for PT_PEERS_IDLE_MS. */
void peer_tick_cb(uv_timer_t *timer);

#endif
