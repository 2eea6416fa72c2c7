/*
 * raft_wire.c - the streaming validator of raft messages (see raft_wire.h for the format).
 *
 * Role: decides, byte by byte, whether what a peer sends on a raft channel is a sequence of
 * messages libraft 0.15 decodes within its buffers and within Portolan's bounds.
 * Design: PREAMBLE, FIXED and SNAPSHOT_LEN collect a few bytes into scratch and check them;
 * ENTRY collects one 16-byte entry header at a time; SKIP_CONF (a snapshot's configuration),
 * SKIP_HEADER (reserved words at the header's end) and SKIP_PAYLOAD count bytes down without
 * looking at them.
 * Invariants: have <= want <= sizeof(scratch); once error is set it never changes.
 * Threads: none of its own; a validator is used by one thread at a time.
 */
#include "raft_wire.h"

#include <string.h>

#include "bytes.h"

enum {
    ST_PREAMBLE = 0,
    ST_FIXED,
    ST_ENTRY,
    ST_SKIP_CONF,
    ST_SNAPSHOT_LEN,
    ST_SKIP_HEADER,
    ST_SKIP_PAYLOAD,
};

enum {
    T_APPEND = 1,
    T_APPEND_RESULT,
    T_VOTE,
    T_VOTE_RESULT,
    T_SNAPSHOT,
    T_TIMEOUT_NOW,
};

#define PREAMBLE_LEN 16
#define ENTRY_LEN    16
#define APPEND_FIXED 40 /* four words and the entry count */
#define SNAP_FIXED   40 /* four words and the configuration length */
#define SMALL_MAX    64 /* room for fields a later libraft appends to the small messages */

void pt_raft_wire_init(struct pt_raft_wire *w, uint64_t peer_id)
{
    memset(w, 0, sizeof(*w));
    w->peer_id = peer_id;
    w->state = ST_PREAMBLE;
    w->want = PREAMBLE_LEN;
}

const char *pt_raft_wire_reason(enum pt_raft_wire_error e)
{
    switch (e) {
    case PT_RAFT_WIRE_OK:
        return "ok";
    case PT_RAFT_WIRE_TYPE:
        return "unknown raft message type";
    case PT_RAFT_WIRE_LENGTH:
        return "raft message header length does not match its content";
    case PT_RAFT_WIRE_TERM:
        return "raft message term out of bounds";
    case PT_RAFT_WIRE_SENDER:
        return "raft vote request names another candidate than the authenticated peer";
    case PT_RAFT_WIRE_ENTRIES:
        return "raft append announces too many entries";
    case PT_RAFT_WIRE_ENTRY:
        return "raft entry of unknown type or too large";
    case PT_RAFT_WIRE_PAYLOAD:
        return "raft message payload too large";
    }
    return "?";
}

static void collect(struct pt_raft_wire *w, int state, size_t want)
{
    w->state = state;
    w->have = 0;
    w->want = want;
}

static void skip(struct pt_raft_wire *w, int state, uint64_t n)
{
    w->state = state;
    w->remaining = n;
}

static uint64_t word(const struct pt_raft_wire *w, size_t i)
{
    return pt_get_le64(w->scratch + 8 * i);
}

/* The header's tail, then the payload, then the next preamble. */
static void after_fields(struct pt_raft_wire *w, uint64_t tail)
{
    skip(w, ST_SKIP_HEADER, tail);
}

/* The preamble is complete: checks the type and the header length against each other. */
static enum pt_raft_wire_error on_preamble(struct pt_raft_wire *w)
{
    uint64_t h;

    w->type = word(w, 0);
    w->hlen = h = word(w, 1);
    w->payload = 0;
    switch (w->type) {
    case T_APPEND:
        if (h < APPEND_FIXED)
            return PT_RAFT_WIRE_LENGTH;
        collect(w, ST_FIXED, APPEND_FIXED);
        return PT_RAFT_WIRE_OK;
    case T_APPEND_RESULT:
    case T_TIMEOUT_NOW:
        if (h < 24 || h > SMALL_MAX)
            return PT_RAFT_WIRE_LENGTH;
        collect(w, ST_FIXED, 24);
        return PT_RAFT_WIRE_OK;
    case T_VOTE:
        if (h != 32 && (h < 40 || h > SMALL_MAX))
            return PT_RAFT_WIRE_LENGTH;
        collect(w, ST_FIXED, 32);
        return PT_RAFT_WIRE_OK;
    case T_VOTE_RESULT:
        if (h != 16 && (h < 24 || h > SMALL_MAX))
            return PT_RAFT_WIRE_LENGTH;
        collect(w, ST_FIXED, 16);
        return PT_RAFT_WIRE_OK;
    case T_SNAPSHOT:
        if (h < SNAP_FIXED + 8)
            return PT_RAFT_WIRE_LENGTH;
        collect(w, ST_FIXED, SNAP_FIXED);
        return PT_RAFT_WIRE_OK;
    default:
        return PT_RAFT_WIRE_TYPE;
    }
}

/* The fixed fields of the header are complete. */
static enum pt_raft_wire_error on_fixed(struct pt_raft_wire *w)
{
    uint64_t n, conf;

