/*
 * test_fsm_write_id.c - write ids (replication/command.h, fsm.h, store/metastore_write_id.c):
 * stamping and reading an id in front of an encoded command; a command whose id was applied
 * is applied no second time and yields the first outcome (single apply and group); the ids
 * travel in snapshots; ids expire by index distance, a bounded number per command; a rebase
 * (a region's state becoming a new log's) drops them all and moves the applied index back.
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

/* An id from n (distinct n, distinct ids), PT_COMMAND_WRITE_ID_LEN bytes. */
static void make_id(uint64_t n, uint8_t id[PT_COMMAND_WRITE_ID_LEN])
{
    memset(id, 0xa5, PT_COMMAND_WRITE_ID_LEN);
    memcpy(id + PT_COMMAND_WRITE_ID_LEN - sizeof(n), &n, sizeof(n));
}

/* Encodes b (freed) and stamps the id of n: *buf owned. */
static void encode_with_id(struct pt_command_builder *b, uint64_t n, void **buf, size_t *len)
{
    uint8_t id[PT_COMMAND_WRITE_ID_LEN];
    make_id(n, id);
    assert_int_equal(pt_command_builder_encode(b, buf, len), 0);
    pt_command_builder_free(b);
    assert_int_equal(pt_command_stamp(buf, len, id, sizeof(id)), 0);
}

/* A command of one op: unlink (unlink != 0) or link blob d of repo r, with the id of n. */
static void blob_cmd(int unlink, const char *d, uint64_t n, void **buf, size_t *len)
{
    struct pt_command_builder b;
    pt_ff_builder(&b, PT_FF_T0);
    if (unlink)
        assert_int_equal(pt_command_add_unlink_blob(&b, "r", d), 0);
    else
        assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    encode_with_id(&b, n, buf, len);
}

static void apply(struct pt_metastore *ms, const void *buf, size_t len, uint64_t index,
                  struct pt_fsm_result *res)
{
    assert_int_equal(pt_fsm_apply(ms, buf, len, index, res), 0);
    assert_int_equal(pt_metastore_applied_index(ms), index);
}

