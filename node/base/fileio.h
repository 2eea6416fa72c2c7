/*
 * fileio.h - the two steps every durable small-file write takes: writing a whole buffer
 * through short writes and EINTR, and making a new directory entry durable.
 *
 * Used by the signing key file (auth/jwt.c), the audit log (audit/audit.c) and whatever else
 * writes a file that must survive a crash whole.
 * Threads: any; no shared state.
 */
#ifndef PT_FILEIO_H
#define PT_FILEIO_H

#include <stddef.h>

/* Writes all of p[0..n) (borrowed) to fd, retrying short writes and EINTR. 0, or -1 with
 * errno set (a write that wrote nothing counts as an error). */
int pt_write_all(int fd, const void *p, size_t n);

/* fsyncs the directory that holds path (borrowed), so an entry just created or renamed there
 * survives a crash. 0, or -1 with errno set (ENAMETOOLONG beyond PATH_MAX). */
int pt_fsync_parent(const char *path);

#endif