    w->term = word(w, 0);
    if (w->term > PT_RAFT_WIRE_TERM_MAX)
        return PT_RAFT_WIRE_TERM;
    switch (w->type) {
    case T_APPEND:
        if (word(w, 2) > w->term)
            return PT_RAFT_WIRE_TERM; /* prev_log_term */
        n = word(w, 4);
        if (n > PT_RAFT_WIRE_ENTRIES_MAX)
            return PT_RAFT_WIRE_ENTRIES;
        if (w->hlen != APPEND_FIXED + ENTRY_LEN * n && w->hlen != APPEND_FIXED + 8 + ENTRY_LEN * n)
            return PT_RAFT_WIRE_LENGTH;
        w->n = n;
        w->i = 0;
        if (n > 0)
            collect(w, ST_ENTRY, ENTRY_LEN);
        else
            after_fields(w, w->hlen - APPEND_FIXED);
        return PT_RAFT_WIRE_OK;
    case T_VOTE:
        if (word(w, 1) != w->peer_id)
            return PT_RAFT_WIRE_SENDER;
        if (word(w, 3) > w->term)
            return PT_RAFT_WIRE_TERM; /* last_log_term */
        after_fields(w, w->hlen - 32);
        return PT_RAFT_WIRE_OK;
    case T_SNAPSHOT:
        if (word(w, 2) > w->term)
            return PT_RAFT_WIRE_TERM; /* last_term */
        conf = word(w, 4);
        if (conf > PT_RAFT_WIRE_CONF_MAX)
            return PT_RAFT_WIRE_LENGTH;
        if (w->hlen < SNAP_FIXED + conf + 8 || w->hlen > SNAP_FIXED + conf + 16)
            return PT_RAFT_WIRE_LENGTH;
        /* the configuration is libraft's to decode (it bounds itself by conf) */
        w->conf = conf;
        skip(w, ST_SKIP_CONF, conf);
        return PT_RAFT_WIRE_OK;
    case T_TIMEOUT_NOW:
        if (word(w, 2) > w->term)
            return PT_RAFT_WIRE_TERM; /* last_log_term */
        after_fields(w, w->hlen - 24);
        return PT_RAFT_WIRE_OK;
    case T_APPEND_RESULT:
        after_fields(w, w->hlen - 24);
        return PT_RAFT_WIRE_OK;
    default: /* T_VOTE_RESULT */
        after_fields(w, w->hlen - 16);
        return PT_RAFT_WIRE_OK;
    }
}

/* One 16-byte entry header of an AppendEntries is complete. */
static enum pt_raft_wire_error on_entry(struct pt_raft_wire *w)
{
    uint64_t term = pt_get_le64(w->scratch);
    unsigned type = w->scratch[8];
    uint32_t size = pt_get_le32(w->scratch + 12);

    if (term > w->term)
        return PT_RAFT_WIRE_TERM;
    /* Every entry this cluster writes is a multiple of 8 bytes (commands are framed that way,
     * raft's own barrier and configuration entries are padded), so the payload is the plain
     * sum of the sizes whether or not the receiving libraft steps over padding. */
    if (type < 1 || type > 3 || size > PT_RAFT_WIRE_ENTRY_MAX || size % 8 != 0)
        return PT_RAFT_WIRE_ENTRY;
    w->payload += size;
    if (w->payload > PT_RAFT_WIRE_APPEND_MAX)
        return PT_RAFT_WIRE_PAYLOAD;
    if (++w->i < w->n)
        collect(w, ST_ENTRY, ENTRY_LEN);
    else
        after_fields(w, w->hlen - APPEND_FIXED - ENTRY_LEN * w->n);
    return PT_RAFT_WIRE_OK;
}

static enum pt_raft_wire_error on_collected(struct pt_raft_wire *w)
{
    uint64_t data;

    switch (w->state) {
    case ST_PREAMBLE:
        return on_preamble(w);
    case ST_FIXED:
        return on_fixed(w);
    case ST_ENTRY:
        return on_entry(w);
    default: /* ST_SNAPSHOT_LEN, after the configuration */
        data = word(w, 0);
        if (data > PT_RAFT_WIRE_SNAPSHOT_MAX)
            return PT_RAFT_WIRE_PAYLOAD;
        w->payload = data;
        after_fields(w, w->hlen - SNAP_FIXED - w->conf - 8);
        return PT_RAFT_WIRE_OK;
    }
}

enum pt_raft_wire_error pt_raft_wire_feed(struct pt_raft_wire *w, const unsigned char *buf,
                                          size_t len)
{
    while (w->error == PT_RAFT_WIRE_OK && len > 0) {
        size_t n;

        if (w->state == ST_SKIP_CONF || w->state == ST_SKIP_HEADER || w->state == ST_SKIP_PAYLOAD) {
            n = w->remaining < len ? (size_t)w->remaining : len;
            w->remaining -= n;
            buf += n;
            len -= n;
            if (w->remaining > 0)
                break;
            if (w->state == ST_SKIP_CONF)
                collect(w, ST_SNAPSHOT_LEN, 8);
            else if (w->state == ST_SKIP_HEADER && w->payload > 0)
                skip(w, ST_SKIP_PAYLOAD, w->payload);
            else
                collect(w, ST_PREAMBLE, PREAMBLE_LEN);
            continue;
        }
        n = w->want - w->have < len ? w->want - w->have : len;
        memcpy(w->scratch + w->have, buf, n);
        w->have += n;
        buf += n;
        len -= n;
        if (w->have == w->want)
            w->error = on_collected(w);
    }
    return w->error;
}
