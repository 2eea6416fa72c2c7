/*
 * ms_fixture.c - the metastore tests' database and record writers (see ms_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_fixture.h"
#include "text_digest.h"
#include "tmpdir.h"

int pt_ms_setup(void **state)
{
    struct pt_ms_fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    pt_tmpdir_create(f->dir, sizeof(f->dir), "pt_metastore_");
    /* a nested path that does not exist yet: open must create it */
    snprintf(f->db, sizeof(f->db), "%s/data/meta", f->dir);
    assert_int_equal(pt_metastore_open(f->db, &f->ms), 0);
    *state = f;
    return 0;
}

int pt_ms_teardown(void **state)
{
    struct pt_ms_fixture *f = *state;
    pt_metastore_close(f->ms);
    pt_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

void pt_ms_reopen(struct pt_ms_fixture *f)
{
    pt_metastore_close(f->ms);
    f->ms = NULL;
    assert_int_equal(pt_metastore_open(f->db, &f->ms), 0);
}

struct pt_metastore_batch *pt_ms_batch(struct pt_ms_fixture *f)
{
    struct pt_metastore_batch *b;
    assert_int_equal(pt_metastore_batch_new(f->ms, &b), 0);
    return b;
}

void pt_ms_put_manifest(struct pt_ms_fixture *f, const char *repo, const char *body, uint64_t index,
                        char digest[PT_DIGEST_STR_MAX + 1])
{
    struct pt_metastore_batch *b = pt_ms_batch(f);
    pt_text_digest(body, digest);
    assert_int_equal(pt_metastore_batch_repo_ensure(b, repo, 1000), 0);
    assert_int_equal(pt_metastore_batch_manifest_put(b, repo, digest,
                                                     "application/vnd.oci.image.manifest.v1+json",
                                                     "", "", body, strlen(body)),
                     0);
    assert_int_equal(pt_metastore_batch_commit(b, index), 0);
    pt_metastore_batch_free(b);
}

void pt_ms_put_tags(struct pt_ms_fixture *f, const char *repo, const char *digest,
                    const char *const *tags, size_t n)
{
    struct pt_metastore_batch *b = pt_ms_batch(f);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pt_metastore_batch_tag_put(b, repo, tags[i], digest, 2000), 0);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    pt_metastore_batch_free(b);
}

void pt_ms_assert_names(char **names, size_t count, const char *const *want, size_t n)
{
    assert_int_equal(count, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(names[i], want[i]);
}
