/*
 * transport.h - the Raft network transport: a `struct raft_uv_transport` (raft/uv.h of
 * canonical/raft 0.15) that resolves host names and authenticates peers by cluster.
 *
 * raft_uv_tcp, the transport bundled with raft, accepts IPv4 literals only. Portolan's peers
 * are named ("node-1.portolan.svc:7000", "[2001:db8::1]:7000", "10.0.0.5:7000"), and a
 * Kubernetes pod keeps its name while its IP changes, so this transport:
 *   - listens on every address its own "host:port" (or the bind address) resolves to,
 *     resolving once when raft starts listening;
 *   - resolves the peer's name again at every connection attempt (uv_getaddrinfo on the raft
 *     loop) and tries each returned address in order, so a peer that moved is found again;
 *   - opens every connection with a small handshake (protocol magic, version, cluster id,
 *     server id, address; see the top of transport_handshake.c) in both directions: a peer
 *     of another cluster, the wrong server at a reused IP or a random client is refused
 *     before raft sees a byte;
 *   - bounds the handshake in size, time and number of concurrent inbound handshakes;
 *   - carries a second kind of connection on the same port: a *peer channel* (HELLO flag
 *     PEER) is opened with pt_transport_connect_peer and handed, on the accepting side, to the
 *     callback set with pt_transport_set_peer_accept instead of raft's accept callback. The
 *     peer protocol (replication/peer.c) runs on it; raft never sees it. One port per node.
 *   - with pt_transport_set_tls, runs every connection (raft, PEER and BULK alike) over TLS 1.3
 *     with mutual authentication against the cluster CA, the peer's certificate naming the
 *     region of the server id it claims (transport_tls.c); with pt_transport_set_identity,
 *     refuses every server id that is not a member (or a region being added), so the
 *     connections a node holds are bounded by the membership.
 * Without TLS the connection is plain TCP; the stream handling sits behind a small seam
 * (transport_stream.c).
 *
 * Use (mirrors raft_uv_tcp_init / raft_uv_tcp_close):
 *
 *     struct raft_uv_transport t;
 *     pt_transport_init(&t, loop, "prod-eu");   // then optional pt_transport_set_*()
 *     raft_uv_init(&io, loop, dir, &t);
 *     raft_init(&r, &io, &fsm, id, "node-1.portolan:7000");
 *     ...
 *     raft_close(&r, close_cb);   // closes the transport through t.close
 *     // in close_cb (or later): raft_uv_close(&io); pt_transport_close(&t);
 *
 * Threads: everything, including every callback, runs on the thread that runs `loop` (the
 * raft loop). No function here is thread-safe.
 *
 * Streams: every stream handed over (raft's accept and connect callbacks, and the peer-channel
 * callbacks below) is a uv_tcp_t (with TLS: over the plaintext end of an AF_UNIX socketpair,
 * so uv_tcp_nodelay and the like fail harmlessly on it) allocated with raft_malloc whose ownership
 * passes to the callee, which must uv_close() it and then raft_free() it (raft_uv does). Its data
 * field is free for the callee. No byte that follows the handshake has been read from it.
 *
 * canonical/raft 0.15's struct raft_uv_transport has no version field (it appeared later);
 * pt_transport_init sets impl, errmsg, init, listen, connect and close, and keeps data.
 *
 * Errors: pt_transport_* functions return 0 or a negative PT_E_* (node/base/err.h). The methods
 * installed in the struct (init, listen, connect, close) are called by raft_uv and speak
 * its language: 0 or a positive RAFT_* code, with a message in t->errmsg for synchronous
 * failures. A failed connection attempt completes with RAFT_NOCONNECTION (raft_uv retries
 * it later), one cut short by closing the transport with RAFT_CANCELED. Peer-channel
 * connects speak Portolan's language instead (see pt_transport_connect_peer).
 */
#ifndef PT_TRANSPORT_H
#define PT_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "bounds.h"

/* Cluster ids (at most PT_CLUSTER_ID_MAX bytes; the handshake takes any visible ASCII, the
 * cluster file the stricter base/ident.h grammar), hosts (PT_HOST_MAX) and addresses
 * (PT_CLUSTER_ADDRESS_MAX) are bounded by base/bounds.h. */
