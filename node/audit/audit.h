/*
 * audit.h - the region's audit log: who did what to which repository, one JSON line per
 * event, each line chained to the one before it by its SHA-256.
 *
 * Role: the HTTP layer records every push, delete, denied pull, login and admin change here;
 * `portolan audit verify` and `portolan audit tail` read it back. It sits on base only, so
 * any layer above may write to it and the command-line client may read it.
 *
 * Format (one line, jansson, compact, keys in this order, then '\n'):
 *     {"time": "2026-12-06T20:41:19.123Z", "region": str, "identity": str|null,
 *      "client": str|null, "action": str|null, "repository": str|null,
 *      "reference": str|null, "status": int, "request_id": str|null, "detail": str|null,
 *      "prev": "<64 lowercase hex>"}
 *   "prev" is the SHA-256 of the previous line's bytes (without its '\n'); the first line of
 *   a fresh log carries 64 zeros. Lines written to stderr (to_stderr) carry "audit": true
 *   before "prev". Strings are cut to fixed bounds (AUDIT_*_MAX in audit.c) and bytes that
 *   are not UTF-8 are replaced by '?', so a line never exceeds PT_AUDIT_LINE_MAX bytes.
 *
 * Files: <data_dir>/audit/ (mode 0700) holds audit.log (the live file, mode 0600, written
 * with O_APPEND, one write() per line) and the rotated audit.log.1 (newest) ...
 * audit.log.<keep> (oldest). When a line would take audit.log past rotate_bytes, the file is
 * fdatasync'ed and renamed to audit.log.1 (older ones shift up, the one past keep is
 * removed) and the line starts a new audit.log; its "prev" is the hash of the rotated file's
 * last line, so the chain runs across files. On open the last line of audit.log (or of
 * audit.log.1 when audit.log is empty) is read, within PT_AUDIT_LINE_MAX bytes from the end,
 * so the chain continues across restarts.
 *
 * What the chain proves: an edited, removed, inserted or reordered line breaks it at the line
 * after the change (pt_audit_verify says where). It cannot show a change to the newest line
 * (nothing follows it yet) nor the removal of the oldest lines (the oldest remaining line is
 * taken as the start, as after rotation removed older files); keep copies elsewhere for that.
 *
 * Secrets: an event has no field for a password, token secret or JWT; callers put an
 * identity ("user:alice", "token:ci", "anonymous") where others would put credentials.
 *
 * Threads: pt_audit_record may be called from any number of threads at once (one mutex
 * orders the lines); open, close and verify from one thread each.
 */
#ifndef PT_AUDIT_H
#define PT_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Longest line written, '\n' included. */
#define PT_AUDIT_LINE_MAX 4096
/* Hex SHA-256 plus NUL. */
#define PT_AUDIT_HASH_HEX 65

struct pt_audit;

/* One event. Every pointer is borrowed for the call and may be NULL (written as null). */
struct pt_audit_event {
    const char *identity;   /* "user:alice", "token:ci", "anonymous" - never a secret */
    const char *client;     /* the client's address */
    const char *action;     /* "push", "pull" (denied pulls only), "delete", "login",
                               "admin.user.add", ... */
    const char *repository; /* repository name, or NULL */
    const char *reference;  /* tag or digest, or NULL */
    int status;             /* HTTP status of the answer */
    const char *request_id;
    const char *detail; /* free text: why refused, what changed */
};

/*
 * Opens the audit log under <data_dir>/audit/ (created 0700; audit.log created 0600) and
 * continues the chain from its last line. region (borrowed, copied) goes into every line.
 * With to_stderr, lines go to standard error instead and nothing is opened on disk (data_dir
 * may be NULL). rotate_bytes 0 never rotates; keep_files is how many rotated files stay
 * (0: a rotated file is removed; at most 10000). Returns 0 with *out (owned, close with
 * pt_audit_close), or PT_E_IO (a directory or file cannot be made or read), PT_E_CORRUPT (the last
 * line is longer than PT_AUDIT_LINE_MAX), PT_E_NOMEM, PT_E_CONFIG (bad arguments).
 */
int pt_audit_open(const char *data_dir, const char *region, int to_stderr, uint64_t rotate_bytes,
                  unsigned keep_files, struct pt_audit **out);

/* fdatasyncs and closes the live file and frees a (owned; NULL is ignored). */
void pt_audit_close(struct pt_audit *a);

/*
 * Appends one line for ev (borrowed) with the current time, rotating first when needed.
 * Thread-safe. Failures (disk full, rotation impossible) are logged with pt_log, never
 * returned: auditing does not fail a request. A line that could not be written leaves the
 * chain where it was, so verify shows nothing missing in between.
 */
void pt_audit_record(struct pt_audit *a, const struct pt_audit_event *ev);

/* The hex SHA-256 of the last line written (or read on open); for tests and status. */
void pt_audit_last_hash(struct pt_audit *a, char out[PT_AUDIT_HASH_HEX]);

/*
 * Verifies the chain of the files paths[0..n) (borrowed), given oldest first, line by line.
 * Writes to report (borrowed, may be NULL) one line per file checked and, at the first break,
 * "<file>:<line>: <why>" naming the line whose "prev" does not match the line before it (that
 * line or the one before was edited, or lines between them were removed or reordered) or that
 * is not an audit line. Sets *lines (may be NULL) to the number of lines checked. Returns 0
 * when the chain holds, 1 when it is broken, PT_E_IO when a file cannot be read, PT_E_NOMEM.
 */
int pt_audit_verify_files(const char *const *paths, size_t n, FILE *report, uint64_t *lines);

/*
 * Verifies a whole log: dir_or_file is a directory holding audit.log and its rotated files
 * (checked audit.log.<keep> ... audit.log.1, audit.log), or one file. Same report and returns
 * as pt_audit_verify_files; a directory without audit.log is PT_E_IO.
 */
int pt_audit_verify(const char *dir_or_file, FILE *report, uint64_t *lines);

/*
 * Lists the files of the log in dir (borrowed) oldest first: *paths (owned, n entries, each
 * owned; free with pt_audit_paths_free). Returns 0, PT_E_IO when dir has no audit.log,
 * PT_E_NOMEM.
 */
int pt_audit_list(const char *dir, char ***paths, size_t *n);
void pt_audit_paths_free(char **paths, size_t n);

#endif
