/*
 * raft_fsm.h - the replicated state machine as canonical/raft 0.15 sees it: a struct raft_fsm
 * (version 1: apply, snapshot, restore) over a struct pt_metastore (DESIGN.md sections 3, 4).
 *
 * apply     decodes the entry as an encoded portolan.Command and hands it to pt_fsm_apply with
 *           the entry's log index, so entries re-applied after a restart or a snapshot restore
 *           are skipped by index. raft 0.15 does not pass the index to apply; it is
 *           raft_last_applied(raft) + 1, because raft applies entries strictly in order and
 *           advances last_applied only after apply returns 0 (barriers and configuration
 *           entries advance it too).
 * snapshot  pt_metastore_snapshot_with into one buffer from raft_malloc/raft_realloc, returned
 *           in a one-element array from raft_malloc. Version 1 semantics: raft owns both from
 *           then on and frees them (raft_free) once the snapshot is stored.
 * restore   takes ownership of buf->base on success and releases it with raft_free; on failure
 *           the buffer stays raft's (raft 0.15 frees it itself). It replaces the metastore's
 *           replicated state with pt_metastore_restore, unless the metastore has already
 *           applied at least the snapshot's applied index: on restart the store is usually
 *           ahead of raft's last snapshot, and committed state only moves forward, so a store
 *           at index A already holds everything a snapshot at index <= A holds.
 *
 * Snapshots by reference (pt_raft_fsm_use_files, what raft_node uses): version 3 instead, the
 * state written to a file off the raft loop and raft given only a small descriptor of it
 * (raft_snapshot.h); restore then accepts a descriptor or a whole stream as above. The
 * version 1 callbacks stay for the in-process raft fixture tests and old snapshots.
 *
 * The snapshot carries the metastore's own applied index, which can be ahead of the raft
 * index the snapshot is taken at (after a restart raft re-applies entries the store skips).
 * A server that installs it resumes from that index and skips the entries in between, so
 * every server applies each command exactly once.
 *
 * Threads: every callback runs on the thread that drives the raft instance (its libuv loop or
 * the test fixture), except snapshot_async (thread pool, through io->async_work); the
 * counters below are written on the raft thread only.
 */
#ifndef PT_RAFT_FSM_H
#define PT_RAFT_FSM_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

struct pt_metastore;
struct pt_raft_pending;
struct pt_raft_snap_job;

/* Embedded by its user; needs no teardown of its own. */
struct pt_raft_fsm {
    struct raft_fsm fsm;     /* hand &fsm to raft_init / raft_fixture_grow; fsm.data = this */
    struct pt_metastore *ms; /* borrowed: must outlive the raft instance */
    struct raft *raft;       /* borrowed: the instance this FSM serves, read for the index */
    /* counters, for metrics and tests */
    uint64_t n_applied;         /* commands applied (a failed precondition counts) */
    uint64_t n_skipped;         /* entries already applied before (index <= applied index) */
    uint64_t n_snapshots;       /* snapshots taken */
    uint64_t n_restored;        /* snapshots written into the metastore */
    uint64_t n_restore_skipped; /* snapshots the metastore had already applied */
    uint64_t n_disk_refused;    /* entries held back, snapshots refused below the disk reserve */
    bool disk_stopped;          /* applying is paused below the disk reserve */
    /* Entries committed while the disk was below its reserve, in log order, waiting to be
     * written (pt_raft_fsm_drain); owned copies. */
    struct pt_raft_pending *pending, **pending_tail;
    size_t n_pending, pending_bytes;
    uint64_t n_blob_changes; /* commands that changed blob locations or regions */
    bool hold;               /* a snapshot file is being restored off the loop (pt_raft_fsm_hold) */
    /* Snapshots by reference (pt_raft_fsm_use_files); sdir[0] == 0: in-memory streams. */
    char sdir[4200];              /* the snapshots directory */
    uint64_t self_id;             /* raft id written into descriptors */
    struct pt_raft_snap_job *job; /* the snapshot being taken (owned), or NULL */
    _Atomic uint64_t restoring;   /* index of the file being restored: never pruned */
    uint64_t n_snapshot_failed;   /* snapshots whose file could not be written */
    uint64_t snapshot_bytes;      /* size of the last snapshot file */
    uint64_t snapshot_bytes_total;
    uint64_t snapshot_ms_total; /* time spent writing snapshot files (pool thread) */
    uint64_t n_restored_files;  /* restores from a snapshot file */
    uint64_t restore_ms_total;  /* time spent in them (raft loop) */
    uint64_t restore_bytes_total;
};

/*
 * Initializes f over ms (borrowed) for raft (borrowed; may be NULL and attached later with
 * pt_raft_fsm_attach, e.g. when raft_fixture_grow creates the instance). The raft instance
 * must be attached before raft_start: apply refuses to run without it (RAFT_INVALID).
 */
