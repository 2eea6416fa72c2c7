/*
 * transport_side.c - a Raft transport driven by hand, the fixture of the transport tests and
 * a check that bytes flow between two streams (see transport_side.h). Failures are cmocka
 * assertions: these run inside tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "loop.h"
#include "loopback.h"
#include "transport.h"
#include "transport_side.h"

int pt_side_seq;

/* ---- A transport driven by hand (playing raft_uv's part) ---------------------------------- */

void pt_side_accept_cb(struct raft_uv_transport *t, raft_id id, const char *address,
                       uv_stream_t *stream)
{
    struct pt_side *s = t->data;
    assert_non_null(stream);
    assert_true(s->n_accepted < 8);
    s->accepted[s->n_accepted++] = stream;
    s->accepted_id = id;
    snprintf(s->accepted_address, sizeof(s->accepted_address), "%s", address);
}

void pt_side_connect_cb(struct raft_uv_connect *req, uv_stream_t *stream, int status)
{
    struct pt_outcome *o = req->data;
    o->calls++;
    o->status = status;
    o->stream = stream;
    o->seq = ++pt_side_seq;
    if (status != 0)
        assert_null(stream);
}

void pt_side_close_cb(struct raft_uv_transport *t)
{
    struct pt_side *s = t->data;
    s->closed++;
    s->close_seq = ++pt_side_seq;
}

void pt_side_init(struct pt_side *s, uv_loop_t *loop, const char *cluster, raft_id id,
                  const char *address)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->t.data = s;
    assert_int_equal(pt_transport_init(&s->t, loop, cluster), 0);
    assert_ptr_equal(s->t.data, s);
    assert_int_equal(s->t.init(&s->t, id, address), 0);
}

void pt_side_listen(struct pt_side *s)
{
    assert_int_equal(s->t.listen(&s->t, pt_side_accept_cb), 0);
}

/* Closes the streams it accepted, then the transport, and releases it. */
void pt_side_close(struct pt_side *s)
{
    for (int i = 0; i < s->n_accepted; i++)
        uv_close((uv_handle_t *)s->accepted[i], pt_loopback_free_stream_cb);
    s->t.close(&s->t, pt_side_close_cb);
    assert_true(PT_LOOP_RUN_UNTIL_GE(s->loop, &s->closed, 1, 5000));
    assert_int_equal(s->closed, 1);
    pt_transport_close(&s->t);
}

void pt_side_connect_and_wait(struct pt_side *s, struct pt_outcome *o, raft_id id,
                              const char *address)
{
    memset(o, 0, sizeof(*o));
    o->req.data = o;
    assert_int_equal(s->t.connect(&s->t, &o->req, id, address, pt_side_connect_cb), 0);
    assert_int_equal(o->calls, 0); /* never from inside connect */
    assert_true(PT_LOOP_RUN_UNTIL_GE(s->loop, &o->calls, 1, 5000));
}

/* ---- Stream I/O for the tests ------------------------------------------------------------- */

struct reader {
    char buf[128];
    size_t len;
    int ended;
};

static void reader_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct reader *r = h->data;
    (void)suggested;
    *buf = uv_buf_init(r->buf + r->len, (unsigned)(sizeof(r->buf) - r->len));
}

static void reader_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct reader *r = s->data;
    (void)buf;
    if (nread > 0)
        r->len += (size_t)nread;
    else if (nread < 0) {
        r->ended = 1;
        uv_read_stop(s);
    }
}

static void write_done_cb(uv_write_t *w, int status)
{
    *(int *)w->data = status == 0 ? 1 : -1;
}

/* Sends text over from, reads it back on to. */
void pt_side_check_data_flows(uv_stream_t *from, uv_stream_t *to, const char *text)
{
    struct reader r = {.len = 0};
    uv_write_t w;
    int wrote = 0;
    uv_buf_t buf = uv_buf_init((char *)text, (unsigned)strlen(text));
    int len_target = (int)strlen(text);
    int got = 0;

    to->data = &r;
    assert_int_equal(uv_read_start(to, reader_alloc_cb, reader_read_cb), 0);
    w.data = &wrote;
    assert_int_equal(uv_write(&w, from, &buf, 1, write_done_cb), 0);
    for (int i = 0; i < 200 && (int)r.len < len_target; i++)
        PT_LOOP_RUN_FOR(to->loop, 10);
    assert_true(PT_LOOP_RUN_UNTIL_GE(to->loop, &wrote, 1, 2000));
    got = (int)r.len;
    assert_int_equal(got, len_target);
    assert_memory_equal(r.buf, text, r.len);
    uv_read_stop(to);
    to->data = NULL;
}

/* ---- Fixture ------------------------------------------------------------------------------ */

int pt_side_setup(void **state)
{
    pt_side_seq = 0;
    return uv_loop_init(*state);
}

int pt_side_teardown(void **state)
{
    uv_loop_t *loop = *state;
    uv_run(loop, UV_RUN_NOWAIT);
    /* 0 only if every handle the test and the transport opened was closed */
    assert_int_equal(uv_loop_close(loop), 0);
    return 0;
}
