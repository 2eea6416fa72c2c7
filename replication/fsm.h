/*
 * fsm.h - the replicated state machine: the one function that changes replicated state
 * (DESIGN.md sections 3 and 4).
 *
 * Every region applies the same committed commands in the same order through pt_fsm_apply
 * and therefore holds identical repos, manifests, tags, blob links, referrers and blob
 * locations. Apply is deterministic (no clock, randomness or hash-order iteration of its own:
 * time comes in the command) and idempotent by log index, so replaying entries after a crash
 * or a snapshot restore is harmless.
 *
 * Threads: one thread applies at a time (the committer or Raft loop thread); readers of the
 * metastore may run concurrently on any thread and see each command entirely or not at all.
 */
#ifndef PT_FSM_H
#define PT_FSM_H

#include <stddef.h>
#include <stdint.h>

struct pt_metastore;

struct pt_fsm_result {
    int status; /* 0, or the PT_E_* of the first operation whose precondition failed */
    int blobs;  /* 1 when blob locations or the regions changed (blob replication looks) */
    uint64_t first_index; /* a write id applied before: the index it was applied at, else 0 */
    unsigned collected;   /* blobs a CollectBlobs operation collected */
    unsigned retained_tags, retained_manifests; /* what a Retain operation deleted */
};

/* Write ids (replication/command.h): a command carrying one is applied at most once. Its
 * outcome (index, status) is recorded with it, in the same WriteBatch, and kept until the log
 * is PT_FSM_WRITE_ID_WINDOW entries past it: a command applied at index i forgets (at most
 * PT_FSM_WRITE_ID_EXPIRE_MAX of) the ids applied below i - PT_FSM_WRITE_ID_WINDOW. Both are
 * functions of the log alone, so every region holds the same ids. A proposer must send a
 * write again within the window (in practice: within its write timeout). */
#define PT_FSM_WRITE_ID_WINDOW     65536
#define PT_FSM_WRITE_ID_EXPIRE_MAX 64

