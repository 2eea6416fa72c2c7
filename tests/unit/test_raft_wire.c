/*
 * test_raft_wire.c - the validator of raft messages (replication/raft_wire.c): messages laid
 * out as libraft 0.15 writes them pass, whole or fed one byte at a time; each bound and each
 * inconsistency the header can carry is refused with its own reason, and stays refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "raft_wire.h"

#define PEER 7

struct msg {
    unsigned char b[4096];
    size_t len;
};

static void put(struct msg *m, uint64_t v)
{
    pt_put_le64(m->b + m->len, v);
    m->len += 8;
}

static void preamble(struct msg *m, uint64_t type, uint64_t hlen)
{
    put(m, type);
    put(m, hlen);
}

/* An AppendEntries of n entries of size sz each (term t), with its payload when full. */
static void append(struct msg *m, uint64_t t, uint64_t n, uint32_t sz, uint64_t hlen, int full)
{
    preamble(m, 1, hlen);
    put(m, t);  /* term */
    put(m, 10); /* prev_log_index */
    put(m, t);  /* prev_log_term */
    put(m, 9);  /* leader_commit */
    put(m, n);
    for (uint64_t i = 0; i < n && full; i++) {
        put(m, t);
        m->b[m->len] = 1; /* RAFT_COMMAND */
        memset(m->b + m->len + 1, 0, 3);
        pt_put_le32(m->b + m->len + 4, sz);
        m->len += 8;
    }
    for (uint64_t i = 40 + 16 * n; i < hlen && full; i++)
        m->b[m->len++] = 0; /* reserved word */
    for (uint64_t i = 0; i < n * sz && full; i++)
        m->b[m->len++] = (unsigned char)i;
}

static enum pt_raft_wire_error whole(const struct msg *m)
{
    struct pt_raft_wire w;
    pt_raft_wire_init(&w, PEER);
    return pt_raft_wire_feed(&w, m->b, m->len);
}

static enum pt_raft_wire_error bytewise(const struct msg *m)
{
    struct pt_raft_wire w;
    enum pt_raft_wire_error e = PT_RAFT_WIRE_OK;
    pt_raft_wire_init(&w, PEER);
    for (size_t i = 0; i < m->len; i++)
        e = pt_raft_wire_feed(&w, m->b + i, 1);
    return e;
}

static void test_valid_stream(void **state)
{
    struct msg m = {0};
    (void)state;
    append(&m, 3, 2, 16, 40 + 32, 1); /* entries, 40 + 16 n */
    append(&m, 3, 0, 0, 48, 1);       /* heartbeat with the reserved word */
    preamble(&m, 3, 40);              /* RequestVote, pre-vote flag */
    put(&m, 4);
    put(&m, PEER);
    put(&m, 30);
    put(&m, 3);
    put(&m, 2);
    preamble(&m, 4, 24); /* RequestVoteResult */
    put(&m, 4);
    put(&m, 1);
    put(&m, 1);
    preamble(&m, 2, 24); /* AppendEntriesResult */
    put(&m, 4);
    put(&m, 0);
    put(&m, 31);
    preamble(&m, 6, 24); /* TimeoutNow */
    put(&m, 4);
    put(&m, 31);
    put(&m, 4);
    preamble(&m, 5, 48 + 16); /* InstallSnapshot, 16 bytes of configuration, 5 of data */
    put(&m, 4);
    put(&m, 100);
    put(&m, 4);
    put(&m, 90);
    put(&m, 16);
    put(&m, 0);
    put(&m, 0);
    put(&m, 5);
    memcpy(m.b + m.len, "snap!", 5);
    m.len += 5;
    assert_int_equal(whole(&m), PT_RAFT_WIRE_OK);
    assert_int_equal(bytewise(&m), PT_RAFT_WIRE_OK);
}

/* The header announces 2^20 entries but holds none: libraft would read 16 MiB past it. */
static void test_entries_overrun_header(void **state)
{
    struct msg m = {0};
    (void)state;
    append(&m, 3, 1u << 20, 0, 48, 0);
    assert_int_equal(whole(&m), PT_RAFT_WIRE_ENTRIES);
    m.len = 0;
    append(&m, 3, 1000, 0, 48, 0);
    assert_int_equal(whole(&m), PT_RAFT_WIRE_LENGTH);
    assert_int_equal(bytewise(&m), PT_RAFT_WIRE_LENGTH);
}

