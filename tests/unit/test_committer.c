/*
 * test_committer.c - the single-region committer: proposals from several threads are all
 * applied exactly once, each done callback runs exactly once on the proposer's loop (through
 * its mailbox), precondition failures come back as the proposal's status without stopping
 * the others, a write is readable by the time its proposer hears of it, the applied index
 * advances once per proposal and survives a reopen; and a group whose synced write fails
 * (injected through the metastore's fault seam) is answered with the error, leaves nothing
 * visible and stops the log: every later proposal is refused until a restart.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "command.h"
#include "committer.h"
#include "err.h"
#include "log.h"
#include "mailbox.h"
#include "metastore.h"

#define THREADS    4
#define PER_THREAD 50
#define DIGEST     "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

struct shared {
    struct pt_committer *c;
    struct pt_metastore *ms;
    uv_loop_t loop;
    struct pt_mailbox mailbox;
    pthread_mutex_t lock;
    unsigned done, failed, proposed;
    pthread_t loop_thread;
};

struct my_proposal {
    struct pt_proposal p;
    struct shared *sh;
    unsigned n; /* a link into repo/<n>, or (every tenth in test_many_threads) a failing delete */
    unsigned calls;
    int visible; /* the link was readable when the callback ran */
    pthread_t loop_thread_seen;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int linked(struct pt_metastore *ms, unsigned n)
{
    char repo[64];
    snprintf(repo, sizeof(repo), "repo/%u", n);
    return pt_metastore_blob_linked(ms, repo, DIGEST, NULL) == 0;
}

static void on_done(struct pt_proposal *p)
{
    struct my_proposal *mp = (struct my_proposal *)p;
    mp->visible = linked(mp->sh->ms, mp->n);
    mp->calls++;
    mp->loop_thread_seen = pthread_self();
    mp->sh->done++;
    if (p->status != 0)
        mp->sh->failed++;
    if (mp->sh->done == mp->sh->proposed)
        uv_stop(&mp->sh->loop);
}

/* A command linking a blob into repo (succeeds) or deleting an absent tag (fails). */
static void encode(int fail, unsigned n, void **buf, size_t *len)
{
    struct pt_command_builder b;
    char repo[64];
    snprintf(repo, sizeof(repo), "repo/%u", n);
    assert_int_equal(pt_command_builder_init(&b, 1700000000000LL, "local"), 0);
    if (fail)
        assert_int_equal(pt_command_add_delete_tag(&b, repo, "absent"), 0);
    else
        assert_int_equal(pt_command_add_link_blob(&b, repo, DIGEST, 3), 0);
    assert_int_equal(pt_command_builder_encode(&b, buf, len), 0);
    pt_command_builder_free(&b);
}

struct proposer_arg {
    struct shared *sh;
    struct my_proposal *props;
    unsigned first;
};

static void *proposer(void *arg)
{
    struct proposer_arg *a = arg;
    for (unsigned i = 0; i < PER_THREAD; i++) {
        struct my_proposal *mp = &a->props[i];
        unsigned n = a->first + i;
        mp->sh = a->sh;
        mp->n = n;
        mp->p.reply_to = &a->sh->mailbox;
        mp->p.done_cb = on_done;
        encode(n % 10 == 0, n, &mp->p.buf, &mp->p.len);
        mp->p.kind = PT_JOB_PROPOSE;
        pt_committer_submit(a->sh->c, &mp->p);
    }
    return NULL;
}

static void test_many_threads(void **state)
{
    (void)state;
    char dir[] = "/tmp/pt-committer-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct pt_metastore *ms;
    assert_int_equal(pt_metastore_open(dir, &ms), 0);

    struct shared sh = {.ms = ms};
    assert_int_equal(uv_loop_init(&sh.loop), 0);
    assert_int_equal(pt_mailbox_init(&sh.mailbox, &sh.loop), 0);
    assert_int_equal(pt_committer_start(ms, NULL, &sh.c), 0);
    sh.proposed = THREADS * PER_THREAD;
    sh.loop_thread = pthread_self();

    static struct my_proposal props[THREADS][PER_THREAD];
    struct proposer_arg args[THREADS];
    pthread_t threads[THREADS];
    for (unsigned t = 0; t < THREADS; t++) {
        args[t] = (struct proposer_arg){&sh, props[t], t * PER_THREAD};
        assert_int_equal(pthread_create(&threads[t], NULL, proposer, &args[t]), 0);
    }
    uv_run(&sh.loop, UV_RUN_DEFAULT);
    for (unsigned t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);

    /* Every callback exactly once, on the mailbox's loop thread; one in ten failed. */
    assert_int_equal(sh.done, THREADS * PER_THREAD);
    assert_int_equal(sh.failed, THREADS * PER_THREAD / 10);
    for (unsigned t = 0; t < THREADS; t++) {
        for (unsigned i = 0; i < PER_THREAD; i++) {
            struct my_proposal *mp = &props[t][i];
            unsigned n = t * PER_THREAD + i;
            assert_int_equal(mp->calls, 1);
            assert_true(pthread_equal(mp->loop_thread_seen, sh.loop_thread));
            assert_null(mp->p.buf); /* consumed by the committer */
            assert_int_equal(mp->p.status, n % 10 == 0 ? PT_E_MANIFEST_UNKNOWN : 0);
            assert_int_equal(mp->visible, n % 10 != 0); /* visible, then acknowledged */
            assert_true(mp->p.index >= 1 && mp->p.index <= THREADS * PER_THREAD);
            char repo[64];
            uint64_t size = 0;
            snprintf(repo, sizeof(repo), "repo/%u", n);
            int rv = pt_metastore_blob_linked(ms, repo, DIGEST, &size);
            assert_int_equal(rv, n % 10 == 0 ? PT_E_BLOB_UNKNOWN : 0);
        }
    }
    /* One index per proposal, failed ones included. */
    assert_int_equal(pt_metastore_applied_index(ms), THREADS * PER_THREAD);

    pt_committer_stop(sh.c);
    pt_mailbox_close(&sh.mailbox);
    uv_run(&sh.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&sh.loop), 0);
    pt_metastore_close(ms);

    /* The index and the state survive a reopen, and a new committer continues from there. */
    assert_int_equal(pt_metastore_open(dir, &ms), 0);
    assert_int_equal(pt_metastore_applied_index(ms), THREADS * PER_THREAD);
    uint64_t size;
    assert_int_equal(pt_metastore_blob_linked(ms, "repo/1", DIGEST, &size), 0);
    assert_int_equal(size, 3);
    pt_metastore_close(ms);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Submits props[0..count) (links into repo/<first + i>) from this thread, then runs the loop
 * until every one has been answered. */
