/*
 * tmpdir.h - a fresh temporary directory for a unit test's on-disk state, and its removal.
 *
 * The tests of the stores (metastore, blob store, FSM, raft adapter) each work in a directory
 * of their own under $TMPDIR (or /tmp when it is unset), made unique by mkdtemp, and remove it
 * with everything in it when they end.
 */
#ifndef PT_TEST_TMPDIR_H
#define PT_TEST_TMPDIR_H

#include <stddef.h>

/* Creates <$TMPDIR or /tmp>/<prefix>XXXXXX and writes its path into dir (len bytes, borrowed);
 * fails the test if the path does not fit or the directory cannot be made. */
void pt_tmpdir_create(char *dir, size_t len, const char *prefix);

/* Removes dir (borrowed) and everything under it, without following symlinks; returns nftw's
 * result: 0 once everything is gone. */
int pt_tmpdir_remove(const char *dir);

#endif
