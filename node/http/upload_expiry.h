/*
 * upload_expiry.h - dropping upload sessions that nobody will finish: once at start-up
 * (recovery, then a sweep of stray files) and then periodically (sessions idle longer than
 * upload_ttl). Both run on the main thread, never on an HTTP loop.
 *
 * The rule both follow: a session's file and record are deleted only when its record was
 * read and found expired, or its file found gone or cut short (nothing left to resume).
 * A record that cannot be read or decoded, a walk that fails and an I/O error all keep the
 * session: deleting is never the answer to not knowing.
 */
#ifndef PT_UPLOAD_EXPIRY_H
#define PT_UPLOAD_EXPIRY_H

#include <stddef.h>
#include <stdint.h>

struct pt_node;

/*
 * Start-up, before any worker runs: brings each session back in line with its file (the
 * record is written after the data, so a file may be longer than its record says) and drops
 * the expired and unrecoverable ones; then, only if that walk over the records completed,
 * removes upload files that belong to no session. node (borrowed) must have ms, bs and cfg
 * set. Counts go to *resumed and *dropped. Returns 0, or the walk's error (logged; nothing
 * was swept).
 */
int pt_upload_expiry_recover(struct pt_node *node, int64_t now_ms, unsigned *resumed,
                             unsigned *dropped);

/* One periodic pass over every session (pt_upload_expiry_check for each); returns how many
 * were dropped. */
unsigned pt_upload_expiry_pass(struct pt_node *node);

/*
 * Drops session id (borrowed) if it has been idle for upload_ttl, deciding on the current
 * record, not on seen (seen_len bytes, borrowed: the record as a walk read it earlier, only
 * used to pass over sessions that were fresh then, as a concurrent PATCH can only make them
 * fresher). Under the session's busy mark (pt_node_upload_acquire) it re-reads the record,
 * reads the clock, and deletes file and record only if still expired; a busy session is left
 * alone. Returns 1 if the session was dropped, else 0.
 */
int pt_upload_expiry_check(struct pt_node *node, const char *id, const void *seen, size_t seen_len);

#endif
