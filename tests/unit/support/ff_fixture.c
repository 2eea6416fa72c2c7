/*
 * ff_fixture.c - the FSM tests' two stores and command helpers (see ff_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff_fixture.h"
#include "fsm.h"
#include "text_digest.h"
#include "tmpdir.h"

int pt_ff_setup(void **state)
{
    struct pt_ff_fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    pt_tmpdir_create(f->dir, sizeof(f->dir), "pt_fsm_");
    for (int i = 0; i < 2; i++) {
        snprintf(f->db[i], sizeof(f->db[i]), "%s/region%d", f->dir, i);
        assert_int_equal(pt_metastore_open(f->db[i], &f->ms[i]), 0);
    }
    *state = f;
    return 0;
}

int pt_ff_teardown(void **state)
{
    struct pt_ff_fixture *f = *state;
    for (int i = 0; i < 2; i++)
        pt_metastore_close(f->ms[i]);
    pt_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

void pt_ff_builder(struct pt_command_builder *b, int64_t time_ms)
{
    assert_int_equal(pt_command_builder_init(b, time_ms, "us-east"), 0);
}

int pt_ff_apply_to(struct pt_metastore *ms, struct pt_command_builder *b, uint64_t index)
{
    void *buf;
    size_t len;
    assert_int_equal(pt_command_builder_encode(b, &buf, &len), 0);
    pt_command_builder_free(b);
    struct pt_fsm_result res = {.status = 12345};
    assert_int_equal(pt_fsm_apply(ms, buf, len, index, &res), 0);
    free(buf);
    return res.status;
}

int pt_ff_apply(struct pt_ff_fixture *f, struct pt_command_builder *b)
{
    int status = pt_ff_apply_to(f->ms[0], b, ++f->index);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), f->index);
    return status;
}

void pt_ff_add_manifest(struct pt_command_builder *b, const char *repo, const char *body,
                        const char *tag, const char *subject, const char *const *blobs,
                        size_t n_blobs, const char *const *children, size_t n_children)
{
    char d[PT_DIGEST_STR_MAX + 1];
    pt_text_digest(body, d);
    const char *tags[1] = {tag};
    struct pt_command_manifest m = {
        .repo = repo,
        .digest = d,
        .media_type = n_children ? PT_FF_MT_IDX : PT_FF_MT_OCI,
        .body = body,
        .len = strlen(body),
        .tags = tags,
        .n_tags = tag != NULL,
        .subject = subject,
        .artifact_type = subject ? "application/vnd.example" : NULL,
        .annotations = subject ? "{\"k\":\"v\"}" : NULL,
        .annotations_len = subject ? 9 : 0,
        .blobs = blobs,
        .n_blobs = n_blobs,
        .children = children,
        .n_children = n_children,
    };
    assert_int_equal(pt_command_add_put_manifest(b, &m), 0);
}

void pt_ff_digest_state(struct pt_metastore *ms, char hex[65])
{
    assert_int_equal(pt_metastore_state_digest(ms, hex), 0);
}
