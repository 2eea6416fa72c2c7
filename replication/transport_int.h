/*
 * transport_int.h - what the pieces of the raft transport share (private to transport*.c).
 *
 * The transport (transport.h) is split by concept:
 *   transport.c            the struct raft_uv_transport glue: init, settings, close, and the
 *                          connection records (struct conn) every other piece works on
 *   transport_address.c    "host:port" syntax and socket-address text
 *   transport_stream.c     the stream seam: the only code that reads or writes a conn's socket
 *   transport_handshake.c  the HELLO / WELCOME wire format and the handshake state machine
 *   transport_connect.c    outgoing connections: name resolution, one address after another
 *   transport_listen.c     listeners, accept with its limits, hand-off by channel kind
 *   transport_tls.c        TLS 1.3 with mutual authentication: the SSL context and the pump
 *                          threads that run TLS off the raft loop
 *
 * Ownership and threads are those of transport.c's comment: everything here runs on the raft
 * loop thread; a struct conn belongs to its transport's conns list from transport_conn_link
 * until it is freed in transport_conn_maybe_free.
 */
#ifndef PT_TRANSPORT_INT_H
#define PT_TRANSPORT_INT_H

#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "transport.h"

/* Handshake wire format (see transport_handshake.c). */
#define MAGIC            "\x89PTRAFT\n"
#define MAGIC_LEN        8
#define VERSION          1
#define TYPE_HELLO       1
#define TYPE_WELCOME     2
#define FLAG_PEER        0x01
#define FLAG_BULK        0x02
#define FLAG_RELAY       0x04 /* alone: tunnel to the server id after the HELLO body */
#define FLAGS_KNOWN      (FLAG_PEER | FLAG_BULK | FLAG_RELAY)
#define RELAY_TARGET_LEN 8
#define HEADER_LEN       16
#define HELLO_FIXED      12
#define WELCOME_FIXED    10
#define HELLO_BODY_MAX   (HELLO_FIXED + PT_CLUSTER_ID_MAX + PT_CLUSTER_ADDRESS_MAX + RELAY_TARGET_LEN)
#define MSG_MAX          (HEADER_LEN + HELLO_BODY_MAX)
/* What a relay writes to the server it dials before the tunneled bytes (transport_relay.c):
 * magic, the origin's server id, the relay's server id. */
#define RELAYED_MAGIC "\x89PTRELY\n"
#define RELAYED_LEN   24
/* "[v6%zone]:port" of a socket address, for logs. */
#define REMOTE_MAX (INET6_ADDRSTRLEN + 32)

/* Which way a struct conn goes. */
enum { ROLE_IN = 1, ROLE_OUT };

struct transport;
struct transport_tls;
struct tls_pump;

/* One listening socket (transport_listen.c). */
struct listener {
    uv_tcp_t tcp;
    struct transport *t;
    bool stalled; /* libuv holds an accepted connection until we call uv_accept */
};

/* One connection being set up, in either direction; see transport.c's comment. Owned by its
 * transport (t->conns) until transport_conn_maybe_free frees it. */
struct conn {
    struct transport *t;
    struct conn *prev, *next; /* in t->conns */
    int role;
    raft_id peer_id;     /* OUT: the id asked for; IN: the id the HELLO announced */
    unsigned char flags; /* OUT: the HELLO's flags; IN: the flags of the HELLO received */
    char peer_address[PT_CLUSTER_ADDRESS_MAX + 1]; /* IN: from the HELLO */
    char remote[REMOTE_MAX];                       /* socket address, for logs */
    char source[INET6_ADDRSTRLEN];                 /* IN: the remote IP, "" if unknown */
    uint64_t seq;                                  /* IN: order of acceptance */

    /* Outbound only. */
    struct raft_uv_connect *req;          /* raft channel: NULL once its callback fired */
    pt_transport_peer_connect_cb peer_cb; /* peer channel: NULL once it fired */
    void *peer_arg;
    char host[PT_HOST_MAX + 1];
    char port[8];
    uv_getaddrinfo_t gai;
    bool gai_active;
    struct addrinfo *ai;      /* resolved list, owned (uv_freeaddrinfo) */
    struct addrinfo *ai_next; /* next address to try */
    unsigned attempts;
    uv_connect_t connect;
    bool welcomed;  /* a valid WELCOME arrived */
    bool raw;       /* a relay's leg to the server tunneled to: TCP only, no TLS nor HELLO */
    bool timed_out; /* an address attempt ran out of time (a silent path, not a refusal) */
    raft_id via;    /* tunneled through this server (0: direct); flags are then FLAG_RELAY */
    bool inner;     /* via: the relay welcomed us, the handshake with peer_id runs inside */
    unsigned char inner_flags; /* via: the HELLO flags of the tunneled connection */
    raft_id relay_target;      /* IN with FLAG_RELAY: the server id to tunnel to */