/* Default limit for one handshake: a connection attempt to one address (TCP connect plus
 * handshake), or an inbound handshake from accept until the reply is written. Name lookups
 * are bounded by the system resolver's timeouts instead. */
#define PT_TRANSPORT_TIMEOUT_MS 5000
/* Limit for the TCP connect of an outbound attempt (within the one above): a SYN lost to a
 * link that is down is retried by the kernel only after 1, 3, 7 s, so an attempt started
 * while the link was down would hold the reconnection seconds past its return; it is given
 * up instead and the next attempt (raft's retry, the peer backoff) dials afresh. */
#define PT_TRANSPORT_CONNECT_TIMEOUT_MS 1000
/* A connection whose sent data stays unacknowledged this long is ended (TCP_USER_TIMEOUT): a
 * link that went silent is noticed, and raft dials again (through a relay if need be). */
#define PT_TRANSPORT_SILENT_MS 5000
/* Inbound handshakes in progress at once; further connections wait in the listen backlog. */
#define PT_TRANSPORT_MAX_INBOUND 64
/* Inbound handshakes in progress at once from one IP address: a further one from the same
 * address ends the oldest of them, so connections that never speak cannot hold the inbound
 * slots (and keep a real peer in the backlog) for a whole handshake time-out. Room for the
 * three channels of five regions sharing one address (a cluster on one host) at once. */
#define PT_TRANSPORT_MAX_INBOUND_PER_SOURCE 16
/* Addresses of one resolved name tried per connection attempt; also the most sockets the
 * transport listens on. */
#define PT_TRANSPORT_MAX_ROUTES    64
#define PT_TRANSPORT_MAX_ADDRESSES 8

/*
 * Makes t (caller-owned, must stay at the same address until pt_transport_close) a transport
 * for `loop` (borrowed; must outlive the transport) whose peers must present cluster_id
 * (borrowed, copied). t->data is preserved (raft_uv stores its state there); every other
 * field is overwritten.
 * Returns 0, PT_E_CONFIG if cluster_id is not 1..PT_CLUSTER_ID_MAX visible ASCII
 * characters, or PT_E_NOMEM. On failure nothing needs releasing.
 */
int pt_transport_init(struct raft_uv_transport *t, uv_loop_t *loop, const char *cluster_id);

/*
 * Releases the memory of a transport initialised by pt_transport_init. Allowed when the
 * transport never listened nor connected, or once the callback of t->close has fired (with
 * raft: after raft_close's callback). Every handle it used is closed by then.
 */
void pt_transport_close(struct raft_uv_transport *t);

/*
 * Listens on address (borrowed, copied; "host:port", e.g. "0.0.0.0:7000" or "[::]:7000")
 * instead of the raft address given to raft_init, while still announcing the raft address
 * to peers. Useful where the node's own name does not resolve to a local address, or does
 * not resolve before the node is ready (Kubernetes headless services). Call before
 * raft_start. Returns 0 or PT_E_CONFIG for an address pt_transport_parse_address rejects.
 */
int pt_transport_set_bind_address(struct raft_uv_transport *t, const char *address);

/*
 * Sets the handshake time limit (see PT_TRANSPORT_TIMEOUT_MS), 1..600000 ms; applies to
 * inbound handshakes and outbound address attempts that start afterwards. Returns 0 or
 * PT_E_CONFIG.
 */
/*
 * Dial address (copied) whenever raft or the peer layer connects to server id, whatever
 * address they name: this node's own view of a server (a NAT, a proxy, a name that only
 * resolves here). At most PT_TRANSPORT_MAX_ROUTES servers. 0, PT_E_CONFIG, PT_E_TOO_LARGE.
 */
int pt_transport_set_route(struct raft_uv_transport *t, uint64_t id, const char *address);

int pt_transport_set_timeout(struct raft_uv_transport *t, unsigned timeout_ms);

/*
 * Runs every connection over TLS 1.3 with mutual authentication: this node presents cert (PEM
 * chain) with key (PEM), and accepts only peers whose certificate verifies against ca (PEM, the
 * cluster CA; the system's CAs are not used) and whose subjectAltName holds DNS:<region name>
 * of the server they are (see pt_transport_set_identity, required with TLS: without it no
 * connection completes). Paths borrowed, read during the call. Call before raft_start.
 * Returns 0, or PT_E_CONFIG (a file that does not load, a key that does not match) /
 * PT_E_NOMEM with a message in errbuf.
 */