static void test_stamp_and_read(void **state)
{
    (void)state;
    struct pt_command_builder b;
    char d[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("blob", d);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    void *buf;
    size_t len;
    assert_int_equal(pt_command_builder_encode(&b, &buf, &len), 0);
    pt_command_builder_free(&b);
    const uint8_t *got;
    size_t got_len;
    assert_int_equal(pt_command_write_id(buf, len, &got, &got_len), 0); /* none yet */

    uint8_t id[PT_COMMAND_WRITE_ID_LEN];
    make_id(7, id);
    size_t before = len;
    assert_int_equal(pt_command_stamp(&buf, &len, id, 0), PT_E_CONFIG);
    assert_int_equal(pt_command_stamp(&buf, &len, id, PT_COMMAND_WRITE_ID_MAX + 1), PT_E_CONFIG);
    assert_int_equal(len, before);
    assert_int_equal(pt_command_stamp(&buf, &len, id, sizeof(id)), 0);
    assert_int_equal(len, before + 2 + sizeof(id));
    assert_int_equal(pt_command_write_id(buf, len, &got, &got_len), 1);
    assert_int_equal(got_len, sizeof(id));
    assert_memory_equal(got, id, sizeof(id));
    assert_int_equal(pt_command_write_id(buf, 10, &got, &got_len), 0); /* cut short */

    Portolan__Command *c;
    assert_int_equal(pt_command_decode(buf, len, &c), 0);
    assert_int_equal(c->write_id.len, sizeof(id));
    assert_memory_equal(c->write_id.data, id, sizeof(id));
    assert_int_equal(c->n_ops, 1);
    assert_string_equal(c->region, "us-east");
    pt_command_decoded_free(c);
    free(buf);

    /* an id longer than PT_COMMAND_WRITE_ID_MAX does not decode */
    uint8_t big[PT_COMMAND_WRITE_ID_MAX + 1];
    memset(big, 1, sizeof(big));
    Portolan__Command msg = PORTOLAN__COMMAND__INIT;
    msg.version = PT_COMMAND_VERSION;
    msg.write_id.data = big;
    msg.write_id.len = sizeof(big);
    assert_int_equal(pt_command_encode(&msg, &buf, &len), 0);
    assert_int_equal(pt_command_decode(buf, len, &c), PT_E_CORRUPT);
    free(buf);
}

static void test_duplicate_apply(void **state)
{
    struct pt_ff_fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1], s1[65], s2[65];
    pt_text_digest("blob", d);
    void *link, *unlink, *relink;
    size_t link_len, unlink_len, relink_len;
    blob_cmd(0, d, 1, &link, &link_len);
    blob_cmd(1, d, 2, &unlink, &unlink_len);
    blob_cmd(0, d, 3, &relink, &relink_len);
    struct pt_fsm_result res;

    apply(f->ms[0], link, link_len, 1, &res);
    assert_int_equal(res.status, 0);
    assert_int_equal(res.first_index, 0);
    apply(f->ms[0], unlink, unlink_len, 2, &res);
    assert_int_equal(res.status, 0);
    apply(f->ms[0], relink, relink_len, 3, &res);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), 0);
    pt_ff_digest_state(f->ms[0], s1);

    /* the unlink again, at a later index: nothing changes, the first outcome is answered */
    apply(f->ms[0], unlink, unlink_len, 4, &res);
    assert_int_equal(res.status, 0);
    assert_int_equal(res.first_index, 2);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), 0);
    pt_ff_digest_state(f->ms[0], s2);
    assert_string_equal(s1, s2);

    /* a command that failed its precondition answers that failure again, even when it would
     * now succeed */
    void *unlink2;
    size_t unlink2_len;
    blob_cmd(1, d, 4, &unlink2, &unlink2_len);
    apply(f->ms[0], unlink, unlink_len, 5, &res); /* id 2 again: still a no-op */
    apply(f->ms[0], unlink2, unlink2_len, 6, &res);
    assert_int_equal(res.status, 0); /* unlinked */
    void *unlink3;
    size_t unlink3_len;
    blob_cmd(1, d, 5, &unlink3, &unlink3_len);
    apply(f->ms[0], unlink3, unlink3_len, 7, &res);
    assert_int_equal(res.status, PT_E_BLOB_UNKNOWN);
    apply(f->ms[0], relink, relink_len, 8, &res); /* id 3: a no-op, the blob stays unlinked */
    assert_int_equal(res.first_index, 3);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), PT_E_BLOB_UNKNOWN);
    void *link2;
    size_t link2_len;
    blob_cmd(0, d, 6, &link2, &link2_len);
    apply(f->ms[0], link2, link2_len, 9, &res);
    apply(f->ms[0], unlink3, unlink3_len, 10, &res);
    assert_int_equal(res.status, PT_E_BLOB_UNKNOWN);
    assert_int_equal(res.first_index, 7);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), 0);

    uint64_t index = 0;
    int status = 0;
    uint8_t id[PT_COMMAND_WRITE_ID_LEN];
    make_id(5, id);
    assert_int_equal(pt_metastore_write_id_get(f->ms[0], id, sizeof(id), &index, &status), 1);
    assert_int_equal(index, 7);
    assert_int_equal(status, PT_E_BLOB_UNKNOWN);
    make_id(99, id);
    assert_int_equal(pt_metastore_write_id_get(f->ms[0], id, sizeof(id), &index, &status), 0);
    uint64_t count;
    assert_int_equal(pt_metastore_write_id_count(f->ms[0], &count), 0);
    assert_int_equal(count, 6);

    /* index 0 (no index recorded) ignores ids: applied, not recorded */
    void *unlink7;
    size_t unlink7_len;
    blob_cmd(1, d, 7, &unlink7, &unlink7_len);
    assert_int_equal(pt_fsm_apply(f->ms[0], unlink7, unlink7_len, 0, &res), 0);
    assert_int_equal(res.status, 0);
    make_id(7, id);
    assert_int_equal(pt_metastore_write_id_get(f->ms[0], id, sizeof(id), NULL, NULL), 0);

    /* an id survives a restart */
    pt_metastore_close(f->ms[0]);
    assert_int_equal(pt_metastore_open(f->db[0], &f->ms[0]), 0);
    apply(f->ms[0], link, link_len, 11, &res);
    assert_int_equal(res.first_index, 1);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), PT_E_BLOB_UNKNOWN);

    free(link);
    free(unlink);
    free(relink);
    free(unlink2);
    free(unlink3);
    free(link2);
    free(unlink7);
}