    uv_timer_t timer;
    bool timer_open;        /* initialised and its close callback not run yet */
    uint64_t attempt_start; /* outbound: loop time the current address attempt began */
    uv_tcp_t *tcp;          /* owned until handed off; freed in its close callback */
    bool tcp_closing;
    uv_write_t write;
    bool writing;
    struct tls_pump *pump; /* TLS on: the pump of this connection (a reference), else NULL */
    char peer_name[PT_CLUSTER_NAME_MAX + 1]; /* region of peer_id per the identity callback */
    bool done;                               /* outcome decided: only closing is left */
    int status;                              /* RAFT_* outcome reported to req */
    size_t out_len, in_want, in_got;
    unsigned char out[MSG_MAX];
    unsigned char in[MSG_MAX];
};

/* This node's way to one server (outbound): direct, or through a relay while the direct path
 * fails (transport_relay.c). */
struct relay_path {
    raft_id id;
    bool direct_failed;        /* the last direct attempt failed */
    uint64_t direct_failed_at; /* loop time of that failure */
    raft_id via;               /* the relay of the last tunneled connection that completed */
    unsigned next;             /* rotation over the candidate relays */
    bool probing;              /* a direct attempt checks whether the direct path is back */
};

struct transport {
    struct raft_uv_transport *super;
    uv_loop_t *loop;
    char cluster_id[PT_CLUSTER_ID_MAX + 1];
    size_t cluster_len;
    raft_id id;
    char address[PT_CLUSTER_ADDRESS_MAX + 1];      /* raft address; empty before init */
    char bind_address[PT_CLUSTER_ADDRESS_MAX + 1]; /* empty: listen on address */
    unsigned timeout_ms;
    raft_uv_accept_cb accept_cb;
    /* by channel kind; NULL: peer channels of that kind are refused */
    pt_transport_peer_accept_cb peer_accept_cb[PT_CHANNELS];
    void *peer_accept_arg[PT_CHANNELS];
    struct transport_tls *tls;            /* NULL: plain TCP */
    pt_transport_identity_cb identity_cb; /* NULL: any server id of the cluster is accepted */
    void *identity_arg;
    size_t nroutes; /* node-local address overrides, by server id */
    struct {
        raft_id id;
        char address[PT_CLUSTER_ADDRESS_MAX + 1];
    } routes[PT_TRANSPORT_MAX_ROUTES];
    pt_transport_member_cb member_cb; /* NULL: no relay served nor used */
    void *member_arg;
    struct relay_path paths[PT_TRANSPORT_MAX_ROUTES];
    unsigned n_paths;
    unsigned relay_handles; /* handles of relays being set up (transport_relay.c) */
    struct listener listeners[PT_TRANSPORT_MAX_ADDRESSES];
    unsigned n_listeners;      /* slots initialised */
    unsigned n_listeners_open; /* slots whose close callback has not run */
    uv_tcp_t spare;            /* accepts and drops a connection when memory runs out */
    bool spare_busy;
    struct conn *conns;
    unsigned n_inbound;
    uint64_t accept_seq;   /* inbound connections accepted so far */
    uint64_t raft_hold_ms; /* loop time before which inbound raft channels are refused */
    bool listening;
    bool closing;
    bool close_fired;
    raft_uv_transport_close_cb close_cb;
};

/* ---- transport.c: connection records and life cycle ---------------------------------------- */

/* Links c (its t and role set) into t->conns and opens its deadline timer. */
void transport_conn_link(struct conn *c);
/* Frees c once nothing it owns is still open; fires a failed connect's callback. */
void transport_conn_maybe_free(struct conn *c);
/* Closes c's deadline timer; c is freed after its close callback (see conn_maybe_free). */
void transport_conn_close_timer(struct conn *c);
/* Decides c's outcome (status: RAFT_* for an outbound req) and closes what it owns. */
void transport_conn_finish(struct conn *c, int status);
/* c's socket is closed: free c if its outcome is decided, else try the next address. */
void transport_conn_tcp_closed(struct conn *c);
/* Fires the close callback once t is closing and nothing it owns is open. */
void transport_maybe_closed(struct transport *t);

