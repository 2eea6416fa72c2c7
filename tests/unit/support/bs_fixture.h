/*
 * bs_fixture.h - the fixture of the blob store tests (pt_bs_: blob store): a fresh store in a
 * temporary directory of its own, with fault-injecting fakes in its syscall table, and the
 * helpers the tests use to look at the files it writes.
 *
 * Design: restarts are simulated by closing the store and reopening it (pt_bs_restart); the
 * fakes are installed again on every open. They count their calls and fail the call that the
 * fault plan (pt_bs_fault) chooses; the plan is reset by pt_bs_setup before every test and
 * otherwise belongs to the test, which sets and resets its fields directly.
 *
 * Invariant: a test ends with as many open file descriptors as the process had before its
 * store was opened; pt_bs_teardown fails the test otherwise.
 */
#ifndef PT_TEST_BS_FIXTURE_H
#define PT_TEST_BS_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "blobstore.h"
#include "digest.h"

struct pt_bs_fixture {
    char dir[256]; /* short, so every path built from it fits in PATH_MAX */
    struct pt_blobstore *bs;
    int open_fds; /* before the store was opened: every test must end with as many */
};

/* Fault plan for the fake syscalls; reset before every test. A *_fail_at of n fails the n-th
 * call (1-based); 0 never fails. */
struct pt_bs_faults {
    int pwrite_calls, pwrite_fail_at, pwrite_errno;
    size_t pwrite_cap; /* >0: write at most this many bytes per call */
    int pwrite_eintr;  /* odd-numbered calls fail with EINTR */
    int pwrite_zero;   /* return 0 (no progress) */
    int fsync_calls, fsync_fail_at;
    int fdatasync_calls, fdatasync_fail_at;
    int ftruncate_calls, ftruncate_fail;
    int rename_calls, rename_fail;
};

/* The plan of the running test (one test runs at a time). */
extern struct pt_bs_faults pt_bs_fault;

/* cmocka setup and teardown: *state becomes a struct pt_bs_fixture (owned by the fixture). */
int pt_bs_setup(void **state);
int pt_bs_teardown(void **state);

/* Closes and reopens the store, as after a process restart; f->bs changes. */
void pt_bs_restart(struct pt_bs_fixture *f);

/* Deterministic pseudo-random bytes. */
void pt_bs_fill(unsigned char *buf, size_t len, uint32_t seed);

/* The path of upload id, or of blob d, into out (PATH_MAX bytes). */
void pt_bs_upload_path(const struct pt_bs_fixture *f, const char *id, char *out);
void pt_bs_blob_path(const struct pt_bs_fixture *f, const struct pt_digest *d, char *out);

/* Size of path, or -1 if it does not exist. */
long long pt_bs_file_size(const char *path);

/* Size of upload id's file, or -1 if it does not exist. */
long long pt_bs_upload_size(const struct pt_bs_fixture *f, const char *id);

/* Creates (or empties) path and writes buf[0, len) into it. */
void pt_bs_write_file(const char *path, const void *buf, size_t len);

/* Asserts that the stored blob d holds exactly data[0, len). */
void pt_bs_assert_blob(struct pt_bs_fixture *f, const struct pt_digest *d,
                       const unsigned char *data, size_t len);

/* Appends buf[0, len) to u, which must succeed. */
void pt_bs_append_ok(struct pt_bs_fixture *f, struct pt_upload *u, const void *buf, size_t len);

#endif