static void test_group_duplicate(void **state)
{
    struct pt_ff_fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("blob", d);
    void *link, *unlink;
    size_t link_len, unlink_len;
    blob_cmd(0, d, 1, &link, &link_len);
    blob_cmd(1, d, 2, &unlink, &unlink_len);
    /* the same unlink twice in one group, between the link and itself */
    struct pt_fsm_cmd cmds[4] = {{.buf = link, .len = link_len},
                                 {.buf = unlink, .len = unlink_len},
                                 {.buf = unlink, .len = unlink_len},
                                 {.buf = link, .len = link_len}};
    assert_int_equal(pt_fsm_apply_group(f->ms[0], cmds, 4), 0);
    assert_int_equal(cmds[1].result.status, 0);
    assert_int_equal(cmds[2].result.status, 0);
    assert_int_equal(cmds[2].result.first_index, cmds[1].index);
    assert_int_equal(cmds[3].result.first_index, cmds[0].index);
    assert_int_equal(cmds[3].index, 4);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), PT_E_BLOB_UNKNOWN);
    free(link);
    free(unlink);
}

static void test_snapshot_round_trip(void **state)
{
    struct pt_ff_fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1], s1[65], s2[65];
    pt_text_digest("blob", d);
    void *link, *unlink;
    size_t link_len, unlink_len;
    blob_cmd(0, d, 1, &link, &link_len);
    blob_cmd(1, d, 2, &unlink, &unlink_len);
    struct pt_fsm_result res;
    apply(f->ms[0], link, link_len, 1, &res);
    apply(f->ms[0], unlink, unlink_len, 2, &res);

    void *snap;
    size_t snap_len;
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot(f->ms[0], &snap, &snap_len, &index), 0);
    assert_int_equal(index, 2);
    /* the other region held an id of its own: the restore replaces it */
    void *other;
    size_t other_len;
    blob_cmd(0, d, 42, &other, &other_len);
    apply(f->ms[1], other, other_len, 1, &res);
    assert_int_equal(pt_metastore_restore(f->ms[1], snap, snap_len), 0);
    free(snap);
    uint64_t count;
    assert_int_equal(pt_metastore_write_id_count(f->ms[1], &count), 0);
    assert_int_equal(count, 2);
    uint8_t id[PT_COMMAND_WRITE_ID_LEN];
    make_id(42, id);
    assert_int_equal(pt_metastore_write_id_get(f->ms[1], id, sizeof(id), NULL, NULL), 0);

    /* both regions now answer the link again as a duplicate, with the same state */
    apply(f->ms[0], link, link_len, 3, &res);
    assert_int_equal(res.first_index, 1);
    apply(f->ms[1], link, link_len, 3, &res);
    assert_int_equal(res.first_index, 1);
    assert_int_equal(pt_metastore_blob_linked(f->ms[1], "r", d, NULL), PT_E_BLOB_UNKNOWN);
    pt_ff_digest_state(f->ms[0], s1);
    pt_ff_digest_state(f->ms[1], s2);
    assert_string_equal(s1, s2);
    free(link);
    free(unlink);
    free(other);
}

