/*
 * feed_reader.h - a reader of a blob feed (pt_blob_sync_feed, replication/blob_sync.h) for
 * unit tests, as the HTTP layer reads one: woken through a mailbox on the test loop, it reads
 * from the feed's file descriptor whatever pt_blob_feed_poll allows, and notes what it saw.
 *
 * Design: the test has one reader at a time, kept here with its mailbox so that the test's
 * teardown can wind them down (pt_feed_reader_stop) when a failed assertion left them in use.
 * The mailbox is opened on the first start and closed by stop.
 *
 * Invariants: functions run on the loop's thread, outside its callbacks. Failures are cmocka
 * assertions.
 */
#ifndef PT_TEST_FEED_READER_H
#define PT_TEST_FEED_READER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "blob_sync.h"

struct pt_feed_reader {
    struct pt_feed_waiter waiter; /* first: its mail is the reader's address */
    struct pt_blob_feed *f;
    uint64_t size;
    unsigned char *buf; /* owned, size bytes */
    uint64_t pos;
    int state;
    int error;
    int polls, wakeups;
    bool registered;
    bool early_full; /* avail reached size while RUNNING */
};

/* Starts the reader on feed f (its reference passes to the reader), a blob of size bytes, with
 * its mailbox on loop (borrowed); reads what is there already. Returns the one reader. */
struct pt_feed_reader *pt_feed_reader_start(uv_loop_t *loop, struct pt_blob_feed *f, uint64_t size);

/* Withdraws the reader's waiter, drops its feed reference and closes the mailbox (a mail
 * still pending in it is dropped). Nothing to do when no reader runs. */
void pt_feed_reader_stop(void);

/* Forgets the reader and its mailbox without closing anything: for a fixture's setup. */
void pt_feed_reader_reset(void);

/* Holds once the reader's feed is no longer running; arg is the reader (borrowed). */
bool pt_feed_reader_finished_pred(void *arg);

#endif
