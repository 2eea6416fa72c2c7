/*
 * ms_fixture.h - the fixture of the metastore tests (pt_ms_: metastore): a fresh database in a
 * temporary directory of its own, and the batches the tests write records with.
 *
 * Design: the database lives at <dir>/data/meta, a nested path that does not exist before the
 * store is opened, so every test also checks that open creates it. Reopening closes and opens
 * the same path, as after a restart.
 */
#ifndef PT_TEST_MS_FIXTURE_H
#define PT_TEST_MS_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "metastore.h"

struct pt_ms_fixture {
    char dir[256];
    char db[300];
    struct pt_metastore *ms;
};

/* cmocka setup and teardown: *state becomes a struct pt_ms_fixture (owned by the fixture). */
int pt_ms_setup(void **state);
int pt_ms_teardown(void **state);

/* Closes and reopens the database; f->ms changes. */
void pt_ms_reopen(struct pt_ms_fixture *f);

/* A new batch on f->ms, returned owned (pt_metastore_batch_free). */
struct pt_metastore_batch *pt_ms_batch(struct pt_ms_fixture *f);

/* Stores manifest body (borrowed) in repo (creating the repo) and commits at index; digest gets
 * the manifest's digest. */
void pt_ms_put_manifest(struct pt_ms_fixture *f, const char *repo, const char *body, uint64_t index,
                        char digest[PT_DIGEST_STR_MAX + 1]);

/* Points tags[0..n-1] of repo at digest in one batch, committed without an index. */
void pt_ms_put_tags(struct pt_ms_fixture *f, const char *repo, const char *digest,
                    const char *const *tags, size_t n);

/* Asserts that names[0..count-1] are exactly want[0..n-1], in order. */
void pt_ms_assert_names(char **names, size_t count, const char *const *want, size_t n);

#endif