void pt_raft_fsm_init(struct pt_raft_fsm *f, struct pt_metastore *ms, struct raft *raft);
void pt_raft_fsm_attach(struct pt_raft_fsm *f, struct raft *raft);
/*
 * Switches f to snapshots by reference (raft_snapshot.h), fsm version 3:
 *   snapshot        (raft loop) pins the metastore (pt_metastore_pin): microseconds;
 *   snapshot_async  (thread pool) writes the pinned state as <sdir>/<index>.pts with bounded
 *                   memory and fills the one buffer raft stores and sends: the descriptor
 *                   (PT_SNAPDESC_LEN bytes); then prunes files but the newest two;
 *   snapshot_finalize (raft loop) releases the pin and the buffers (raft owns none of them).
 * restore accepts a descriptor (restores from its file, which must be in sdir: the transport
 * fetches it before raft sees the message, raft_node_snap.c) and still a whole stream of the
 * previous version. sdir (borrowed, copied) is the snapshots directory, self_id this region's
 * raft id. Returns 0 or PT_E_TOO_LARGE (sdir too long). Call before raft_start.
 */
int pt_raft_fsm_use_files(struct pt_raft_fsm *f, const char *sdir, uint64_t self_id);
/* Frees the entries still held back (pending); f stays usable. */
void pt_raft_fsm_release(struct pt_raft_fsm *f);

/*
 * Full disk. canonical/raft 0.15 turns a server whose apply callback fails into an
 * unavailable one for the rest of the process, so below the free-space reserve apply does not
 * fail: it keeps a copy of the entry (pending), answers RAFT_OK with the status
 * PT_E_DISK_FULL (a waiting writer hears "not applied here yet": the entry is committed and
 * will be applied), and writes nothing. Every later entry joins the queue behind it, so order
 * is kept; snapshots are refused (RAFT_BUSY: raft retries) while the queue is not empty, since
 * the store is behind raft's applied index. pt_raft_fsm_drain writes the queue once space is
 * back (called on a timer, and by apply itself before a new entry). At most
 * PT_RAFT_PENDING_MAX_BYTES are held: beyond, the store halts as for an I/O error (reads go
 * on; after a restart with space, raft re-applies the entries from its log).
 */
#define PT_RAFT_PENDING_MAX_BYTES (64u << 20)
/* Applies the held-back entries in order while space lasts. Returns the number applied, or a
 * negative PT_E_* when one failed for another reason (the store is then halted). */
int pt_raft_fsm_drain(struct pt_raft_fsm *f);
/*
 * While on, the store belongs to a restore running off the raft loop (raft_node_snap.c):
 * apply holds every entry back as on a full disk (pending, same bound; the status raft hands a
 * waiting writer is PT_E_DISK_FULL, "not applied here yet"), drain writes nothing and no
 * snapshot is taken. Once off, pt_raft_fsm_drain applies what was held back: entries at or
 * below the restored index are skipped by index.
 */
void pt_raft_fsm_hold(struct pt_raft_fsm *f, bool on);

/*
 * Outcome of a command, decoded from the `result` that raft hands to the raft_apply
 * callback. apply stores the command's status in the pointer value itself ((void *)(intptr_t)
 * status): nothing is allocated and nothing needs freeing, which matters because raft drops
 * the result of entries applied without a waiting request (followers, re-applied entries).
 * Returns 0 or the PT_E_* of the command's failed precondition (see pt_fsm_apply). Only
 * meaningful when the callback's status is 0; NULL decodes as 0 (an entry that was already
 * applied before a restart reports 0: no request waits for such an entry).
 */
int pt_raft_fsm_status(const void *result);

/*
 * A RAFT_* code (e.g. the status of a raft_apply callback) as a PT_E_*; 0 stays 0.
 *   RAFT_NOTLEADER, RAFT_BUSY       PT_E_UNAVAILABLE: not appended, safe to retry
 *   RAFT_LEADERSHIPLOST,            PT_E_UNAVAILABLE: outcome unknown, the entry may still be
 *   RAFT_SHUTDOWN, RAFT_CANCELED    committed by the next leader
 *   RAFT_NOMEM                      PT_E_NOMEM
 *   RAFT_CORRUPT                    PT_E_CORRUPT
 *   RAFT_IOERR, RAFT_NOSPACE        PT_E_IO
 *   RAFT_TOOBIG                     PT_E_TOO_LARGE
 *   anything else                   PT_E_INTERNAL
 * The callbacks translate the other way when pt_fsm_apply, snapshot or restore fail:
 * PT_E_NOMEM -> RAFT_NOMEM, PT_E_CORRUPT -> RAFT_CORRUPT, anything else -> RAFT_IOERR. A
 * failed apply leaves the entry unapplied and halts the metastore (pt_metastore_halt): raft
 * calls apply for it again at the next commit, and every such call and every restore is
 * refused with the halting error until the node restarts, so this server applies nothing
 * past the failed index (see raft_fsm.c).
 */
int pt_raft_fsm_err(int raft_err);

/*
 * Raft log entries carry an encoded Command framed for raft_uv, which stores and sends entry
 * data in 8-byte units (an entry whose length is not a multiple of 8 shifts every entry that
 * follows it in one message): an 8-byte little-endian length, the Command, zero padding to a
 * multiple of 8. pt_raft_entry_frame fills *out with a raft_malloc'd buffer (owned by the
 * caller until handed to raft_apply); pt_raft_entry_unframe returns the Command's bytes
 * inside an entry (borrowed), or -1 for an entry that is not framed so.
 */
int pt_raft_entry_frame(const void *cmd, size_t len, struct raft_buffer *out);
int pt_raft_entry_unframe(const struct raft_buffer *entry, const void **cmd, size_t *len);

#endif
