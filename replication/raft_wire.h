/*
 * raft_wire.h - a streaming validator of the raft messages a peer sends on a raft channel.
 *
 * Role: libraft's receiving side (src/uv_recv.c and src/uv_encoding.c of canonical/raft 0.15)
 * trusts the sizes a message announces: an AppendEntries whose header announces more entry
 * headers than the header holds makes it read past its buffer, a RequestVote shorter than 32
 * bytes likewise, and the announced payload is allocated whole before a byte of it arrived.
 * This validator reads the same bytes first and says whether every message is one libraft
 * decodes within bounds, so a bad one closes the connection before raft sees it.
 *
 * Wire format (every integer little-endian, as libraft writes it):
 *
 *     preamble   0   8  message type: 1 AppendEntries, 2 AppendEntriesResult, 3 RequestVote,
 *                       4 RequestVoteResult, 5 InstallSnapshot, 6 TimeoutNow
 *                8   8  header length H
 *     header     H bytes, by type:
 *       1  term, prev_log_index, prev_log_term, leader_commit (8 each), n (8),
 *          n entry headers of 16 bytes: term (8), type (1: 1 command, 2 barrier, 3 change),
 *          3 unused, size (4); H is 40 + 16 n or 48 + 16 n (a trailing reserved word)
 *       2  term, rejected, last_log_index (8 each) [+ later fields]: 24 <= H <= 64
 *       3  term, candidate_id, last_log_index, last_log_term (8 each) [+ flags]:
 *          H == 32 or 40 <= H <= 64
 *       4  term, vote_granted (8 each) [+ flags]: H == 16 or 24 <= H <= 64
 *       5  term, last_index, last_term, conf_index (8 each), conf length C (8), C bytes of
 *          configuration, snapshot length (8): 48 + C <= H <= 56 + C
 *       6  term, last_log_index, last_log_term (8 each): 24 <= H <= 64
 *     payload    type 1: the sum of the entry sizes; type 5: the snapshot length; else none
 *
 * Checks beyond the layout (a violation means a broken or hostile peer, never a slow one):
 *   - the term of every message, and every term inside it, is at most PT_RAFT_WIRE_TERM_MAX
 *     (2^48: one election a millisecond takes 8900 years to get there), so a peer cannot push
 *     the cluster's term to 2^64-1 where it can never advance again; the terms an
 *     AppendEntries carries (prev_log_term, every entry's) are at most its own term, as a
 *     leader's log never holds a later one;
 *   - a RequestVote's candidate_id is the authenticated sender (the server id of the HELLO the
 *     connection's certificate was checked against);
 *   - n <= PT_RAFT_WIRE_ENTRIES_MAX, every entry <= PT_RAFT_WIRE_ENTRY_MAX (a command's bound
 *     plus room for a configuration) and a multiple of 8 bytes (libraft aligns entry data to
 *     8 bytes; Portolan's commands and raft's own entries all are), an AppendEntries payload <=
 * PT_RAFT_WIRE_APPEND_MAX, a snapshot <= PT_RAFT_WIRE_SNAPSHOT_MAX, a configuration <=
 * PT_RAFT_WIRE_CONF_MAX.
 *
 * Design: a byte-at-a-time state machine with a 48-byte scratch buffer: the fixed part of a
 * header is collected, entry headers are checked one by one as they stream by, header tails
 * and payloads are skipped by count. Memory is constant whatever the message announces.
 * Where: the TLS pump of every inbound raft channel (transport_tls.c) feeds it what the peer
 * sends after its HELLO. With --peer-tls off (allowed only when every raft address is
 * loopback) there is no pump and raft reads the socket directly.
 * Threads: a struct pt_raft_wire belongs to one thread (the TLS pump of its connection).
 */
#ifndef PT_RAFT_WIRE_H
#define PT_RAFT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define PT_RAFT_WIRE_TERM_MAX     (UINT64_C(1) << 48)
#define PT_RAFT_WIRE_ENTRIES_MAX  (1u << 18)
#define PT_RAFT_WIRE_ENTRY_MAX    ((8u << 20) + 4096)
#define PT_RAFT_WIRE_APPEND_MAX   (UINT64_C(1) << 30)
#define PT_RAFT_WIRE_SNAPSHOT_MAX (UINT64_C(4) << 30)
#define PT_RAFT_WIRE_CONF_MAX     (64u * 1024)

/* Why a stream was refused (pt_raft_wire_reason gives the text). */
enum pt_raft_wire_error {
    PT_RAFT_WIRE_OK = 0,
    PT_RAFT_WIRE_TYPE,    /* unknown message type */
    PT_RAFT_WIRE_LENGTH,  /* header length does not fit the type or its counts */
    PT_RAFT_WIRE_TERM,    /* a term above the bound, or above the message's own term */
    PT_RAFT_WIRE_SENDER,  /* candidate id is not the authenticated sender */
    PT_RAFT_WIRE_ENTRIES, /* too many entries */
    PT_RAFT_WIRE_ENTRY,   /* an entry of an unknown type or beyond its size bound */
    PT_RAFT_WIRE_PAYLOAD, /* payload beyond its bound */
};

struct pt_raft_wire {
    uint64_t peer_id; /* the authenticated sender */
    int state;
    enum pt_raft_wire_error error; /* sticky once set */
    uint64_t type, hlen;
    uint64_t remaining; /* bytes left in the current skip */
    uint64_t term;      /* of the current message */
    uint64_t n, i;      /* entries announced, entry headers checked */
    uint64_t payload;   /* sum of entry sizes so far, or the snapshot's length */
    uint64_t conf;      /* a snapshot's configuration length */
    size_t have, want;  /* scratch fill and target */
    unsigned char scratch[48];
};

/* Starts validating a new stream whose sender authenticated as peer_id. */
void pt_raft_wire_init(struct pt_raft_wire *w, uint64_t peer_id);

/*
 * Feeds the next len bytes of the stream (borrowed). Returns PT_RAFT_WIRE_OK while every
 * message so far, complete or not, is valid; otherwise the error, and every later call returns
 * it again.
 */
enum pt_raft_wire_error pt_raft_wire_feed(struct pt_raft_wire *w, const unsigned char *buf,
                                          size_t len);

/* Static text of an error, for logs. */
const char *pt_raft_wire_reason(enum pt_raft_wire_error e);

#endif
