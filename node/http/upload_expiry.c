/*
 * upload_expiry.c - start-up recovery and periodic expiry of upload sessions (see
 * upload_expiry.h for the rule they share).
 *
 * Design. A session is a record in the metastore's local uploads column (written after each
 * append, api_upload.c; the appended bytes are not fsync'd until the final PUT, so after a
 * restart of the machine each session's file is verified against its record once) and a file under
 * uploads/ in the blob store. Requests work on a session under its busy mark (worker.c), so expiry
 * takes the same mark before it looks at the record it acts on: a walk's copy of the record (and a
 * clock read before the walk) may be older than a PATCH that has refreshed the session since.
 * Recovery runs before any worker exists, so it needs no marks.
 *
 * Transfers from other regions keep their sessions under the digest's hex with a record in
 * the transfers column instead; the sweep keeps their files too.
 */
#include "upload_expiry.h"

#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "blob_sync.h"
#include "blobstore.h"
#include "clock.h"
#include "digest.h"
#include "err.h"
#include "log.h"
#include "metastore.h"
#include "worker.h"

/* 1 if u has been idle for at least the node's upload_ttl at now_ms. */
static int idle_too_long(const struct pt_node *node, const struct pt_upload *u, int64_t now_ms)
{
    return now_ms - u->updated_ms >= (int64_t)node->cfg.upload_ttl_ms;
}

/* Deletes the session's file, then (only once that is done) its record. */
static int drop_session(struct pt_node *node, const char *id)
{
    int rv = pt_blobstore_upload_abort(node->bs, id);
    if (rv == 0)
        rv = pt_metastore_upload_delete(node->ms, id);
    if (rv != 0)
        pt_log(PT_LOG_WARN, "cannot remove an upload session", "{s:s,s:s}", "id", id, "error",
               pt_err_message(rv));
    return rv;
}

/* Start-up ------------------------------------------------------------------------------ */

struct recover_ctx {
    struct pt_node *node;
    int64_t now_ms;
    int rebooted; /* the machine restarted since the last start: unsynced bytes may be lost */
    unsigned resumed, dropped;
};

static int recover_session(const char *id, const void *val, size_t len, void *arg)
{
    struct recover_ctx *rc = arg;
    struct pt_upload u;
    int rv = pt_upload_decode(val, len, &u);
    if (rv != 0) {
        pt_log(PT_LOG_ERROR, "unreadable upload record: session kept", "{s:s,s:s}", "id", id,
               "error", pt_err_message(rv));
        return 0;
    }
    if (!idle_too_long(rc->node, &u, rc->now_ms)) {
        rv = pt_blobstore_upload_repair(rc->node->bs, &u);
        /* A chunk is answered before it is synced (api_upload.c): after a power loss the
         * file must still hash to the recorded state, else the session is dropped. */
        if (rv == 0 && rc->rebooted)
            rv = pt_blobstore_upload_verify(rc->node->bs, &u);
        /* Its file gone because a final PUT stored the blob just before a crash: the
         * session stays, and closing it again links the blob. */
        if (rv == PT_E_BLOB_UPLOAD_INVALID && pt_blobstore_upload_stored(rc->node->bs, &u, NULL))
            rv = 0;
        if (rv == 0) {
            rc->resumed++;
            return 0;
        }
        if (rv != PT_E_BLOB_UPLOAD_INVALID) { /* not known to be lost: try again next time */
            pt_log(PT_LOG_ERROR, "cannot check an upload file: session kept", "{s:s,s:s}", "id", id,
                   "error", pt_err_message(rv));
            return 0;
        }
    }
    /* expired, or its file missing or shorter than the record: nothing to resume */
    if (drop_session(rc->node, id) == 0)
        rc->dropped++;
    return 0;
}

/* For the sweep: 1 unless the session is known to be gone (a failed read keeps the file). */
static int is_live_upload(const char *id, void *arg)
{
    struct pt_node *node = arg;
    void *val;
    size_t len;
    int rv = pt_metastore_upload_get(node->ms, id, &val, &len);
    if (rv != PT_E_BLOB_UPLOAD_UNKNOWN) {
        free(val);
        return 1;
    }
    /* a transfer from another region: its session is named after the digest */
    return pt_blob_sync_session_live(node->ms, id);
}

int pt_upload_expiry_recover(struct pt_node *node, int64_t now_ms, unsigned *resumed,
                             unsigned *dropped)
{
    struct recover_ctx rc = {.node = node, .now_ms = now_ms};
    rc.rebooted = pt_blobstore_boot_changed(node->bs);
    int rv = pt_metastore_upload_foreach(node->ms, recover_session, &rc);
    *resumed = rc.resumed;
    *dropped = rc.dropped;
    if (rv != 0) {
        /* Sessions the walk did not reach were neither checked nor are they known to be
         * gone: sweeping now could delete their files. */
        pt_log(PT_LOG_ERROR, "upload recovery failed: stray upload files are not swept", "{s:s}",
               "error", pt_err_message(rv));
        return rv;
    }
    /* every session was checked against this boot: the next start verifies only after a
     * restart of the machine */
    if (rc.rebooted && (rv = pt_blobstore_boot_note(node->bs)) != 0)
        pt_log(PT_LOG_WARN, "cannot note the boot id", "{s:s}", "error", pt_err_message(rv));
    rv = pt_blobstore_sweep_uploads(node->bs, is_live_upload, node);
    if (rv != 0)
        pt_log(PT_LOG_WARN, "upload sweep stopped", "{s:s}", "error", pt_err_message(rv));
    return 0;
}

/* Periodic --------------------------------------------------------------------------------- */

int pt_upload_expiry_check(struct pt_node *node, const char *id, const void *seen, size_t seen_len)
{
    struct pt_upload u;
    if (seen != NULL && pt_upload_decode(seen, seen_len, &u) == 0 &&
        !idle_too_long(node, &u, pt_clock_wall_ms()))
        return 0;
    if (pt_node_upload_acquire(node, id) != 0)
        return 0; /* in use right now: not abandoned */
    void *val;
    size_t len;
    int dropped = 0;
    int rv = pt_metastore_upload_get(node->ms, id, &val, &len);
    if (rv == 0) {
        rv = pt_upload_decode(val, len, &u);
        free(val);
        if (rv != 0)
            pt_log(PT_LOG_WARN, "unreadable upload record: session kept", "{s:s,s:s}", "id", id,
                   "error", pt_err_message(rv));
        else if (idle_too_long(node, &u, pt_clock_wall_ms()))
            dropped = drop_session(node, id) == 0;
    }
    pt_node_upload_release(node, id);
    return dropped;
}

struct expire_ctx {
    struct pt_node *node;
    unsigned dropped;
};

static int expire_session(const char *id, const void *val, size_t len, void *arg)
{
    struct expire_ctx *ec = arg;
    ec->dropped += (unsigned)pt_upload_expiry_check(ec->node, id, val, len);
    return 0;
}

unsigned pt_upload_expiry_pass(struct pt_node *node)
{
    struct expire_ctx ec = {.node = node};
    int rv = pt_metastore_upload_foreach(node->ms, expire_session, &ec);
    if (rv != 0)
        pt_log(PT_LOG_WARN, "upload expiry walk stopped", "{s:s}", "error", pt_err_message(rv));
    return ec.dropped;
}
