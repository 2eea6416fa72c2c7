/*
 * runner.c - the thread of a background runner of the node (see runner.h).
 */
#include "runner.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "worker.h"

int pt_runner_init(struct pt_runner *r, struct pt_node *node, uv_loop_t *loop)
{
    memset(r, 0, sizeof(*r));
    r->node = node;
    if (pt_mailbox_init(&r->mailbox, loop) != 0)
        return PT_E_NOMEM;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    return 0;
}

int pt_runner_spawn(struct pt_runner *r, void *(*main)(void *), void *arg)
{
    if (pthread_create(&r->thread, NULL, main, arg) != 0) {
        pt_mailbox_close(&r->mailbox);
        return PT_E_INTERNAL;
    }
    return 0;
}

void pt_runner_stop(struct pt_runner *r)
{
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pt_mailbox_close(&r->mailbox);
}

int pt_runner_request(struct pt_runner *r, int dry_run)
{
    pthread_mutex_lock(&r->lock);
    int rv = r->running || r->requested != 0 ? PT_E_EXISTS : 0;
    if (rv == 0) {
        r->requested = dry_run ? 2 : 1;
        pthread_cond_broadcast(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
    return rv;
}

int pt_runner_wait(struct pt_runner *r, int64_t wait_ms, int *req)
{
    pthread_mutex_lock(&r->lock);
    if (!r->stop && r->requested == 0 && wait_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(wait_ms / 1000);
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->cond, &r->lock, &ts);
    }
    int stop = r->stop;
    *req = r->requested;
    if (r->requested != 0) {
        r->running = 1;
        r->dry_run = r->requested == 2;
    }
    r->requested = 0;
    pthread_mutex_unlock(&r->lock);
    return stop;
}

int pt_runner_stopping(struct pt_runner *r)
{
    pthread_mutex_lock(&r->lock);
    int s = r->stop;
    pthread_mutex_unlock(&r->lock);
    return s;
}

/* Main loop: the committer answered the proposal in flight. */
static void proposal_done_cb(struct pt_proposal *p)
{
    struct pt_runner *r = (struct pt_runner *)((char *)p - offsetof(struct pt_runner, prop));
    pthread_mutex_lock(&r->lock);
    r->prop_done = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

int pt_runner_propose(struct pt_runner *r, int kind, void *buf, size_t len)
{
    struct pt_proposal *p = &r->prop;
    memset(p, 0, sizeof(*p));
    p->reply_to = &r->mailbox;
    p->done_cb = proposal_done_cb;
    p->kind = kind;
    p->buf = buf;
    p->len = len;
    pthread_mutex_lock(&r->lock);
    r->prop_done = 0;
    pthread_mutex_unlock(&r->lock);
    pt_committer_submit(r->node->committer, p);
    pthread_mutex_lock(&r->lock);
    while (!r->prop_done && !r->stop)
        pthread_cond_wait(&r->cond, &r->lock);
    int done = r->prop_done;
    pthread_mutex_unlock(&r->lock);
    return done ? p->status : PT_E_UNAVAILABLE;
}

json_t *pt_runner_raft_status(struct pt_runner *r)
{
    if (pt_runner_propose(r, PT_JOB_STATUS, NULL, 0) != 0 || r->prop.text == NULL)
        return NULL;
    json_t *o = json_loads(r->prop.text, 0, NULL);
    free(r->prop.text);
    r->prop.text = NULL;
    return o;
}

int pt_runner_leads(struct pt_runner *r)
{
    if (!pt_committer_is_cluster(r->node->committer))
        return 1;
    json_t *o = pt_runner_raft_status(r);
    const char *role = json_string_value(json_object_get(o, "role"));
    int leader = role != NULL && strcmp(role, "leader") == 0;
    json_decref(o);
    return leader;
}