/* ---- transport_address.c ------------------------------------------------------------------ */

/* "ip:port" or "[ip]:port" of sa, or "?" when it has no printable form. */
void transport_sockaddr_text(const struct sockaddr *sa, char *buf, size_t size);

/* ---- transport_stream.c: the stream seam --------------------------------------------------- */

/* The peer is reachable: set socket options, then start the handshake (transport_conn_ready). */
void transport_seam_start(struct conn *c);
/* Writes c->out[0..out_len); transport_conn_wrote(c, status) follows unless this returns an
 * error. */
int transport_seam_write(struct conn *c);
/* Reads until c->in holds c->in_want bytes; transport_conn_read(c, status) follows unless this
 * returns an error. Never reads past in_want. */
int transport_seam_read(struct conn *c);
/* Gives up the stream: it is the caller's from now on (raft_uv closes it and raft_frees it). */
uv_stream_t *transport_seam_detach(struct conn *c);
/* Closes c->tcp; transport_conn_tcp_closed(c) runs once it is closed. */
void transport_seam_close(struct conn *c);
/* Puts a TLS pump (client, expecting c->peer_name) over c->tcp, whatever it is: the TCP socket,
 * or the plaintext end of the relay's pump (TLS in TLS). 0 or a libuv error. */
int transport_seam_start_tls(struct conn *c);

/* ---- transport_tls.c ---------------------------------------------------------------------- */

/* Loads cert, key and ca (borrowed paths) into t->tls (replacing one loaded before). Returns 0,
 * or PT_E_CONFIG / PT_E_NOMEM with a message in err (never key material). */
int transport_tls_load(struct transport *t, const char *cert, const char *key, const char *ca,
                       char *err, size_t errlen);
/* Drops t->tls, waiting (bounded) for the pumps of streams already closed to end. */
void transport_tls_free(struct transport *t);
/* Starts a pump thread running TLS over fd (a connected TCP socket, taken on success: the
 * pump closes it), as server or client; a client requires the server's certificate to name
 * expect_name (borrowed); through marks the inner TLS of a tunneled connection (counted in
 * portolan_peer_relayed_connections). On success *out is a reference for the caller
 * (transport_tls_pump_release) and *plain_fd the caller's end of the plaintext socketpair.
 * Returns 0 or PT_E_NOMEM (fd is still the caller's). */
int transport_tls_pump_start(struct transport *t, int fd, bool server, bool through,
                             const char *expect_name, struct tls_pump **out, int *plain_fd);
/* Whether the verified peer certificate's subjectAltName holds DNS:name. */
bool transport_tls_pump_names(struct tls_pump *p, const char *name);
/* The reason the pump's TLS failed, copied into buf, with the log level it deserves in *level,
 * or NULL when it did not fail. */
const char *transport_tls_pump_error(struct tls_pump *p, char *buf, size_t size, int *level);
/* Drops the caller's reference on p (NULL allowed). */
void transport_tls_pump_release(struct tls_pump *p);
/* Whether p's TLS handshake ran out of time. */
bool transport_tls_pump_timed_out(struct tls_pump *p);
/* Whether the connection of inbound pump p arrived through a relay (its RELAYED preamble),
 * with the origin's server id in *origin. */
bool transport_tls_pump_relayed(struct tls_pump *p, uint64_t *origin);
/* Lists p as a connection to or from peer_id (its stream handed off), for
 * transport_tls_end_peer; a no-op once the pump ended. */
void transport_tls_pump_list(struct tls_pump *p, uint64_t peer_id);
/* Ends every listed connection with peer_id (shutting its socket down: raft and the peer layer
 * read an error and dial again), or only_through those tunneled through a relay; returns how
 * many. */
unsigned transport_tls_end_peer(struct transport *t, uint64_t peer_id, bool only_through);
/* Whether a relay from source fits under the limits (PT_TRANSPORT_RELAY_*). */
bool transport_tls_relay_room(struct transport *t, raft_id source);
/* Starts a splice thread between fd_a (the origin's plaintext) and fd_x (TCP to the target),
 * first writing preamble (RELAYED_LEN bytes, copied) to fd_x, counted against the limits of
 * source. Takes both fds on success. 0, PT_E_TOO_LARGE (over a limit) or PT_E_NOMEM. */
int transport_tls_splice_start(struct transport *t, raft_id source, int fd_a, int fd_x,
                               const unsigned char *preamble);

/* ---- transport_handshake.c ----------------------------------------------------------------- */

/* ---- transport_wire.c: handshake messages as bytes ---- */

