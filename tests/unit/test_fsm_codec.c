/*
 * test_fsm_codec.c - the FSM's commands as bytes: the command codec's round trip and limits,
 * and the refusal, without any change to the store, of unknown versions and malformed input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "digest.h"
#include "err.h"
#include "fsm.h"
#include "metastore.h"
#include "support/ff_fixture.h"
#include "support/text_digest.h"

static void test_refuses_bad_commands(void **state)
{
    struct pt_ff_fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1], before[65], after[65];
    pt_text_digest("blob", d);
    pt_ff_digest_state(f->ms[0], before);
    struct pt_fsm_result res;

    /* unknown version */
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    b.msg.version = PT_COMMAND_VERSION + 1;
    void *buf;
    size_t len;
    assert_int_equal(pt_command_builder_encode(&b, &buf, &len), 0);
    assert_int_equal(pt_fsm_apply(f->ms[0], buf, len, 1, &res), PT_E_CORRUPT);
    assert_int_equal(res.status, PT_E_CORRUPT);
    free(buf);
    b.msg.version = 0;
    assert_int_equal(pt_command_builder_encode(&b, &buf, &len), 0);
    assert_int_equal(pt_fsm_apply(f->ms[0], buf, len, 1, &res), PT_E_CORRUPT);
    free(buf);

    /* an operation with no kind */
    b.msg.version = PT_COMMAND_VERSION;
    Portolan__Op empty = PORTOLAN__OP__INIT;
    Portolan__Op *ops[] = {b.msg.ops[0], &empty};
    Portolan__Command c = b.msg;
    c.ops = ops;
    c.n_ops = 2;
    assert_int_equal(pt_command_encode(&c, &buf, &len), 0);
    assert_int_equal(pt_fsm_apply(f->ms[0], buf, len, 1, &res), PT_E_CORRUPT);
    free(buf);
    pt_command_builder_free(&b);

    /* not protobuf; too large */
    static const unsigned char junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    assert_int_equal(pt_fsm_apply(f->ms[0], junk, sizeof(junk), 1, &res), PT_E_CORRUPT);
    assert_int_equal(pt_fsm_apply(f->ms[0], junk, PT_COMMAND_MAX_SIZE + 1, 1, &res), PT_E_CORRUPT);
    /* an empty buffer decodes to version 0 */
    assert_int_equal(pt_fsm_apply(f->ms[0], "", 0, 1, &res), PT_E_CORRUPT);

    pt_ff_digest_state(f->ms[0], after);
    assert_string_equal(before, after);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 0);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), PT_E_BLOB_UNKNOWN);
}