static void test_terms(void **state)
{
    struct msg m = {0};
    (void)state;
    preamble(&m, 3, 40); /* RequestVote with term 2^64 - 1 */
    put(&m, UINT64_MAX);
    put(&m, PEER);
    put(&m, 1);
    put(&m, 1);
    put(&m, 2);
    assert_int_equal(whole(&m), PT_RAFT_WIRE_TERM);
    m.len = 0;
    append(&m, PT_RAFT_WIRE_TERM_MAX + 1, 0, 0, 40, 1);
    assert_int_equal(whole(&m), PT_RAFT_WIRE_TERM);
    m.len = 0;
    append(&m, 5, 1, 8, 56, 1);
    pt_put_le64(m.b + 56, 6); /* the entry's term above the message's */
    assert_int_equal(whole(&m), PT_RAFT_WIRE_TERM);
}

static void test_candidate_is_the_sender(void **state)
{
    struct msg m = {0};
    (void)state;
    preamble(&m, 3, 32);
    put(&m, 4);
    put(&m, PEER + 1);
    put(&m, 1);
    put(&m, 1);
    assert_int_equal(whole(&m), PT_RAFT_WIRE_SENDER);
}

static void test_lengths_and_types(void **state)
{
    struct msg m = {0};
    (void)state;
    preamble(&m, 3, 8); /* RequestVote shorter than its fields */
    assert_int_equal(whole(&m), PT_RAFT_WIRE_LENGTH);
    m.len = 0;
    preamble(&m, 4, 1u << 30);
    assert_int_equal(whole(&m), PT_RAFT_WIRE_LENGTH);
    m.len = 0;
    preamble(&m, 0, 24);
    assert_int_equal(whole(&m), PT_RAFT_WIRE_TYPE);
    m.len = 0;
    preamble(&m, 7, 24);
    assert_int_equal(whole(&m), PT_RAFT_WIRE_TYPE);
    m.len = 0;
    preamble(&m, 5, 48); /* configuration longer than the header */
    put(&m, 4);
    put(&m, 100);
    put(&m, 4);
    put(&m, 90);
    put(&m, 16);
    assert_int_equal(whole(&m), PT_RAFT_WIRE_LENGTH);
}

static void test_sizes(void **state)
{
    struct msg m = {0};
    struct pt_raft_wire w;
    (void)state;
    append(&m, 3, 1, PT_RAFT_WIRE_ENTRY_MAX + 1, 56, 0);
    pt_put_le64(m.b + m.len, 3);
    m.b[m.len + 8] = 1;
    pt_put_le32(m.b + m.len + 12, PT_RAFT_WIRE_ENTRY_MAX + 1);
    m.len += 16;
    assert_int_equal(whole(&m), PT_RAFT_WIRE_ENTRY);
    m.b[m.len - 8] = 9; /* unknown entry type */
    pt_put_le32(m.b + m.len - 4, 8);
    assert_int_equal(whole(&m), PT_RAFT_WIRE_ENTRY);
    m.b[m.len - 8] = 1; /* a size off the 8-byte grid raft aligns entry data to */
    pt_put_le32(m.b + m.len - 4, 13);
    assert_int_equal(whole(&m), PT_RAFT_WIRE_ENTRY);
    m.len = 0;
    preamble(&m, 5, 48); /* a 4 GiB + 1 snapshot */
    put(&m, 4);
    put(&m, 100);
    put(&m, 4);
    put(&m, 90);
    put(&m, 0);
    put(&m, PT_RAFT_WIRE_SNAPSHOT_MAX + 1);
    assert_int_equal(whole(&m), PT_RAFT_WIRE_PAYLOAD);
    /* the error sticks */
    pt_raft_wire_init(&w, PEER);
    assert_int_equal(pt_raft_wire_feed(&w, m.b, m.len), PT_RAFT_WIRE_PAYLOAD);
    assert_int_equal(pt_raft_wire_feed(&w, m.b, 1), PT_RAFT_WIRE_PAYLOAD);
    assert_string_not_equal(pt_raft_wire_reason(PT_RAFT_WIRE_PAYLOAD), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_stream),
        cmocka_unit_test(test_entries_overrun_header),
        cmocka_unit_test(test_terms),
        cmocka_unit_test(test_candidate_is_the_sender),
        cmocka_unit_test(test_lengths_and_types),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
