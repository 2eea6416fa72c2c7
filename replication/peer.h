/*
 * peer.h - request/response RPC between the nodes of a cluster (DESIGN.md section 6): leader
 * forwarding (Propose), read indexes (ReadIndex) and RTT measurement (Ping), over peer
 * channels of the raft transport (transport.h), so a node needs one port only.
 *
 * Model: a request goes to a server id and gets exactly one answer: the status and body the
 * other node replied with, or PT_E_UNAVAILABLE when it could not be delivered or answered in
 * time. Each frame is a portolan.PeerFrame (proto/peer.proto) behind a 4-byte big-endian
 * length; the body is opaque here: callers put the typed message of their type in it
 * (e.g. an encoded Propose for PEER_PROPOSE) and answer with the matching result.
 *
 * Connections: requests to a peer go over one outbound peer channel, opened at the first
 * request to that peer and then kept open; when it fails or drops it is reopened with
 * exponential, jittered backoff (PT_PEERS_BACKOFF_MIN_MS..MAX). Requests made while it opens wait
 * in a bounded queue; requests made while the peer is known to be down (backoff) fail at once.
 * Requests from other nodes arrive on the channels they opened to this one and are answered
 * on the channel they came on. Every open channel is pinged every PT_PEERS_PING_MS in both
 * directions (answered inside this module, never passed to the request callback), which gives
 * the RTT and finds dead channels: one that received nothing for PT_PEERS_IDLE_MS is closed.
 *
 * Threads: everything, every callback included, runs on the thread that runs the loop given
 * to pt_peers_init (the raft loop). Nothing here is thread-safe; other threads hand work in
 * with uv_async.
 *
 * Life cycle, with raft (whose transport this shares):
 *     pt_transport_init(&t, loop, cluster);  raft_uv_init(..., &t);  raft_init(...);
 *     pt_peers_init(&peers, loop, &t, PT_CHANNEL_PEER, id, on_request, arg);
 *     pt_peers_set_address(...);
 *     raft_start(...);                      // inbound peer channels arrive from here on
 *     ...
 *     pt_peers_close(peers, cb, arg);       // then, in cb or later:
 *     raft_close(...);  raft_uv_close(...);  pt_transport_close(&t);
 * Closing the peers first is best (no peer traffic while raft winds down), but any order
 * works as long as the struct raft_uv_transport itself stays in memory until pt_peers_close's
 * callback: after raft_close the transport refuses new channels, and after
 * pt_transport_close it is left alone. One pt_peers per transport and channel kind.
 *
 * Errors: functions return 0 or a negative PT_E_* (node/base/err.h). A function that returns an
 * error never calls its callback.
 */
#ifndef PT_PEER_H
#define PT_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <raft.h>
#include <raft/uv.h>

/* Longest frame, in bytes after the length prefix; a longer one is a protocol error and the
 * connection is closed. */
#define PT_PEERS_FRAME_MAX (16u * 1024 * 1024)
/* Input buffer room that all the channels of the process together may hold beyond
 * 2 * 64 KiB each for frames under way (a BULK channel's piece is at most 4 MiB): a channel
 * whose next frame would pass it is closed, counted in
 * portolan_peer_refused_total{reason="peer_frame"}. */
#define PT_PEERS_PARTIAL_BUDGET (96u * 1024 * 1024)
/* Longest request or reply body: the frame less room for its other fields. */
#define PT_PEERS_BODY_MAX (PT_PEERS_FRAME_MAX - 64)
/* Peers known at once (set by address or seen inbound). */
#define PT_PEERS_MAX 64
/* Requests waiting per peer for its channel to open or for a slot, and their bytes. */
#define PT_PEERS_QUEUE_MAX       1024
#define PT_PEERS_QUEUE_BYTES_MAX (64u * 1024 * 1024)
/* Requests in flight per channel, in each direction. Beyond it, outgoing requests wait in the
 * queue; an incoming one is answered PT_E_TOOMANYREQUESTS at once. */
#define PT_PEERS_INFLIGHT_MAX 256
/* Queued requests are written only while a channel's unsent bytes are below this. */
#define PT_PEERS_WRITE_HIGH (1024u * 1024)
/* A channel whose unsent bytes would exceed this is closed (the peer does not read). */
#define PT_PEERS_WRITE_MAX (64u * 1024 * 1024)
/* Inbound channels kept per peer; a newer one closes the oldest (a restarted peer). */
#define PT_PEERS_INBOUND_PER_PEER 4
/* Ping interval, and the silence after which a channel is closed as dead. */
#define PT_PEERS_PING_MS 1000
#define PT_PEERS_IDLE_MS 10000
/* The silence after which the transport is told the link to the peer went silent
 * (pt_transport_peer_silent: with relays, its connections end and go through another member);
 * three pings unanswered. */
#define PT_PEERS_SILENT_MS 3000
/* Reconnect backoff after a failed or dropped outbound channel: doubles up to the max, each
 * wait drawn in [half, all] of it (jitter: regions that lost each other at once do not dial
 * in step). Short, so that a region writes again within about a second of a link's return. */
#define PT_PEERS_BACKOFF_MIN_MS 50
#define PT_PEERS_BACKOFF_MAX_MS 1000
/* Longest request timeout. */
#define PT_PEERS_TIMEOUT_MAX_MS 600000