static void test_expiry(void **state)
{
    struct pt_ff_fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("blob", d);
    struct pt_fsm_result res;
    uint64_t count;
    /* 100 ids at indexes 1..100 (link, unlink, link, ...) */
    for (uint64_t i = 1; i <= 100; i++) {
        void *buf;
        size_t len;
        blob_cmd(i % 2 == 0, d, i, &buf, &len);
        apply(f->ms[0], buf, len, i, &res);
        assert_int_equal(res.status, 0);
        free(buf);
    }
    assert_int_equal(pt_metastore_write_id_count(f->ms[0], &count), 0);
    assert_int_equal(count, 100);

    /* inside the window: the id at index 1 is still known */
    void *first;
    size_t first_len;
    blob_cmd(0, d, 1, &first, &first_len);
    apply(f->ms[0], first, first_len, PT_FSM_WRITE_ID_WINDOW, &res);
    assert_int_equal(res.first_index, 1);

    /* a command far past them forgets at most PT_FSM_WRITE_ID_EXPIRE_MAX, oldest first */
    void *buf;
    size_t len;
    blob_cmd(0, d, 1000, &buf, &len);
    apply(f->ms[0], buf, len, PT_FSM_WRITE_ID_WINDOW + 1000, &res);
    free(buf);
    assert_int_equal(pt_metastore_write_id_count(f->ms[0], &count), 0);
    assert_int_equal(count, 100 - PT_FSM_WRITE_ID_EXPIRE_MAX + 1);
    uint8_t id[PT_COMMAND_WRITE_ID_LEN];
    make_id(PT_FSM_WRITE_ID_EXPIRE_MAX, id);
    assert_int_equal(pt_metastore_write_id_get(f->ms[0], id, sizeof(id), NULL, NULL), 0);
    make_id(PT_FSM_WRITE_ID_EXPIRE_MAX + 1, id);
    assert_int_equal(pt_metastore_write_id_get(f->ms[0], id, sizeof(id), NULL, NULL), 1);

    /* the next one forgets the rest; the id at index 1, expired, applies again */
    blob_cmd(1, d, 1001, &buf, &len);
    apply(f->ms[0], buf, len, PT_FSM_WRITE_ID_WINDOW + 1001, &res);
    free(buf);
    assert_int_equal(pt_metastore_write_id_count(f->ms[0], &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), PT_E_BLOB_UNKNOWN);
    apply(f->ms[0], first, first_len, PT_FSM_WRITE_ID_WINDOW + 1002, &res);
    assert_int_equal(res.first_index, 0);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), 0);
    free(first);
}

static void test_rebase(void **state)
{
    struct pt_ff_fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("blob", d);
    struct pt_fsm_result res;
    for (uint64_t i = 1; i <= 50; i++) {
        void *buf;
        size_t len;
        blob_cmd(0, d, i, &buf, &len);
        apply(f->ms[0], buf, len, 1000 + i, &res);
        free(buf);
    }
    uint64_t count;
    assert_int_equal(pt_metastore_write_id_count(f->ms[0], &count), 0);
    assert_int_equal(count, 50);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 1050);
    assert_int_equal(pt_metastore_rebase(f->ms[0], 0), PT_E_INTERNAL);
    assert_int_equal(pt_metastore_rebase(f->ms[0], 1), 0);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 1);
    assert_int_equal(pt_metastore_write_id_count(f->ms[0], &count), 0);
    assert_int_equal(count, 0);
    /* the state stays; an id applied before the rebase applies again at index 2 */
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), 0);
    void *buf;
    size_t len;
    blob_cmd(1, d, 1, &buf, &len);
    apply(f->ms[0], buf, len, 2, &res);
    free(buf);
    assert_int_equal(res.first_index, 0);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), PT_E_BLOB_UNKNOWN);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stamp_and_read),
        cmocka_unit_test_setup_teardown(test_duplicate_apply, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_group_duplicate, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_expiry, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_rebase, pt_ff_setup, pt_ff_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