/*
 * Decodes buf (len bytes, borrowed: an encoded portolan.Command) and applies its operations
 * in order, each seeing the effects of the earlier ones, as ONE RocksDB WriteBatch (sync=0:
 * for Raft, whose log is the durable record) that also records index as the applied index
 * (index 0 applies without recording an index).
 *
 * - index != 0 and index <= the applied index: already applied; nothing happens, returns 0
 *   with result->status 0.
 * - index != 0 and the command's write id was applied before (within the window above): no
 *   operation is applied, the applied index advances, returns 0 with result->status the first
 *   application's status and result->first_index its index. Otherwise the id is recorded with
 *   the command's index and status. Index 0 (no index recorded) ignores write ids.
 * - An operation's precondition fails: no operation of the command is applied, the applied
 *   index still advances, returns 0 with result->status set (for example
 *   PT_E_MANIFEST_BLOB_UNKNOWN, PT_E_MANIFEST_UNKNOWN, PT_E_BLOB_UNKNOWN, PT_E_SIZE_INVALID,
 *   PT_E_DIGEST_INVALID, PT_E_NAME_INVALID). These outcomes are identical in every region.
 * - buf is not a valid Command of version PT_COMMAND_VERSION: returns PT_E_CORRUPT (also in
 *   result->status); nothing is applied and the index does not advance.
 * - I/O failure (PT_E_IO, PT_E_CORRUPT stored data, PT_E_NOMEM): returns it (also in
 *   result->status); nothing is applied, the index does not advance and the store is halted
 *   (pt_metastore_halt): every later apply returns that error until the store is reopened.
 * - The store is halted: returns its halting error; nothing happens.
 * A negative return means this region cannot follow the log: the caller must not apply later
 * entries (they would be applied on top of a state that lacks this one). A command that does
 * not decode does not halt the store by itself; a caller for which it was committed (Raft)
 * halts it (pt_metastore_halt).
 *
 * Operations (proto/command.proto):
 *   PutManifest    creates the repo if missing; every child must be a manifest of the repo and
 *                  every blob linked into it (else PT_E_MANIFEST_BLOB_UNKNOWN); a new manifest
 *                  must hash to its digest (PT_E_DIGEST_INVALID), an existing one is kept as
 *                  it is; points each tag at it (updated = the command's time_ms); adds the
 *                  referrers entry when it has a subject.
 *   PutTag         the manifest must exist (PT_E_MANIFEST_UNKNOWN).
 *   DeleteTag      PT_E_MANIFEST_UNKNOWN if the tag is absent.
 *   DeleteManifest PT_E_MANIFEST_UNKNOWN if absent; removes it, every tag of the repo pointing
 *                  at it and its referrers entry.
 *   LinkBlob       creates the repo if missing; PT_E_SIZE_INVALID if already linked with
 *                  another size; PT_E_BLOB_UNKNOWN if the blob was collected and not stored
 *                  by an upload (BlobStored without replica) since.
 *   UnlinkBlob     PT_E_BLOB_UNKNOWN if not linked.
 *   BlobStored     records the op's region (the command's region when empty) as a holder;
 *                  PT_E_SIZE_INVALID if the blob is recorded with another size. With replica
 *                  set, PT_E_BLOB_UNKNOWN when no region holds the blob (collected).
 *   CollectBlobs   for each candidate, as of the command's time_ms and grace_ms: removes its
 *                  links to repositories none of whose manifests reference it that were
 *                  last linked at least grace_ms before; then, if no link and no reference is
 *                  left, its blob_locations record, and records locally that this region is
 *                  to delete its file (node/store/metastore_gc.c). A candidate that is
 *                  referenced or linked again since stays. PT_E_UNAVAILABLE on a store
 *                  without the index (identical everywhere: the index is replicated state).
 *                  Its referrers (repo, subject, digest) are deleted as by DeleteManifest when,
 *                  re-checked, the subject is gone from the repo, no tag names the referrer
 *                  and it was pushed at least grace_ms before (its blobs go in a later
 *                  collection).
 *                  Its children (repo, digest): a manifest that lost the last index of repo
 *                  naming it (DeleteManifest of that index) is deleted as by DeleteManifest
 *                  when, re-checked, no index names it again, no tag names it and it lost its
 *                  index at least grace_ms before; its orphan record goes unless only too
 *                  young.
 *                  With forget_after_ms set (>= PT_GC_FORGET_MIN_MS, else PT_E_CONFIG): forgets
 *                  at most PT_COMMAND_COLLECT_MAX records of blobs collected at least that
 *                  long before time_ms, oldest first (LinkBlob still refuses a blob no region
 *                  holds when proposed at or before the newest forgotten collection).
 *                  PutManifest and DeleteManifest keep the reference index, LinkBlob the
 *                  link time (every LinkBlob, including of a linked blob, restarts the grace).
 *   PutQuota .. DeleteThrottle (quotas, throttling settings): validated (PT_E_CONFIG), idempotent,
 *                  bounded (PT_E_TOO_LARGE); replicated/fsm_quota.c. LinkBlob of a blob not
 *                  linked yet and PutManifest are refused with PT_E_QUOTA_EXCEEDED when the
 *                  distinct blobs they add would cross a quota (node/store/metastore_quota.c).
 *   PutLock .. Retain (locks, immutable tags, retention): validated (PT_E_CONFIG), bounded
 *                  (PT_E_TOO_LARGE), idempotent; fsm_policy.c and metastore_policy.c. Locks and
 *                  immutable tag rules are checked by PutManifest, PutTag, DeleteTag,
 *                  DeleteManifest and UnlinkBlob before they write (PT_E_LOCKED,
 *                  PT_E_IMMUTABLE). Retain re-checks each item and deletes those still due.
 *   PutUser .. RevokeJwt (access control): every field validated (PT_E_CONFIG when
 *                  malformed), idempotent; the rules are drawn at the top of fsm_auth.c.
 *                  A committed command that stages one moves pt_metastore_auth_generation.
 * Below the free-space reserve (base/diskspace.h) it returns PT_E_DISK_FULL without writing
 * or halting: the caller offers the same index again later.
 * ms is borrowed; result is borrowed and always written.
 */
int pt_fsm_apply(struct pt_metastore *ms, const void *buf, size_t len, uint64_t index,
                 struct pt_fsm_result *result);

/* One command of a group (pt_fsm_apply_group); owned by the caller. */
struct pt_fsm_cmd {
    const void *buf; /* in: an encoded portolan.Command, borrowed */
    size_t len;
    uint64_t index;              /* out: the index it was applied at; 0 if not applied */
    struct pt_fsm_result result; /* out */
};

/*
 * Group commit (a single region, where this store is the log): applies cmds[0..n) in order at
 * the indexes that follow the applied index, each seeing the effects of the earlier ones, with
 * the rules of pt_fsm_apply, and writes them all with ONE synced RocksDB write: nothing of the
 * group is visible to any reader before it is on disk, and all of it is visible when this
 * returns 0.
 * - Returns 0: every command is durable and visible. Each has its index and its status (0 or
 *   its failed precondition, which still takes an index), except one that does not decode:
 *   index 0 and status PT_E_CORRUPT, refused alone without taking an index.
 * - Returns a negative PT_E_* (I/O error while staging, failed write or fsync, allocation,
 *   or the store was already halted): nothing of the group is visible, every command has
 *   index 0 and that error as its status, the applied index is unchanged and the store is
 *   halted. (After a restart, a group whose fsync failed may still be found in the WAL: an
 *   error means "not applied in this process", never "certainly never applied".)
 * - Returns PT_E_DISK_FULL when free space is below the reserve (base/diskspace.h): nothing
 *   was written, every command has index 0 and that status, and the store is NOT halted.
 * Blocks for the fsync; one thread at a time, like pt_fsm_apply.
 */
int pt_fsm_apply_group(struct pt_metastore *ms, struct pt_fsm_cmd *cmds, size_t n);

#endif