struct pt_peers;
/* The server side of one incoming request, owned by this module until pt_peer_reply. */
struct pt_peer_call;

/*
 * The answer to a request. status: 0 or the negative PT_E_* the peer replied with, or
 * PT_E_UNAVAILABLE when there was no channel (unknown address, connect failed, peer in
 * backoff, queue full), the timeout passed, the channel closed before the answer, or
 * pt_peers_close ran. body (borrowed, valid during the call only; NULL when len is 0) is what
 * the peer replied, empty for a local failure. arg is the one given to pt_peers_request.
 */
typedef void (*pt_peer_reply_cb)(void *arg, int status, const void *body, size_t len);

/*
 * An incoming request from server `from`, of `type` (a PeerType value other than PEER_INVALID
 * and PEER_PING), with body (borrowed, valid during the call only; NULL when len is 0). The callee
 * must answer with pt_peer_reply(call, ...) exactly once, now or later; unknown types should
 * be answered PT_E_UNSUPPORTED.
 */
typedef void (*pt_peer_request_cb)(void *arg, uint64_t from, uint32_t type, const void *body,
                                   size_t len, struct pt_peer_call *call);

/*
 * Creates the peer RPC service of server self_id (non-zero) on the peer channels of kind
 * channel (PT_CHANNEL_PEER or PT_CHANNEL_BULK, transport.h) of transport t (initialised with
 * pt_transport_init; borrowed, must outlive the service) and loop (borrowed), and registers
 * it as t's acceptor for that kind. on_request (may be NULL: every request is then answered
 * PT_E_UNSUPPORTED) receives incoming requests with arg (borrowed). Outbound requests work
 * once raft_init ran on the transport. On success *out is owned by the caller until
 * pt_peers_close. Returns 0, PT_E_CONFIG (NULL argument, self_id 0) or PT_E_NOMEM.
 */
int pt_peers_init(struct pt_peers **out, uv_loop_t *loop, struct raft_uv_transport *t, int channel,
                  uint64_t self_id, pt_peer_request_cb on_request, void *arg);

/*
 * Records (or changes) the address of server id, "host:port" (borrowed, copied). A changed
 * address is used from the next connection attempt; a peer waiting in backoff is retried at
 * once. An open channel stays open (the handshake proved it reaches server id).
 * Returns 0, PT_E_CONFIG (id 0 or self, malformed address, more than PT_PEERS_MAX peers) or
 * PT_E_UNAVAILABLE (closing).
 */
int pt_peers_set_address(struct pt_peers *p, uint64_t id, const char *address);

/*
 * Sends a request of type (a PeerType other than PEER_INVALID and PEER_PING) with body (borrowed,
 * copied; NULL allowed when len is 0) to server `to`, answered within timeout_ms
 * (1..PT_PEERS_TIMEOUT_MAX_MS). Returns 0, then cb(arg, ...) fires exactly once, never from
 * inside this call; or an error and cb never fires: PT_E_CONFIG (to 0 or self, bad type,
 * timeout, NULL cb or body), PT_E_TOO_LARGE (len > PT_PEERS_BODY_MAX), PT_E_NOMEM,
 * PT_E_UNAVAILABLE (pt_peers_close has been called).
 */
int pt_peers_request(struct pt_peers *p, uint64_t to, uint32_t type, const void *body, size_t len,
                     unsigned timeout_ms, pt_peer_reply_cb cb, void *arg);

/*
 * Answers an incoming request with status (0 or a negative PT_E_*; anything else is sent as
 * PT_E_INTERNAL) and body (borrowed, copied; NULL allowed when len is 0; one longer than
 * PT_PEERS_BODY_MAX is replaced by status PT_E_TOO_LARGE and no body). Must be called exactly
 * once per call; call is released by it. Safe when the channel closed meanwhile, also after
 * pt_peers_close finished: the answer is then dropped.
 */
void pt_peer_reply(struct pt_peer_call *call, int status, const void *body, size_t len);

/*
 * Opens the outbound channel to server id (whose address is set) now, and keeps it open from
 * then on as if a request had been made, so its RTT is known before the first request. No-op
 * for an unknown peer, one without an address, or once pt_peers_close ran.
 */
void pt_peers_keep_open(struct pt_peers *p, uint64_t id);

/*
 * Smoothed round-trip time to server id in microseconds, from the pings on the channels open
 * to it (7/8 old + 1/8 new sample), or -1 when unknown: no channel open to id, or no pong
 * received on one yet.
 */
int64_t pt_peers_rtt_us(struct pt_peers *p, uint64_t id);

/*
 * Shuts the service down: unregisters the peer-channel acceptor, closes every channel and
 * fails every pending request with PT_E_UNAVAILABLE. Request callbacks fire after this
 * returns and before cb(arg); then p is freed. Unanswered incoming calls stay valid for
 * pt_peer_reply, which then drops the answer. A connection attempt still in the transport is
 * left to complete there (at the latest when the transport closes) and is then closed.
 * Call once.
 */
void pt_peers_close(struct pt_peers *p, void (*cb)(void *arg), void *arg);

#endif