int pt_transport_set_tls(struct raft_uv_transport *t, const char *cert, const char *key,
                         const char *ca, char *errbuf, size_t errlen);

/* Returned by an identity callback for a region being added: known by name, not yet in the
 * raft configuration. Its PEER and BULK channels are accepted, its raft channels are not (it
 * has nothing to send raft before it is in the configuration: no vote, no append). */
#define PT_TRANSPORT_PEER_ONLY 1

/* Writes into name the region name of server id (NUL-terminated, at most PT_CLUSTER_NAME_MAX
 * bytes) and returns 0 for a member of the raft configuration or PT_TRANSPORT_PEER_ONLY for a
 * region being added, or returns PT_E_NOT_FOUND when id is neither. Runs on the raft loop
 * thread. */
typedef int (*pt_transport_identity_cb)(void *arg, uint64_t id, char name[PT_CLUSTER_NAME_MAX + 1]);

/*
 * Sets who may connect (arg borrowed, passed back): an inbound HELLO whose server id the
 * callback does not know is refused, whatever its channel kind, and so is a raft channel from
 * an id it calls PT_TRANSPORT_PEER_ONLY; with TLS, the peer's
 * certificate must also name the region the callback gives (inbound), and an outbound
 * connection requires the server's certificate to name the region of the id dialed.
 */
void pt_transport_set_identity(struct raft_uv_transport *t, pt_transport_identity_cb cb, void *arg);

/* Kinds of peer channel: PEER carries requests between nodes (forwarded writes, read
 * indexes), BULK carries blob bytes, on streams of their own so a transfer never delays a
 * write. */
enum { PT_CHANNEL_PEER = 0, PT_CHANNEL_BULK = 1, PT_CHANNELS = 2 };
/* Status of a peer-channel connect cut short by closing the transport. node/base/err.h has no
 * "canceled" code; this is libuv's UV_ECANCELED, which no PT_E_* value equals. */
#define PT_TRANSPORT_CANCELED UV_ECANCELED

/* Receives an inbound peer channel: id and address (borrowed, valid during the call) are the
 * ones the peer's HELLO announced and the handshake checked; stream is transferred (see
 * "Streams" above). */
typedef void (*pt_transport_peer_accept_cb)(void *arg, uint64_t id, const char *address,
                                            uv_stream_t *stream);
/* Completes pt_transport_connect_peer: status 0 with the stream (transferred), or status
 * PT_E_UNAVAILABLE (name not resolved, refused, wrong peer, handshake failed or timed out),
 * PT_E_NOMEM or PT_TRANSPORT_CANCELED (the transport closed), with stream NULL. */
typedef void (*pt_transport_peer_connect_cb)(void *arg, int status, uv_stream_t *stream);

/*
 * Sets the callback that receives inbound peer channels of kind channel (a PT_CHANNEL_*; arg
 * borrowed, passed back), or clears it with cb NULL; may be called at any time, also while the
 * transport is closing, and is a no-op once pt_transport_close released it. While no callback is
 * set, a HELLO asking for a peer channel is refused, as is one whose handshake completes after the
 * callback was cleared. Inbound channels arrive only once the transport listens (raft_start).
 */
void pt_transport_set_peer_accept(struct raft_uv_transport *t, int channel,
                                  pt_transport_peer_accept_cb cb, void *arg);

/*
 * Opens a peer channel of kind channel (a PT_CHANNEL_*) to server id at address (borrowed,
 * copied): the same name resolution,
 * handshake, per-address time limit and cancellation as a raft connection, with the HELLO's
 * PEER flag set. Allowed once t->init ran (raft_init) and until the transport closes.
 * Returns 0, then cb(arg) fires exactly once, never from inside this call; or an error and cb
 * never fires: PT_E_CONFIG (id 0, malformed address, cb NULL, unknown channel), PT_E_INTERNAL
 * (t->init has not run), PT_E_UNAVAILABLE (the transport is closing or released, or the lookup
 * could not start), PT_E_NOMEM. One attempt cannot be canceled: it completes within the time
 * limits, or with PT_TRANSPORT_CANCELED when the transport closes (before its close callback).
 */