static void test_command_codec(void **state)
{
    (void)state;
    struct pt_command_builder b;
    assert_int_equal(pt_command_builder_init(&b, PT_FF_T0, NULL), 0);
    const char *tags[] = {"a", "b"};
    const char *blobs[] = {"sha256:b"};
    const char *children[] = {"sha256:c1", "sha256:c2"};
    struct pt_command_manifest m = {.repo = "r",
                                    .digest = "sha256:d",
                                    .media_type = PT_FF_MT_OCI,
                                    .body = "body",
                                    .len = 4,
                                    .tags = tags,
                                    .n_tags = 2,
                                    .annotations = "{}",
                                    .annotations_len = 2,
                                    .blobs = blobs,
                                    .n_blobs = 1,
                                    .children = children,
                                    .n_children = 2};
    assert_int_equal(pt_command_add_put_manifest(&b, &m), 0);
    assert_int_equal(pt_command_add_put_tag(&b, "r", "t", "sha256:d"), 0);
    assert_int_equal(pt_command_add_delete_tag(&b, "r", "t"), 0);
    assert_int_equal(pt_command_add_delete_manifest(&b, "r", "sha256:d"), 0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", "sha256:b", 7), 0);
    assert_int_equal(pt_command_add_unlink_blob(&b, "r", "sha256:b"), 0);
    assert_int_equal(pt_command_add_blob_stored(&b, "sha256:b", 7, "eu"), 0);
    void *buf;
    size_t len;
    assert_int_equal(pt_command_builder_encode(&b, &buf, &len), 0);
    pt_command_builder_free(&b);
    pt_command_builder_free(&b); /* twice is harmless */

    Portolan__Command *c;
    assert_int_equal(pt_command_decode(buf, len, &c), 0);
    free(buf);
    assert_int_equal(c->version, PT_COMMAND_VERSION);
    assert_int_equal(c->time_ms, PT_FF_T0);
    assert_string_equal(c->region, "");
    assert_int_equal(c->n_ops, 7);
    Portolan__PutManifest *pm = c->ops[0]->put_manifest;
    assert_int_equal(c->ops[0]->op_case, PORTOLAN__OP__OP_PUT_MANIFEST);
    assert_string_equal(pm->repo, "r");
    assert_string_equal(pm->media_type, PT_FF_MT_OCI);
    assert_int_equal(pm->body.len, 4);
    assert_memory_equal(pm->body.data, "body", 4);
    assert_int_equal(pm->n_tags, 2);
    assert_string_equal(pm->tags[1], "b");
    assert_string_equal(pm->subject, "");
    assert_string_equal(pm->artifact_type, "");
    assert_int_equal(pm->annotations.len, 2);
    assert_int_equal(pm->n_blobs, 1);
    assert_int_equal(pm->n_children, 2);
    assert_string_equal(pm->children[1], "sha256:c2");
    assert_int_equal(c->ops[1]->op_case, PORTOLAN__OP__OP_PUT_TAG);
    assert_string_equal(c->ops[1]->put_tag->tag, "t");
    assert_int_equal(c->ops[2]->op_case, PORTOLAN__OP__OP_DELETE_TAG);
    assert_int_equal(c->ops[3]->op_case, PORTOLAN__OP__OP_DELETE_MANIFEST);
    assert_string_equal(c->ops[3]->delete_manifest->digest, "sha256:d");
    assert_int_equal(c->ops[4]->op_case, PORTOLAN__OP__OP_LINK_BLOB);
    assert_int_equal(c->ops[4]->link_blob->size, 7);
    assert_int_equal(c->ops[5]->op_case, PORTOLAN__OP__OP_UNLINK_BLOB);
    assert_int_equal(c->ops[6]->op_case, PORTOLAN__OP__OP_BLOB_STORED);
    assert_string_equal(c->ops[6]->blob_stored->region, "eu");
    pt_command_decoded_free(c);

    /* limits: operations per command, encoded size */
    assert_int_equal(pt_command_builder_init(&b, PT_FF_T0, "r"), 0);
    for (int i = 0; i < PT_COMMAND_MAX_OPS; i++)
        assert_int_equal(pt_command_add_delete_tag(&b, "r", "t"), 0);
    assert_int_equal(pt_command_add_delete_tag(&b, "r", "t"), PT_E_TOO_LARGE);
    assert_int_equal(b.msg.n_ops, PT_COMMAND_MAX_OPS);
    pt_command_builder_free(&b);

    assert_int_equal(pt_command_builder_init(&b, PT_FF_T0, "r"), 0);
    char *big = calloc(1, PT_COMMAND_MAX_SIZE);
    assert_non_null(big);
    struct pt_command_manifest huge = {.repo = "r", .body = big, .len = PT_COMMAND_MAX_SIZE};
    assert_int_equal(pt_command_add_put_manifest(&b, &huge), 0);
    free(big);
    assert_int_equal(pt_command_builder_encode(&b, &buf, &len), PT_E_TOO_LARGE);
    assert_null(buf);
    pt_command_builder_free(&b);
}

/* The same commands, successes and failures mixed, give the same state in two stores. */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refuses_bad_commands, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test(test_command_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
