/*
 * test_blob_sync_feed.c - readers attached to blob transfers between regions
 * (pt_blob_sync_feed, replication/blob_sync.c), in a world of regions over real transports on
 * loopback with a fake raft log (support/blob_world.h), read as the HTTP layer reads them
 * (support/feed_reader.h).
 *
 * Covered: a reader attached to a transfer before any background transfer of its blob starts
 * (one transfer per digest, the last byte held back until verified, the bytes read from the
 * feed's descriptor); a blob whose only holder is unreachable (the feed waits, then fails when
 * the service stops) and one nobody holds (no feed). Every test stops every service, closes
 * every handle (uv_loop_close() == 0) and removes its directory; ASan and LSan check memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "blob_sync.h"
#include "blob_sync_wire.h"
#include "blobstore.h"
#include "digest.h"
#include "err.h"
#include "metastore.h"
#include "peer.h"
#include "peer.pb-c.h"
#include "support/blob_world.h"
#include "support/blob_world_status.h"
#include "support/feed_reader.h"
#include "support/loop.h"
#include "support/loopback.h"
#include "transport.h"
#include "units.h"

static uv_loop_t loop;

/* ---- Loop helpers ------------------------------------------------------------------------- */

#define RUN_UNTIL_GE(ptr, n, ms) PT_LOOP_RUN_UNTIL_GE(&loop, (ptr), (n), (ms))
#define RUN_FOR(ms)              PT_LOOP_RUN_FOR(&loop, (ms))

/* ---- Tests -------------------------------------------------------------------------------- */

/* On demand: a reader attaches to a blob B lacks before any background transfer of it starts,
 * while the only background slot is busy with another blob. One transfer per digest; the
 * reader never sees the last byte before the blob verified; the feed's descriptor gives the
 * blob's bytes. */
static void test_feed(void **state)
{
    (void)state;
    pt_world_up(2, 1);
    struct pt_world_region *a = &pt_world.r[0], *b = &pt_world.r[1];
    const struct pt_world_blob *busy = pt_world_blob_new(8 * PT_MIB + 5, 10);
    const struct pt_world_blob *wanted = pt_world_blob_new(6 * PT_MIB + 3, 11);
    struct pt_blob_feed *f = NULL, *f2 = NULL;
    bool on_demand = false;

    pt_world_store_blob(a, busy);
    pt_world_store_blob(a, wanted);
    pt_world_record_held(a->name, busy);
    pt_world_record_held(a->name, wanted);

    /* attach before the loop ran once: no scan has seen the blob yet */
    assert_int_equal(pt_blob_sync_feed(b->sync, wanted->digest, wanted->size, &f), 0);
    assert_non_null(f);
    assert_int_equal(pt_blob_sync_feed(b->sync, wanted->digest, wanted->size, &f2), 0);
    assert_ptr_equal(f2, f); /* one transfer per digest, whatever the number of readers */
    assert_int_equal(f->size, wanted->size);
    pt_blob_feed_release(f2);
    assert_true(pt_world_status_active(b, wanted->digest, NULL, &on_demand, NULL));
    assert_true(on_demand);

    struct pt_feed_reader *rd = pt_feed_reader_start(&loop, f, wanted->size);
    assert_int_equal(rd->state, PT_FEED_RUNNING);
    assert_true(rd->registered);
    assert_true(pt_loop_run_until(&loop, pt_feed_reader_finished_pred, rd, 15000));
    assert_int_equal(rd->state, PT_FEED_DONE);
    assert_int_equal(rd->error, 0);
    assert_false(rd->early_full);
    assert_true(rd->wakeups >= 1);
    assert_int_equal(rd->pos, wanted->size);
    assert_memory_equal(rd->buf, wanted->data, wanted->size);

    /* the background transfer of the other blob completes as well */
    const struct pt_world_blob *both[2] = {busy, wanted};
    assert_true(pt_world_wait_arrived(b, both, 2, 15000));
    RUN_FOR(300);
    assert_int_equal(pt_world_proposed_count(b, wanted->digest), 1);
    assert_int_equal(pt_world_proposed_count(b, busy->digest), 1);
    assert_int_equal(b->nproposed, 2);
    assert_int_equal(pt_world_status_int(b, "blobs_fetched_total"), 2);
    /* each blob crossed once: the feed and the background shared one transfer */
    assert_int_equal(pt_world_status_int(a, "bytes_sent_total"),
                     (int64_t)(busy->size + wanted->size));

    /* the feed outlives its transfer; its descriptor reads the stored blob */
    uint64_t avail = 0;
    int error = -1;
    assert_int_equal(pt_blob_feed_poll(f, wanted->size, &avail, &error, NULL), PT_FEED_DONE);
    assert_int_equal(avail, wanted->size);
    assert_int_equal(error, 0);
    unsigned char tail[2];
    assert_int_equal(pread(f->fd, tail, 2, (off_t)wanted->size - 2), 2);
    assert_memory_equal(tail, wanted->data + wanted->size - 2, 2);
    pt_feed_reader_stop(); /* drops the last reference */
}

