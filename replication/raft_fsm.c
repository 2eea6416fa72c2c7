/*
 * raft_fsm.c - canonical/raft FSM callbacks over the metastore (see raft_fsm.h for the
 * contract).
 *
 * Design: the adapter holds no state of its own besides counters. Everything that must
 * survive a restart (the applied index, the replicated records) lives in the metastore and
 * is written there atomically by pt_fsm_apply and pt_metastore_restore, so raft's view and
 * the store's view can only differ in one direction: the store may be ahead, never behind,
 * and entries it is ahead by are skipped by index.
 *
 * Stopping: an entry that cannot be applied (I/O error, or a committed entry that does not
 * decode) halts the metastore (pt_metastore_halt). raft 0.15 leaves last_applied before a
 * failed entry and calls apply again for it at the next commit; every such call, and every
 * restore, is then refused with the halting error, so this server never applies anything
 * past (or again at) the failed index in this process, and the committer refuses new
 * proposals. The raft log itself is untouched: after a restart the entry is applied again.
 *
 * Full disk: below the free-space reserve pt_fsm_apply refuses with PT_E_DISK_FULL before
 * writing anything and without halting; the entry stays unapplied (raft keeps last_applied
 * before it) and is applied when raft offers it again once space is back, so a follower on a
 * full disk stops applying, corrupts nothing, and catches up by itself. A snapshot restore is
 * refused the same way.
 *
 * Errors cross the boundary once: PT_E_* from the metastore and FSM become RAFT_* codes for
 * raft here, and RAFT_* codes become PT_E_* for callers through pt_raft_fsm_err.
 */
#include "raft_fsm.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "diskspace.h"
#include "err.h"
#include "fsm.h"
#include "log.h"
#include "metastore.h"

static int to_raft_err(int pt_err)
{
    switch (pt_err) {
    case PT_E_NOMEM:
        return RAFT_NOMEM;
    case PT_E_CORRUPT:
        return RAFT_CORRUPT;
    default:
        return RAFT_IOERR;
    }
}

int pt_raft_fsm_err(int raft_err)
{
    switch (raft_err) {
    case 0:
        return 0;
    case RAFT_NOTLEADER:
    case RAFT_BUSY:
    case RAFT_LEADERSHIPLOST:
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED:
        return PT_E_UNAVAILABLE;
    case RAFT_NOMEM:
        return PT_E_NOMEM;
    case RAFT_CORRUPT:
        return PT_E_CORRUPT;
    case RAFT_IOERR:
    case RAFT_NOSPACE:
        return PT_E_IO;
    case RAFT_TOOBIG:
        return PT_E_TOO_LARGE;
    default:
        return PT_E_INTERNAL;
    }
}

int pt_raft_fsm_status(const void *result)
{
    return (int)(intptr_t)result;
}

#define FRAME_HEADER 8

int pt_raft_entry_frame(const void *cmd, size_t len, struct raft_buffer *out)
{
    size_t total = FRAME_HEADER + ((len + 7) & ~(size_t)7);
    unsigned char *p = raft_malloc(total);
    if (p == NULL)
        return PT_E_NOMEM;
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)((uint64_t)len >> (8 * i));
    memcpy(p + FRAME_HEADER, cmd, len);
    memset(p + FRAME_HEADER + len, 0, total - FRAME_HEADER - len);
    out->base = p;
    out->len = total;
    return 0;
}

int pt_raft_entry_unframe(const struct raft_buffer *entry, const void **cmd, size_t *len)
{
    const unsigned char *p = entry->base;
    if (entry->len < FRAME_HEADER || entry->len % 8 != 0)
        return -1;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | p[i];
    if (n > entry->len - FRAME_HEADER || entry->len - FRAME_HEADER - n >= 8)
        return -1;
    *cmd = p + FRAME_HEADER;
    *len = (size_t)n;
    return 0;
}