int pt_transport_connect_peer(struct raft_uv_transport *t, uint64_t id, const char *address,
                              int channel, pt_transport_peer_connect_cb cb, void *arg);

/* Relays (bridge partitions): a connection to a server this node cannot reach directly is
 * tunneled through another member that reaches it: the relay splices bytes, the TLS and the
 * HELLO / WELCOME handshake run end to end inside (TLS in TLS), so the server authenticates
 * this node as over a direct connection. One hop only: a connection that arrived through a
 * relay is never relayed on. Relayed connections a node serves are bounded per source and in
 * all, and end after an idle time or a lifetime. The origin probes the direct path and ends
 * its tunneled connections once it is back (pt_transport_probe_direct). Requires TLS: without it
 * relays are neither used nor served. */
#define PT_TRANSPORT_RELAY_MAX        64
#define PT_TRANSPORT_RELAY_PER_SOURCE 8
#define PT_TRANSPORT_RELAY_IDLE_MS    60000
#define PT_TRANSPORT_RELAY_LIFE_MS    3600000
/* After a direct attempt failed, connections go through a relay for this long, then the
 * direct path is tried again. */
#define PT_TRANSPORT_DIRECT_RETRY_MS 10000

/* Writes the index-th member of the raft configuration (0-based): its server id and raft
 * address (NUL-terminated). Returns 0, or PT_E_NOT_FOUND past the last. Raft loop thread. */
typedef int (*pt_transport_member_cb)(void *arg, size_t index, uint64_t *id,
                                      char address[PT_CLUSTER_ADDRESS_MAX + 1]);

/*
 * Enables relays (see above) with the members cb lists (arg borrowed): this node serves relay
 * requests from members to members, and tunnels its own connections through them when the
 * direct path fails. NULL disables both. Effective only with pt_transport_set_tls.
 */
void pt_transport_set_relay(struct raft_uv_transport *t, pt_transport_member_cb cb, void *arg);

/*
 * Tells the transport that server id went silent (the peer layer heard nothing from it on a
 * channel for its idle limit; the TCP connections may still look alive, e.g. through a proxy
 * whose far side is cut): every connection with id is ended, raft and the peer layer dial
 * again, and with relays enabled those attempts go through a relay (another one if the silent
 * path was a relay) until the direct path is tried again. A no-op without relays.
 */
void pt_transport_peer_silent(struct raft_uv_transport *t, uint64_t id);

/* Whether relays are in use (pt_transport_set_relay with TLS). */
bool pt_transport_relays(struct raft_uv_transport *t);

/*
 * Refuses inbound raft channels for the next ms milliseconds of loop time (their dialers
 * retry): a region that restarts must not grant a vote sooner than an election timeout after
 * it last heard from a leader, since that leader may answer reads from a lease until then
 * (raft_read_index.c); canonical/raft forgets the leader it knew across a restart. Peer and
 * relay channels are served meanwhile. Raft loop thread, before raft_start.
 */
void pt_transport_hold_raft(struct raft_uv_transport *t, uint64_t ms);

/*
 * While connections to a server go through a relay, checks every PT_TRANSPORT_DIRECT_RETRY_MS
 * whether the direct path is back (a direct PEER channel that is closed at once); when it is,
 * the tunneled connections end and raft and the peer layer dial directly. Call it
 * periodically (the peer layer does, every ping).
 */
void pt_transport_probe_direct(struct raft_uv_transport *t);

/* The server id through which this node's last completed connection to id went: 0 when
 * direct (or no relay used). */
uint64_t pt_transport_relay_of(struct raft_uv_transport *t, uint64_t id);

/*
 * Splits address (borrowed) into host (written into host[host_size], NUL-terminated,
 * brackets of an IPv6 literal removed) and port (1..65535). Accepted forms: "name:port"
 * (letters, digits, '.', '-', '_'), "a.b.c.d:port" and "[v6]:port" (hex digits, ':', '.',
 * and a '%zone' of letters, digits, '.', '-', '_'). The port is mandatory. Returns 0 or
 * PT_E_CONFIG (also when the host does not fit in host_size).
 */
int pt_transport_parse_address(const char *address, char *host, size_t host_size, unsigned *port);

#endif
