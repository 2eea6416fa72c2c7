/*
 * committer.c - group-committing apply thread for a single region (see committer.h).
 *
 * Thread model: proposals arrive from any thread through a mutex-protected queue and a
 * uv_async on the committer's own loop. The loop drains the queue, applies each command with
 * pt_fsm_apply at the next index (sync=0 writes: visible at once to readers), then makes the
 * whole batch durable with one WAL fsync and only then replies to every proposer through its
 * mailbox. While one batch is being synced, the next one queues up, so throughput grows with
 * concurrency instead of being bound by the fsync rate.
 */
#include "committer.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <uv.h>

#include "err.h"
#include "fsm.h"
#include "log.h"
#include "metastore.h"

struct pt_committer {
    struct pt_metastore *ms;
    uv_loop_t loop;
    uv_async_t wake;
    pthread_t thread;
    pthread_mutex_t lock; /* guards head, tail, stopping */
    struct pt_proposal *head, *tail;
    int stopping;
    uint64_t index; /* owner: committer thread */
};

static void reply(struct pt_proposal *p)
{
    pt_mailbox_post(p->reply_to, &p->mail, (pt_mail_cb)p->done_cb);
}

static void apply_batch(struct pt_committer *c, struct pt_proposal *batch)
{
    struct pt_proposal *p;
    for (p = batch; p != NULL; p = p->next) {
        struct pt_fsm_result res = {0};
        uint64_t index = c->index + 1;
        int rv = pt_fsm_apply(c->ms, p->buf, p->len, index, &res);
        free(p->buf);
        p->buf = NULL;
        if (rv != 0) {
            p->status = rv;
            pt_log(PT_LOG_ERROR, "apply failed", "{s:I,s:s}", "index", (json_int_t)index, "error",
                   pt_err_message(rv));
            continue;
        }
        c->index = index;
        p->index = index;
        p->status = res.status;
    }
    int rv = pt_metastore_sync(c->ms);
    while (batch != NULL) {
        struct pt_proposal *next = batch->next;
        if (rv != 0 && batch->status == 0)
            batch->status = rv;
        reply(batch);
        batch = next;
    }
}

static void on_wake(uv_async_t *async)
{
    struct pt_committer *c = async->data;
    pthread_mutex_lock(&c->lock);
    struct pt_proposal *batch = c->head;
    c->head = c->tail = NULL;
    int stopping = c->stopping;
    pthread_mutex_unlock(&c->lock);
    if (batch != NULL)
        apply_batch(c, batch);
    if (stopping)
        uv_close((uv_handle_t *)&c->wake, NULL);
}

static void *run(void *arg)
{
    struct pt_committer *c = arg;
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return NULL;
}

int pt_committer_start(struct pt_metastore *ms, struct pt_committer **out)
{
    struct pt_committer *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PT_E_NOMEM;
    c->ms = ms;
    c->index = pt_metastore_applied_index(ms);
    pthread_mutex_init(&c->lock, NULL);
    if (uv_loop_init(&c->loop) != 0)
        goto err_after_alloc;
    c->wake.data = c;
    if (uv_async_init(&c->loop, &c->wake, on_wake) != 0)
        goto err_after_loop;
    if (pthread_create(&c->thread, NULL, run, c) != 0)
        goto err_after_async;
    *out = c;
    return 0;

err_after_async:
    uv_close((uv_handle_t *)&c->wake, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
err_after_loop:
    uv_loop_close(&c->loop);
err_after_alloc:
    pthread_mutex_destroy(&c->lock);
    free(c);
    return PT_E_INTERNAL;
}

void pt_committer_propose(struct pt_committer *c, struct pt_proposal *p)
{
    p->next = NULL;
    p->status = 0;
    p->index = 0;
    pthread_mutex_lock(&c->lock);
    if (c->tail != NULL)
        c->tail->next = p;
    else
        c->head = p;
    c->tail = p;
    pthread_mutex_unlock(&c->lock);
    uv_async_send(&c->wake);
}

void pt_committer_stop(struct pt_committer *c)
{
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    pthread_mutex_unlock(&c->lock);
    uv_async_send(&c->wake);
    pthread_join(c->thread, NULL);
    uv_loop_close(&c->loop);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
