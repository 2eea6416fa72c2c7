/*
 * committer.c - the apply thread (see committer.h).
 *
 * Thread model: jobs arrive from any thread through a mutex-protected queue and a uv_async
 * on the committer's own loop. Single region: the loop drains the queue and hands every
 * proposal that queued up to pt_fsm_apply_group, which stages them at the next indexes and
 * writes them with ONE synced RocksDB write; only when it has returned does any proposer get
 * its reply through its mailbox. While one group is being synced the next queues up, so
 * throughput grows with concurrency instead of being bound by the fsync rate. Cluster: the
 * same loop runs Raft (raft_node.c), which persists entries in its log before they are
 * applied, and every job is handed to it.
 *
 * Order in a single region: durable, then visible, then acknowledged. RocksDB makes a write
 * visible when rocksdb_write returns, and a synced write returns only after its WAL fsync, so
 * no reader sees a command before it is on disk, and no proposer hears of success before it
 * is visible (a client that got its 201 reads its write back from any thread).
 *
 * Failure: a group that cannot be staged, written or synced is answered with that error for
 * every one of its proposals, nothing of it is visible, and the metastore halts
 * (pt_metastore_halt): from then on every proposal is refused with PT_E_UNAVAILABLE (503)
 * until the node restarts, in both modes, and the log never goes on at the same index. The
 * halt is logged once, here (single region) or by raft_fsm.c (cluster).
 */
#include "committer.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "err.h"
#include "fsm.h"
#include "log.h"
#include "metastore.h"
#include "raft_node.h"

struct pt_committer {
    struct pt_metastore *ms;
    struct pt_raft_node *raft; /* cluster mode; owner: committer thread */
    int cluster;               /* set before the thread starts, then read-only */
    uv_loop_t loop;
    uv_async_t wake;
    pthread_t thread;
    pthread_mutex_t lock; /* guards head, tail, stopping */
    struct pt_proposal *head, *tail;
    int stopping;
};

static void reply(struct pt_proposal *p)
{
    pt_mailbox_post(p->reply_to, &p->mail, (pt_mail_cb)p->done_cb);
}

/* Single region: applies the batch as one durable group, then replies to every proposer. */
static void apply_batch(struct pt_committer *c, struct pt_proposal *batch)
{
    size_t n = 0;
    for (struct pt_proposal *p = batch; p != NULL; p = p->next)
        n++;
    struct pt_fsm_cmd *cmds = NULL;
    int rv = pt_metastore_halted(c->ms) != 0 ? PT_E_UNAVAILABLE : 0;
    if (rv == 0 && (cmds = calloc(n, sizeof(*cmds))) == NULL)
        rv = PT_E_NOMEM; /* nothing staged: the log goes on */
    if (rv == 0) {
        size_t i = 0;
        for (struct pt_proposal *p = batch; p != NULL; p = p->next, i++)
            cmds[i] = (struct pt_fsm_cmd){.buf = p->buf, .len = p->len};
        rv = pt_fsm_apply_group(c->ms, cmds, n);
        /* below the free-space reserve the group is refused whole, the store goes on */
        if (rv != 0 && rv != PT_E_DISK_FULL)
            pt_log(PT_LOG_ERROR, "commit failed; this region refuses every write until restart",
                   "{s:I,s:I,s:s}", "index", (json_int_t)pt_metastore_applied_index(c->ms) + 1,
                   "proposals", (json_int_t)n, "error", pt_err_message(rv));
    }
    for (size_t i = 0; batch != NULL; i++) {
        struct pt_proposal *next = batch->next;
        free(batch->buf);
        batch->buf = NULL;
        batch->status = rv != 0 ? rv : cmds[i].result.status;
        batch->index = rv != 0 ? 0 : cmds[i].index;
        reply(batch);
        batch = next;
    }
    free(cmds);
}

