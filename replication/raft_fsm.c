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
 * writing anything and without halting. Failing the callback would make raft 0.15 turn this
 * server unavailable for good, so the entry is held back in memory instead (raft_fsm.h:
 * pending), in log order with every entry after it, and written by pt_raft_fsm_drain once
 * space is back: a server on a full disk stops applying, corrupts nothing, and catches up by
 * itself. Snapshots are not taken while entries are held back (the store is behind raft), and
 * a snapshot restore below the reserve is refused.
 *
 * Errors cross the boundary once: PT_E_* from the metastore and FSM become RAFT_* codes for
 * raft here, and RAFT_* codes become PT_E_* for callers through pt_raft_fsm_err.
 */
#include "raft_fsm.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diskspace.h"
#include "err.h"
#include "fsm.h"
#include "log.h"
#include "metastore.h"
#include "metrics.h"
#include "raft_snapshot.h"

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

/* An entry committed while the disk was below its reserve (see raft_fsm.h). */
struct pt_raft_pending {
    struct pt_raft_pending *next;
    uint64_t index;
    size_t len;
    unsigned char cmd[]; /* the encoded command */
};

/* Queues a copy of cmd (len bytes) at index. 0, or PT_E_DISK_FULL/PT_E_NOMEM when it cannot
 * be held (the caller halts). */
static int hold_back(struct pt_raft_fsm *f, uint64_t index, const void *cmd, size_t len)
{
    if (f->pending_bytes + len > PT_RAFT_PENDING_MAX_BYTES) {
        pt_log(PT_LOG_ERROR, "full disk: too many entries held back; restart once space is freed",
               "{s:I,s:I}", "index", (json_int_t)index, "held_bytes", (json_int_t)f->pending_bytes);
        return PT_E_DISK_FULL;
    }
    struct pt_raft_pending *p = malloc(sizeof(*p) + len);
    if (p == NULL)
        return PT_E_NOMEM;
    p->next = NULL;
    p->index = index;
    p->len = len;
    memcpy(p->cmd, cmd, len);
    if (f->pending == NULL) {
        f->pending_tail = &f->pending;
        if (!f->hold)
            pt_log(PT_LOG_WARN, "raft apply paused: free disk space below the reserve", "{s:I}",
                   "index", (json_int_t)index);
    }
    *f->pending_tail = p;
    f->pending_tail = &p->next;
    f->n_pending++;
    f->pending_bytes += len;
    if (!f->hold) {
        f->n_disk_refused++;
        f->disk_stopped = true;
    }
    return 0;
}

void pt_raft_fsm_hold(struct pt_raft_fsm *f, bool on)
{
    f->hold = on;
}

int pt_raft_fsm_drain(struct pt_raft_fsm *f)
{
    int applied = 0;
    if (f->hold)
        return 0; /* the store is being restored off the loop: nothing may be written */
    while (f->pending != NULL) {
        struct pt_raft_pending *p = f->pending;
        struct pt_fsm_result res;
        int rv = pt_metastore_halted(f->ms);
        if (rv == 0)
            rv = pt_fsm_apply(f->ms, p->cmd, p->len, p->index, &res);
        if (rv == PT_E_DISK_FULL)
            return applied;
        if (rv != 0) {
            pt_metastore_halt(f->ms, rv);
            pt_log(PT_LOG_ERROR,
                   "raft apply failed; this region applies no further entry until restart",
                   "{s:I,s:s}", "index", (json_int_t)p->index, "error", pt_err_message(rv));
            return rv;
        }
        f->n_applied++;
        f->n_blob_changes += (uint64_t)res.blobs;
        f->pending = p->next;
        f->n_pending--;
        f->pending_bytes -= p->len;
        free(p);
        applied++;
    }
    if (f->disk_stopped) {
        pt_log(PT_LOG_INFO, "raft apply resumed: free disk space is back", "{s:I}", "index",
               (json_int_t)pt_metastore_applied_index(f->ms));
        f->disk_stopped = false;
    }
    return applied;
}