/* A HELLO body's fields; cluster points into the body parsed (borrowed from it). */
struct transport_hello {
    uint64_t id;
    const unsigned char *cluster;
    size_t cluster_len;
    char address[PT_CLUSTER_ADDRESS_MAX + 1];
};
/* Checks a 16-byte header p of a message of the given type (TYPE_HELLO or TYPE_WELCOME);
 * returns NULL with the body length and the flags, or the reason for refusing it, with the log
 * level it deserves (debug for a stranger: bad magic; warn for one of ours in another
 * dialect). */
const char *transport_check_header(const unsigned char *p, int type, size_t *body_len,
                                   unsigned char *flags, int *level);
/* Parses a HELLO body p of len bytes (borrowed) into *h; NULL, or the reason it is malformed
 * (lengths that do not add up to len, server id 0, an address that is not host:port). */
const char *transport_parse_hello(const unsigned char *p, size_t len, struct transport_hello *h);
/* Parses a WELCOME body p of len bytes (borrowed): NULL with the server id and the cluster id
 * (pointing into p), or the reason it is malformed. */
const char *transport_parse_welcome(const unsigned char *p, size_t len, uint64_t *id,
                                    const unsigned char **cluster, size_t *cluster_len);

/* The byte stream is up: outbound sends its HELLO, both sides wait for the other's message. */
void transport_conn_ready(struct conn *c);
void transport_conn_wrote(struct conn *c, int status);
void transport_conn_read(struct conn *c, int status);
/* Logs why a handshake failed and drops the connection (inbound) or the address (outbound). */
void transport_handshake_fail(struct conn *c, int level, const char *reason, int uv_err);
/* Logs at info the identity a TLS connection authenticated (nothing without TLS). */
void transport_log_authenticated(const struct conn *c);
/* c's deadline passed. */
void transport_timeout_cb(uv_timer_t *timer);

/* ---- transport_connect.c ------------------------------------------------------------------- */

/* Starts an outbound connection to server id at address (a route for id wins) with the given
 * HELLO flags; raw: a relay's leg (TCP only, never through a relay). Returns 0 with *out
 * linked and resolving (the caller sets its callback before returning to the loop), or a
 * RAFT_* code with the reason in errmsg (nothing left behind). */
int transport_out_start(struct transport *t, raft_id id, const char *address, unsigned char flags,
                        bool raw, struct conn **out, char *errmsg);
/* Implementation of raft_uv_transport->connect. */
int transport_connect(struct raft_uv_transport *super, struct raft_uv_connect *req, raft_id id,
                      const char *address, raft_uv_connect_cb cb);
/* Tries the next resolved address; finishes with RAFT_NOCONNECTION when none is left. */
void transport_attempt_next(struct conn *c);
/* The outbound handshake completed: hands the stream to the connect callback. */
void transport_out_succeed(struct conn *c);

/* ---- transport_relay.c: tunnels through another member ------------------------------------ */

/* Outbound to id: the relay to go through now (0: direct), with its dial address in
 * address[PT_CLUSTER_ADDRESS_MAX + 1]. */
raft_id transport_relay_choose(struct transport *t, raft_id id, char *address);
/* The outcome of an outbound attempt of c (status 0: it completed). */
void transport_relay_outcome(struct conn *c, int status);
/* Why a relay request from c (its HELLO checked) is refused, or NULL. */
const char *transport_relay_check(struct conn *c);
/* Serves a relay request whose WELCOME was sent: dials the target, then splices. stream is
 * transferred. */
void transport_relay_serve(struct transport *t, raft_id source, raft_id target,
                           uv_stream_t *stream);

/* ---- transport_listen.c -------------------------------------------------------------------- */

/* Implementation of raft_uv_transport->listen. */
int transport_listen(struct raft_uv_transport *super, raft_uv_accept_cb cb);
/* Starts closing every listener. */
void transport_close_listeners(struct transport *t);
/* Accepts what stalled listeners hold, as far as the inbound limit allows. */
void transport_resume_stalled(struct transport *t);
/* Whether an inbound connection with these flags has a taker: raft, or a peer-channel hook. */
bool transport_served(const struct transport *t, unsigned char flags);
/* Whether an inbound connection with these flags is a raft channel refused for now
 * (pt_transport_hold_raft). */
bool transport_raft_held(const struct transport *t, unsigned char flags);
/* The inbound handshake completed: hands the stream to raft or to the peer-channel hook. */
void transport_in_succeed(struct conn *c);

#endif