static int apply_cb(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct pt_raft_fsm *f = fsm->data;
    *result = NULL;
    if (f->raft == NULL)
        return RAFT_INVALID;
    int rv = pt_metastore_halted(f->ms);
    if (rv != 0)
        return to_raft_err(rv); /* stopped at an earlier failure (logged then) */
    uint64_t index = raft_last_applied(f->raft) + 1;
    if (index <= pt_metastore_applied_index(f->ms)) {
        f->n_skipped++;
        return 0;
    }
    struct pt_fsm_result res;
    const void *cmd;
    size_t cmd_len;
    rv = pt_raft_entry_unframe(buf, &cmd, &cmd_len) == 0
             ? pt_fsm_apply(f->ms, cmd, cmd_len, index, &res)
             : PT_E_CORRUPT;
    if (rv == PT_E_DISK_FULL) {
        /* Nothing was written and the store is not halted: raft keeps last_applied before this
         * entry and offers it again with the next commit or heartbeat that carries a commit
         * index past it, by which time space may be back. Logged once per stop. */
        if (!f->disk_stopped)
            pt_log(PT_LOG_WARN, "raft apply paused: free disk space below the reserve", "{s:I}",
                   "index", (json_int_t)index);
        f->disk_stopped = true;
        f->n_disk_refused++;
        return RAFT_IOERR;
    }
    if (f->disk_stopped) {
        pt_log(PT_LOG_INFO, "raft apply resumed: free disk space is back", "{s:I}", "index",
               (json_int_t)index);
        f->disk_stopped = false;
    }
    if (rv != 0) {
        pt_metastore_halt(f->ms, rv); /* also a committed entry that does not decode */
        pt_log(PT_LOG_ERROR,
               "raft apply failed; this region applies no further entry until restart", "{s:I,s:s}",
               "index", (json_int_t)index, "error", pt_err_message(rv));
        return to_raft_err(rv);
    }
    f->n_applied++;
    f->n_blob_changes += (uint64_t)res.blobs;
    *result = (void *)(intptr_t)res.status;
    return 0;
}

static int snapshot_cb(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct pt_raft_fsm *f = fsm->data;
    struct raft_buffer *b = raft_malloc(sizeof(*b));
    if (b == NULL)
        return RAFT_NOMEM;
    uint64_t index;
    int rv = pt_metastore_snapshot_with(f->ms, raft_realloc, raft_free, &b->base, &b->len, &index);
    if (rv != 0) {
        raft_free(b);
        pt_log(PT_LOG_ERROR, "raft snapshot failed", "{s:s}", "error", pt_err_message(rv));
        return to_raft_err(rv);
    }
    f->n_snapshots++;
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

static int restore_cb(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct pt_raft_fsm *f = fsm->data;
    uint64_t index;
    int rv = pt_metastore_halted(f->ms);
    if (rv != 0)
        return to_raft_err(rv);
    rv = pt_metastore_snapshot_index(buf->base, buf->len, &index);
    if (rv == 0 && index > pt_metastore_applied_index(f->ms) && pt_disk_low(buf->len)) {
        f->n_disk_refused++;
        pt_log(PT_LOG_WARN, "raft snapshot restore refused: free disk space below the reserve",
               "{s:I}", "index", (json_int_t)index);
        return RAFT_IOERR;
    }
    if (rv == 0 && index <= pt_metastore_applied_index(f->ms)) {
        f->n_restore_skipped++;
        raft_free(buf->base);
        return 0;
    }
    if (rv == 0)
        rv = pt_metastore_restore(f->ms, buf->base, buf->len);
    if (rv != 0) {
        pt_log(PT_LOG_ERROR, "raft snapshot restore failed", "{s:s}", "error", pt_err_message(rv));
        return to_raft_err(rv);
    }
    f->n_restored++;
    raft_free(buf->base);
    return 0;
}

void pt_raft_fsm_init(struct pt_raft_fsm *f, struct pt_metastore *ms, struct raft *raft)
{
    *f = (struct pt_raft_fsm){
        .fsm =
            {
                .version = 1,
                .data = f,
                .apply = apply_cb,
                .snapshot = snapshot_cb,
                .restore = restore_cb,
                .snapshot_finalize = NULL,
                .snapshot_async = NULL,
            },
        .ms = ms,
        .raft = raft,
    };
}

void pt_raft_fsm_attach(struct pt_raft_fsm *f, struct raft *raft)
{
    f->raft = raft;
}
