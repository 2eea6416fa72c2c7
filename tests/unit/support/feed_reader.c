/*
 * feed_reader.c - the one reader of a blob feed a test runs, and its mailbox (see
 * feed_reader.h). Failures are cmocka assertions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "feed_reader.h"
#include "mailbox.h"

static void reader_step(struct pt_feed_reader *rd);

static void reader_mail_cb(struct pt_mail *mail)
{
    struct pt_feed_reader *rd = (struct pt_feed_reader *)mail;
    assert_true(rd->registered);
    rd->registered = false;
    rd->wakeups++;
    reader_step(rd);
}

static void reader_init(struct pt_feed_reader *rd, struct pt_mailbox *mb, struct pt_blob_feed *f,
                        uint64_t size)
{
    memset(rd, 0, sizeof(*rd));
    rd->waiter.mailbox = mb;
    rd->waiter.cb = reader_mail_cb;
    rd->f = f;
    rd->size = size;
    rd->buf = malloc(size > 0 ? size : 1);
    assert_non_null(rd->buf);
    rd->state = PT_FEED_RUNNING;
}

static void reader_step(struct pt_feed_reader *rd)
{
    for (;;) {
        uint64_t at = rd->pos, avail = 0;
        int error = 0;
        int st = pt_blob_feed_poll(rd->f, at, &avail, &error, &rd->waiter);
        rd->polls++;
        rd->state = st;
        rd->error = error;
        assert_true(avail <= rd->size);
        if (st == PT_FEED_RUNNING && rd->size > 0 && avail >= rd->size)
            rd->early_full = true;
        if (st == PT_FEED_RUNNING && at >= avail) {
            rd->registered = true; /* posted once more is there */
            return;
        }
        while (rd->pos < avail) {
            ssize_t n = pread(rd->f->fd, rd->buf + rd->pos, avail - rd->pos, (off_t)rd->pos);
            assert_true(n > 0);
            rd->pos += (uint64_t)n;
        }
        if (st != PT_FEED_RUNNING)
            return;
    }
}

bool pt_feed_reader_finished_pred(void *arg)
{
    const struct pt_feed_reader *rd = arg;
    return rd->state != PT_FEED_RUNNING;
}

/* The test's one reader and its mailbox: static, so that teardown can wind them down when a
 * failed assertion left them in use. */
static struct pt_feed_reader rdr;
static struct pt_mailbox mailbox;
static bool mailbox_open;

/* Starts the reader on feed f (its reference passes to the reader), a blob of size bytes. */
struct pt_feed_reader *pt_feed_reader_start(uv_loop_t *loop, struct pt_blob_feed *f, uint64_t size)
{
    if (!mailbox_open) {
        assert_int_equal(pt_mailbox_init(&mailbox, loop), 0);
        mailbox_open = true;
    }
    reader_init(&rdr, &mailbox, f, size);
    reader_step(&rdr);
    return &rdr;
}

/* Withdraws the reader's waiter, drops its feed reference and closes the mailbox (a mail
 * still pending in it is dropped). */
void pt_feed_reader_stop(void)
{
    if (rdr.f != NULL) {
        if (rdr.registered)
            (void)pt_blob_feed_withdraw(rdr.f, &rdr.waiter);
        pt_blob_feed_release(rdr.f);
    }
    free(rdr.buf);
    memset(&rdr, 0, sizeof(rdr));
    if (mailbox_open) {
        pt_mailbox_close(&mailbox);
        mailbox_open = false;
        uv_run(mailbox.async.loop, UV_RUN_NOWAIT); /* completes the close */
    }
}

void pt_feed_reader_reset(void)
{
    memset(&rdr, 0, sizeof(rdr));
    mailbox_open = false;
}