struct unreachable_watch {
    struct pt_world_region *r;
    const char *digest;
};

/* The transfer of digest waits (its holder failed) and a scan has counted the blob missing. */
static bool unreachable_pred(void *arg)
{
    struct unreachable_watch *uw = arg;
    char state[16] = "";
    return pt_world_status_active(uw->r, uw->digest, NULL, NULL, state) &&
           strcmp(state, "waiting") == 0 && pt_world_status_int(uw->r, "blobs_behind") == 1;
}

/* A blob whose only holder cannot be reached: the feed attaches and waits without bytes, and
 * fails when the service stops; a blob nobody holds cannot be fed. */
static void test_no_holder(void **state)
{
    (void)state;
    pt_world_up(2, 0);
    struct pt_world_region *b = &pt_world.r[1];
    const struct pt_world_blob *lost = pt_world_blob_new(2 * PT_MIB + 1, 40);
    const struct pt_world_blob *nobody = pt_world_blob_new(100, 41);
    struct pt_blob_feed *f = NULL, *none = NULL;
    struct unreachable_watch uw = {b, lost->digest};
    unsigned dead_port;
    char dead[64];
    int64_t offset = -1;
    bool on_demand = false;

    pt_loopback_free_ports(&dead_port, 1);
    snprintf(dead, sizeof(dead), "127.0.0.1:%u", dead_port);
    assert_int_equal(pt_blob_sync_set_region(b->sync, 9, "far", dead), 0);
    pt_world_record_held("far", lost);

    assert_int_equal(pt_blob_sync_feed(b->sync, nobody->digest, nobody->size, &none),
                     PT_E_BLOB_UNKNOWN);
    assert_null(none);
    assert_int_equal(pt_blob_sync_feed(b->sync, "sha256:nope", 1, &none), PT_E_BLOB_UNKNOWN);
    assert_null(none);

    assert_int_equal(pt_blob_sync_feed(b->sync, lost->digest, lost->size, &f), 0);
    struct pt_feed_reader *rd = pt_feed_reader_start(&loop, f, lost->size);
    assert_true(
        pt_loop_run_until(&loop, unreachable_pred, &uw, 10000)); /* asked "far", failed, waits */
    RUN_FOR(200);
    assert_int_equal(rd->state, PT_FEED_RUNNING);
    assert_int_equal(rd->pos, 0);
    assert_true(rd->registered);
    assert_true(pt_world_status_active(b, lost->digest, &offset, &on_demand, NULL));
    assert_int_equal(offset, 0);
    assert_true(on_demand);
    assert_int_equal(pt_world_status_int(b, "bytes_received_total"), 0);
    assert_false(pt_world_status_in_sync(b));
    assert_int_equal(pt_world_status_int(b, "blobs_behind"), 1);
    int wakeups = rd->wakeups;

    pt_world_sync_stop_begin(b);
    /* stopping: no new feeds, and the waiting one has failed */
    assert_int_equal(pt_blob_sync_feed(b->sync, lost->digest, lost->size, &none), PT_E_UNAVAILABLE);
    assert_null(none);
    assert_true(RUN_UNTIL_GE(&b->sync_stops, 1, 10000));
    assert_null(b->sync);
    assert_true(pt_loop_run_until(&loop, pt_feed_reader_finished_pred, rd, 2000));
    assert_int_equal(rd->wakeups, wakeups + 1); /* woken once, by the failure */
    assert_false(rd->registered);
    assert_int_equal(rd->state, PT_FEED_FAILED);
    assert_int_equal(rd->error, PT_E_UNAVAILABLE);
    assert_int_equal(rd->pos, 0);
    assert_false(pt_world_blob_file_exists(b, lost));
    assert_int_equal(b->nproposed, 0);
    pt_feed_reader_stop(); /* the last reference, after the service is gone */
}

int main(void)
{
    /* as the node does (server.c): a peer that went away must not kill the process */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_feed, pt_world_setup, pt_world_teardown,
                                                 &loop),
        cmocka_unit_test_prestate_setup_teardown(test_no_holder, pt_world_setup, pt_world_teardown,
                                                 &loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