static char *local_status(struct pt_committer *c)
{
    json_t *o = json_pack("{s:s,s:I}", "role", "single", "applied_index",
                          (json_int_t)pt_metastore_applied_index(c->ms));
    int halted = pt_metastore_halted(c->ms);
    if (o != NULL && halted != 0)
        json_object_set_new(o, "halted", json_string(pt_err_message(halted)));
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

static void on_raft_done(void *arg, int status, uint64_t index)
{
    struct pt_proposal *p = arg;
    p->status = status;
    p->index = index;
    reply(p);
}

/* PT_JOB_CATCH_UP's question: is key ("repo\0digest") a blob link or a manifest now? */
static int digest_present(struct pt_metastore *ms, const void *key, size_t len)
{
    const char *repo = key;
    size_t rlen = strnlen(repo, len);
    if (rlen + 1 >= len)
        return 0;
    const char *digest = repo + rlen + 1;
    if (pt_metastore_blob_linked(ms, repo, digest, NULL) == 0)
        return 1;
    struct pt_manifest_rec rec;
    int found = pt_metastore_get_manifest(ms, repo, digest, &rec) == 0;
    if (found)
        pt_manifest_rec_free(&rec);
    return found;
}

static void on_catch_up_done(void *arg, int status, uint64_t index)
{
    struct pt_proposal *p = arg;
    free(p->buf);
    p->buf = NULL;
    on_raft_done(p, status, index);
}

/* Runs one job that is not a single-region proposal. */
static void run_job(struct pt_committer *c, struct pt_proposal *p)
{
    switch (p->kind) {
    case PT_JOB_PROPOSE: {
        void *buf = p->buf;
        p->buf = NULL;
        if (pt_metastore_halted(c->ms) != 0) {
            free(buf); /* this region stopped applying the log: see raft_fsm.c */
            p->status = PT_E_UNAVAILABLE;
            break;
        }
        pt_raft_node_propose(c->raft, buf, p->len, on_raft_done, p);
        return;
    }
    case PT_JOB_CATCH_UP:
        if (c->raft != NULL && p->buf != NULL) {
            pt_raft_node_catch_up(c->raft, digest_present, p->buf, p->len, on_catch_up_done, p);
            return;
        }
        free(p->buf);
        p->buf = NULL;
        /* fall through */
    case PT_JOB_READ_INDEX:
        if (c->raft != NULL) {
            pt_raft_node_read_index(c->raft, on_raft_done, p);
            return;
        }
        p->index = pt_metastore_applied_index(c->ms); /* one region: its state is the latest */
        break;
    case PT_JOB_ADD:
    case PT_JOB_REMOVE:
    case PT_JOB_TRANSFER:
        if (c->raft == NULL) {
            free(p->buf);
            p->buf = NULL;
            p->status = PT_E_UNSUPPORTED; /* a single region has no membership */
            break;
        }
        if (p->kind == PT_JOB_ADD) {
            const struct pt_region_rec *r = p->buf;
            pt_raft_node_add(c->raft, p->target, r->name, r->address, r->url, p->role, on_raft_done,
                             p);
        } else if (p->kind == PT_JOB_REMOVE)
            pt_raft_node_remove(c->raft, p->target, on_raft_done, p);
        else
            pt_raft_node_transfer(c->raft, p->target, on_raft_done, p);
        free(p->buf);
        p->buf = NULL;
        return;
    case PT_JOB_REPLICATION:
        p->text = c->raft != NULL ? pt_raft_node_replication_json(c->raft) : NULL;
        p->status = p->text != NULL ? 0 : c->raft != NULL ? PT_E_NOMEM : PT_E_UNSUPPORTED;
        break;
    case PT_JOB_BLOB_FEED:
        /* a single region holds every blob it has links for: nothing to fetch */
        p->status = c->raft != NULL ? pt_raft_node_blob_feed(c->raft, p->buf, p->target,
                                                             (struct pt_blob_feed **)&p->out)
                                    : PT_E_BLOB_UNKNOWN;
        free(p->buf);
        p->buf = NULL;
        break;
    case PT_JOB_STATUS:
    case PT_JOB_MEMBERS:
        p->text = c->raft != NULL ? pt_raft_node_status_json(c->raft, p->kind == PT_JOB_MEMBERS)
                                  : local_status(c);
        p->status = p->text != NULL ? 0 : PT_E_NOMEM;
        break;
    default:
        p->status = PT_E_INTERNAL;
        break;
    }
    reply(p);
}

static void on_raft_stopped(void *arg)
{
    struct pt_committer *c = arg;
    c->raft = NULL;
    uv_close((uv_handle_t *)&c->wake, NULL);
}

static void on_wake(uv_async_t *async)
{
    struct pt_committer *c = async->data;
    pthread_mutex_lock(&c->lock);
    struct pt_proposal *jobs = c->head;
    c->head = c->tail = NULL;
    int stopping = c->stopping;
    pthread_mutex_unlock(&c->lock);

    struct pt_proposal *batch = NULL, **tail = &batch;
    while (jobs != NULL) {
        struct pt_proposal *p = jobs;
        jobs = p->next;
        p->next = NULL;
        if (p->kind == PT_JOB_PROPOSE && c->raft == NULL) {
            *tail = p;
            tail = &p->next;
        } else {
            run_job(c, p);
        }
    }
    if (batch != NULL)
        apply_batch(c, batch);
    if (stopping && c->raft != NULL)
        pt_raft_node_stop(c->raft, on_raft_stopped, c);
    else if (stopping)
        uv_close((uv_handle_t *)&c->wake, NULL);
}

static void *run(void *arg)
{
    struct pt_committer *c = arg;
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return NULL;
}

int pt_committer_start(struct pt_metastore *ms, const struct pt_raft_node_config *cluster,
                       struct pt_committer **out)
{
    struct pt_committer *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PT_E_NOMEM;
    c->ms = ms;
    pthread_mutex_init(&c->lock, NULL);
    int rv = PT_E_INTERNAL;
    if (uv_loop_init(&c->loop) != 0)
        goto err_after_alloc;
    c->wake.data = c;
    if (uv_async_init(&c->loop, &c->wake, on_wake) != 0)
        goto err_after_loop;
    /* Raft starts before the thread does: until pthread_create the loop is this thread's. */
    if (cluster != NULL && (rv = pt_raft_node_start(&c->loop, ms, cluster, &c->raft)) != 0)
        goto err_after_async;
    c->cluster = c->raft != NULL;
    if (pthread_create(&c->thread, NULL, run, c) != 0) {
        rv = PT_E_INTERNAL;
        goto err_after_async;
    }
    *out = c;
    return 0;

err_after_async:
    if (c->raft != NULL) {
        pt_raft_node_stop(c->raft, on_raft_stopped, c);
    } else {
        uv_close((uv_handle_t *)&c->wake, NULL);
    }
    uv_run(&c->loop, UV_RUN_DEFAULT);
err_after_loop:
    uv_loop_close(&c->loop);
err_after_alloc:
    pthread_mutex_destroy(&c->lock);
    free(c);
    return rv;
}

int pt_committer_is_cluster(const struct pt_committer *c)
{
    return c->cluster;
}

void pt_committer_submit(struct pt_committer *c, struct pt_proposal *p)
{
    p->next = NULL;
    p->status = 0;
    p->index = 0;
    p->text = NULL;
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