void pt_raft_fsm_release(struct pt_raft_fsm *f)
{
    while (f->pending != NULL) {
        struct pt_raft_pending *p = f->pending;
        f->pending = p->next;
        free(p);
    }
    f->n_pending = 0;
    f->pending_bytes = 0;
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
    if (f->pending != NULL) {
        rv = pt_raft_fsm_drain(f);
        if (rv < 0)
            return to_raft_err(rv);
    }
    struct pt_fsm_result res;
    const void *cmd;
    size_t cmd_len;
    rv = pt_raft_entry_unframe(buf, &cmd, &cmd_len) == 0
             ? (f->pending != NULL || f->hold ? PT_E_DISK_FULL
                                              : pt_fsm_apply(f->ms, cmd, cmd_len, index, &res))
             : PT_E_CORRUPT;
    if (rv == PT_E_DISK_FULL) {
        rv = hold_back(f, index, cmd, cmd_len);
        if (rv == 0) {
            *result = (void *)(intptr_t)PT_E_DISK_FULL;
            return 0;
        }
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
    if (f->pending != NULL)
        return RAFT_BUSY; /* the store is behind raft's applied index: not a snapshot of it */
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

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- snapshots by reference (version 3) ------------------------------------------------ */

/* One snapshot being taken: pinned in the loop, written in the pool, released in the loop. */
struct pt_raft_snap_job {
    struct pt_metastore_pin *pin;
    struct raft_buffer buf; /* the descriptor raft stores (bufs[0]) */
    unsigned char desc[PT_SNAPDESC_LEN];
    int rv; /* the pool's outcome, read in finalize */
    uint64_t size, ms;
};

static int snapshot_file_cb(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct pt_raft_fsm *f = fsm->data;
    if (f->pending != NULL || f->job != NULL || f->hold)
        return RAFT_BUSY; /* behind raft's applied index, one is still being written, or the
                           * store is being restored */
    struct pt_raft_snap_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return RAFT_NOMEM;
    int rv = pt_metastore_pin(f->ms, &j->pin);
    if (rv == 0 && pt_metastore_pin_index(j->pin) == 0)
        rv = PT_E_UNAVAILABLE; /* nothing applied yet */
    if (rv != 0) {
        pt_metastore_unpin(j->pin);
        free(j);
        if (rv != PT_E_UNAVAILABLE)
            pt_log(PT_LOG_ERROR, "raft snapshot not taken", "{s:s}", "error", pt_err_message(rv));
        /* RAFT_BUSY: raft tries again later; any other error would stop this server */
        return RAFT_BUSY;
    }
    j->buf.base = j->desc;
    j->buf.len = sizeof(j->desc);
    j->rv = PT_E_INTERNAL; /* until the pool wrote the file */
    f->job = j;
    *bufs = &j->buf;
    *n_bufs = 1;
    return 0;
}

/* Thread pool: reads f->sdir, f->self_id, f->job (set before, untouched until finalize). */
static int snapshot_async_cb(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct pt_raft_fsm *f = fsm->data;
    struct pt_raft_snap_job *j = f->job;
    (void)bufs;
    (void)n_bufs;
    if (j == NULL)
        return RAFT_INVALID;
    uint64_t t0 = mono_ms();
    struct pt_snapdesc d;
    j->rv = pt_snapfile_write(f->sdir, j->pin, f->self_id, &d);
    j->ms = mono_ms() - t0;
    if (j->rv != 0)
        return to_raft_err(j->rv);
    pt_snapdesc_encode(&d, j->desc);
    j->size = d.size;
    uint64_t busy = atomic_load(&f->restoring);
    pt_snapfile_prune(f->sdir, 2, &busy, busy != 0 ? 1 : 0);
    return 0;
}

static int snapshot_finalize_cb(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct pt_raft_fsm *f = fsm->data;
    struct pt_raft_snap_job *j = f->job;
    (void)bufs;
    *n_bufs = 0;
    if (j == NULL)
        return 0;
    f->job = NULL;
    if (j->rv == 0) {
        f->n_snapshots++;
        f->snapshot_bytes = j->size;
        f->snapshot_bytes_total += j->size;
        f->snapshot_ms_total += j->ms;
        pt_metrics_snapshot(PT_METRICS_SNAP_WRITTEN, j->size, j->ms);
        pt_log(PT_LOG_INFO, "raft snapshot written", "{s:I,s:I,s:I}", "applied_index",
               (json_int_t)pt_metastore_pin_index(j->pin), "bytes", (json_int_t)j->size, "ms",
               (json_int_t)j->ms);
    } else {
        f->n_snapshot_failed++;
        pt_log(PT_LOG_ERROR, "raft snapshot failed", "{s:s}", "error", pt_err_message(j->rv));
    }
    pt_metastore_unpin(j->pin);
    free(j);
    return 0;
}

int pt_raft_fsm_use_files(struct pt_raft_fsm *f, const char *sdir, uint64_t self_id)
{
    int n = snprintf(f->sdir, sizeof(f->sdir), "%s", sdir);
    if (n < 0 || (size_t)n >= sizeof(f->sdir)) {
        f->sdir[0] = '\0';
        return PT_E_TOO_LARGE;
    }
    f->self_id = self_id;
    f->fsm.version = 3;
    f->fsm.snapshot = snapshot_file_cb;
    f->fsm.snapshot_async = snapshot_async_cb;
    f->fsm.snapshot_finalize = snapshot_finalize_cb;
    return 0;
}

/* Restores the file a descriptor names. 0, or a PT_E_* (the store is then unchanged, or at
 * index 0 and halted: see pt_metastore_restore_stream). */
static int restore_file(struct pt_raft_fsm *f, const struct pt_snapdesc *d)
{
    if (f->sdir[0] == '\0')
        return PT_E_UNSUPPORTED;
    uint64_t t0 = mono_ms();
    atomic_store(&f->restoring, d->index);
    int rv = pt_snapfile_restore(f->ms, f->sdir, d);
    atomic_store(&f->restoring, 0);
    if (rv == 0) {
        uint64_t ms = mono_ms() - t0;
        f->n_restored_files++;
        f->restore_ms_total += ms;
        f->restore_bytes_total += d->size;
        pt_metrics_snapshot(PT_METRICS_SNAP_RESTORED, d->size, ms);
        pt_log(PT_LOG_INFO, "raft snapshot file restored", "{s:I,s:I,s:I}", "applied_index",
               (json_int_t)d->index, "bytes", (json_int_t)d->size, "ms", (json_int_t)ms);
    }
    return rv;
}

static int restore_cb(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct pt_raft_fsm *f = fsm->data;
    uint64_t index;
    struct pt_snapdesc d;
    int rv = pt_metastore_halted(f->ms);
    if (rv != 0)
        return to_raft_err(rv);
    /* a descriptor (raft_snapshot.h) or a whole stream of the previous version */
    bool by_ref = pt_snapdesc_is(buf->base, buf->len);
    uint64_t size = buf->len;
    if (by_ref) {
        rv = pt_snapdesc_parse(buf->base, buf->len, &d);
        index = d.index;
        size = d.size;
    } else {
        rv = pt_metastore_snapshot_index(buf->base, buf->len, &index);
    }
    if (rv == 0 && index > pt_metastore_applied_index(f->ms) && pt_disk_low(size)) {
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
        rv = by_ref ? restore_file(f, &d) : pt_metastore_restore(f->ms, buf->base, buf->len);
    if (rv != 0) {
        pt_log(PT_LOG_ERROR, "raft snapshot restore failed", "{s:s,s:b}", "error",
               pt_err_message(rv), "from_file", by_ref);
        return to_raft_err(rv);
    }
    /* raft applies again every entry after the snapshot: what was held back is obsolete */
    pt_raft_fsm_release(f);
    f->disk_stopped = false;
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