static void propose_links(struct shared *sh, struct my_proposal *props, unsigned first,
                          unsigned count)
{
    sh->proposed += count;
    for (unsigned i = 0; i < count; i++) {
        struct my_proposal *mp = &props[i];
        *mp = (struct my_proposal){.sh = sh, .n = first + i};
        mp->p.reply_to = &sh->mailbox;
        mp->p.done_cb = on_done;
        mp->p.kind = PT_JOB_PROPOSE;
        encode(0, first + i, &mp->p.buf, &mp->p.len);
        pt_committer_submit(sh->c, &mp->p);
    }
    uv_run(&sh->loop, UV_RUN_DEFAULT);
    assert_int_equal(sh->done, sh->proposed);
}

static void start(struct shared *sh, struct pt_metastore *ms)
{
    *sh = (struct shared){.ms = ms, .loop_thread = pthread_self()};
    assert_int_equal(uv_loop_init(&sh->loop), 0);
    assert_int_equal(pt_mailbox_init(&sh->mailbox, &sh->loop), 0);
    assert_int_equal(pt_committer_start(ms, NULL, &sh->c), 0);
}

static void stop(struct shared *sh)
{
    pt_committer_stop(sh->c);
    pt_mailbox_close(&sh->mailbox);
    uv_run(&sh->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&sh->loop), 0);
}

static void on_status(struct pt_proposal *p)
{
    struct my_proposal *mp = (struct my_proposal *)p;
    mp->calls++;
    uv_stop(&mp->sh->loop);
}

#define FAILING 8

static void test_failed_commit_stops_the_log(void **state)
{
    (void)state;
    char dir[] = "/tmp/pt-committer-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct pt_metastore *ms;
    assert_int_equal(pt_metastore_open(dir, &ms), 0);
    struct shared sh;
    start(&sh, ms);
    struct my_proposal ok, props[FAILING], late;
    propose_links(&sh, &ok, 0, 1);
    assert_int_equal(ok.p.status, 0);
    assert_int_equal(ok.p.index, 1);

    /* the next synced write fails: whatever groups the proposals fall into, the first is
     * answered with the I/O error and every later one is refused; none is visible, none
     * applied at index 2 or after */
    int devnull = open("/dev/null", O_WRONLY);
    assert_true(devnull >= 0);
    int saved = pt_log_set_fd(devnull);
    pt_metastore_fail_next_commit(ms, PT_E_IO);
    propose_links(&sh, props, 1, FAILING);
    assert_int_equal(props[0].p.status, PT_E_IO);
    for (unsigned i = 0; i < FAILING; i++) {
        assert_int_equal(props[i].calls, 1);
        assert_true(props[i].p.status == PT_E_IO || props[i].p.status == PT_E_UNAVAILABLE);
        assert_int_equal(props[i].p.index, 0);
        assert_false(props[i].visible);
        assert_false(linked(ms, 1 + i));
    }
    assert_int_equal(pt_metastore_applied_index(ms), 1);

    /* the fault is gone, but the log stays stopped until a restart */
    propose_links(&sh, &late, 100, 1);
    assert_int_equal(late.p.status, PT_E_UNAVAILABLE);
    assert_int_equal(late.p.index, 0);
    assert_false(linked(ms, 100));
    assert_int_equal(pt_metastore_applied_index(ms), 1);
    struct my_proposal status = {.sh = &sh};
    status.p.reply_to = &sh.mailbox;
    status.p.done_cb = on_status;
    status.p.kind = PT_JOB_STATUS;
    pt_committer_submit(sh.c, &status.p);
    uv_run(&sh.loop, UV_RUN_DEFAULT);
    assert_int_equal(status.calls, 1);
    assert_non_null(status.p.text);
    assert_non_null(strstr(status.p.text, "\"halted\":\"storage I/O error\""));
    assert_non_null(strstr(status.p.text, "\"applied_index\":1"));
    free(status.p.text);
    stop(&sh);
    pt_log_set_fd(saved);
    close(devnull);
    assert_true(linked(ms, 0));
    pt_metastore_close(ms);

    /* a restart goes on from the last durable index */
    assert_int_equal(pt_metastore_open(dir, &ms), 0);
    start(&sh, ms);
    propose_links(&sh, &late, 200, 1);
    assert_int_equal(late.p.status, 0);
    assert_int_equal(late.p.index, 2);
    assert_true(late.visible);
    assert_false(linked(ms, 1));
    stop(&sh);
    pt_metastore_close(ms);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_threads),
        cmocka_unit_test(test_failed_commit_stops_the_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
