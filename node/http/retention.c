/*
 * retention.c - the retention runner's thread (see retention.h for what it does and when).
 *
 * A pass: the plan (metastore_policy.c) calls back with one tag or manifest at a time; they
 * are gathered into a batch (PT_COMMAND_RETAIN_MAX of each) and, when either list is full,
 * proposed as one Retain and waited for; the plan then goes on from where it was (the
 * callback returns only after the batch was applied here, so a later repository is planned
 * against the state that already lacks the earlier deletions). A dry run only records the
 * items. The report of a real run is what the apply deleted: each item is looked up again
 * once the command was applied in this region (a tag still naming the digest, a manifest
 * still there, stayed: the re-check kept it).
 *
 * State: struct pt_retention is owned by its thread except the fields under run.lock (request,
 * status, report, stop) read by the admin API; the thread, its requests and its one proposal
 * in flight are runner.h's.
 */
#include "retention.h"

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "command.h"
#include "committer.h"
#include "digest.h"
#include "err.h"
#include "log.h"
#include "runner.h"
#include "metastore.h"
#include "metrics.h"
#include "worker.h"

/* Items of the last pass kept for the status (what was deleted, or would be). */
#define REPORT_MAX 1000
/* The thread looks at the clock and its requests this often (ms). */
#define POLL_MS 1000

struct item {
    char repo[PT_METASTORE_REPO_MAX + 1];
    char tag[PT_METASTORE_TAG_MAX + 1]; /* "" for a manifest */
    char digest[PT_DIGEST_STR_MAX + 1];
    int64_t older_than_ms;
};

struct pt_retention {
    struct pt_node *node;
    struct pt_runner run; /* thread, lock, request (1 = a run, 2 = a dry run), proposal */
    /* status, under run.lock */
    uint64_t tags_deleted, manifests_deleted;
    int64_t started_ms, finished_ms;
    char last_error[128];
    struct item *report; /* REPORT_MAX */
    size_t nreport;
    int truncated;
    /* the thread's own */
    struct item *tags, *mans; /* PT_COMMAND_RETAIN_MAX each */
    size_t ntags, nmans;
    int64_t next_ms;
};

static void report_add(struct pt_retention *r, const struct item *it)
{
    /* under lock */
    if (it->tag[0] != '\0')
        r->tags_deleted++;
    else
        r->manifests_deleted++;
    if (r->nreport == REPORT_MAX) {
        r->truncated = 1;
        return;
    }
    r->report[r->nreport++] = *it;
}

/* Proposes the gathered items as one Retain and reports what the apply deleted. */
static int propose(struct pt_retention *r)
{
    if (r->ntags == 0 && r->nmans == 0)
        return 0;
    struct pt_command_retain_tag *t = calloc(r->ntags + 1, sizeof(*t));
    struct pt_command_retain_manifest *m = calloc(r->nmans + 1, sizeof(*m));
    int rv = t != NULL && m != NULL ? 0 : PT_E_NOMEM;
    for (size_t i = 0; rv == 0 && i < r->ntags; i++)
        t[i] = (struct pt_command_retain_tag){r->tags[i].repo, r->tags[i].tag, r->tags[i].digest};
    for (size_t i = 0; rv == 0 && i < r->nmans; i++)
        m[i] = (struct pt_command_retain_manifest){r->mans[i].repo, r->mans[i].digest,
                                                   r->mans[i].older_than_ms};
    struct pt_command_builder b;
    void *buf = NULL;
    size_t len = 0;
    if (rv == 0 &&
        (rv = pt_command_builder_init(&b, pt_clock_wall_ms(), r->node->cfg.region)) == 0) {
        rv = pt_command_add_retain(&b, t, r->ntags, m, r->nmans);
        if (rv == 0)
            rv = pt_command_builder_encode(&b, &buf, &len);
        pt_command_builder_free(&b);
    }
    free(t);
    free(m);
    if (rv == 0)
        rv = pt_runner_propose(&r->run, PT_JOB_PROPOSE, buf, len);
    else
        free(buf);
    if (rv != 0)
        return rv;
    /* answered once applied here: what is gone went with this command (or a concurrent delete) */
    pthread_mutex_lock(&r->run.lock);
    for (size_t i = 0; i < r->ntags; i++) {
        char d[PT_DIGEST_STR_MAX + 1];
        int g = pt_metastore_get_tag(r->node->ms, r->tags[i].repo, r->tags[i].tag, d);
        if (g == PT_E_MANIFEST_UNKNOWN || (g == 0 && strcmp(d, r->tags[i].digest) != 0))
            report_add(r, &r->tags[i]);
    }
    for (size_t i = 0; i < r->nmans; i++)
        if (pt_metastore_get_manifest(r->node->ms, r->mans[i].repo, r->mans[i].digest, NULL) ==
            PT_E_MANIFEST_UNKNOWN)
            report_add(r, &r->mans[i]);
    pthread_mutex_unlock(&r->run.lock);
    r->ntags = r->nmans = 0;
    return 0;
}

/* An item of the plan: recorded (dry run) or gathered, proposing a full batch at once. */
static int take(struct pt_retention *r, const char *repo, const char *tag, const char *digest,
                int64_t older_than_ms)
{
    if (pt_runner_stopping(&r->run))
        return PT_E_UNAVAILABLE;
    struct item it;
    snprintf(it.repo, sizeof(it.repo), "%s", repo);
    snprintf(it.tag, sizeof(it.tag), "%s", tag != NULL ? tag : "");
    snprintf(it.digest, sizeof(it.digest), "%s", digest);
    it.older_than_ms = older_than_ms;
    if (r->run.dry_run) {
        pthread_mutex_lock(&r->run.lock);
        report_add(r, &it);
        pthread_mutex_unlock(&r->run.lock);
        return 0;
    }
    if (tag != NULL)
        r->tags[r->ntags++] = it;
    else
        r->mans[r->nmans++] = it;
    if (r->ntags < PT_COMMAND_RETAIN_MAX && r->nmans < PT_COMMAND_RETAIN_MAX)
        return 0;
    return propose(r);
}

static int tag_cb(const char *repo, const char *tag, const char *digest, void *arg)
{
    return take(arg, repo, tag, digest, 0);
}

static int man_cb(const char *repo, const char *digest, int64_t older_than_ms, void *arg)
{
    /* the tags this manifest loses are in an earlier batch (applied) or ahead of it in the
     * same one (Retain deletes tags first) */
    return take(arg, repo, NULL, digest, older_than_ms);
}

static void run_pass(struct pt_retention *r, int dry_run)
{
    int64_t mono = pt_clock_mono_ms();
    pthread_mutex_lock(&r->run.lock);
    r->run.running = 1;
    r->run.dry_run = dry_run;
    r->tags_deleted = r->manifests_deleted = 0;
    r->nreport = 0;
    r->truncated = 0;
    r->started_ms = pt_clock_wall_ms();
    r->last_error[0] = '\0';
    pthread_mutex_unlock(&r->run.lock);
    r->ntags = r->nmans = 0;
    int rv = pt_metastore_retention_plan(r->node->ms, pt_clock_wall_ms(), tag_cb, man_cb, r);
    if (rv == 0 && !dry_run)
        rv = propose(r);
    int64_t end = pt_clock_wall_ms();
    pthread_mutex_lock(&r->run.lock);
    r->run.running = 0;
    r->finished_ms = end;
    if (rv != 0)
        snprintf(r->last_error, sizeof(r->last_error), "%s", pt_err_message(rv));
    uint64_t tags = r->tags_deleted, mans = r->manifests_deleted;
    pthread_mutex_unlock(&r->run.lock);
    if (!dry_run)
        pt_metrics_retention_run(end, tags, mans);
    pt_log(rv == 0 ? PT_LOG_INFO : PT_LOG_WARN, "retention run", "{s:b,s:I,s:I,s:I,s:s}", "dry_run",
           dry_run, "tags", (json_int_t)tags, "manifests", (json_int_t)mans, "duration_ms",
           (json_int_t)(pt_clock_mono_ms() - mono), "result", rv == 0 ? "ok" : pt_err_message(rv));
}

static void *retention_main(void *arg)
{
    struct pt_retention *r = arg;
    uint64_t every = r->node->cfg.retention_interval_ms;
    r->next_ms = every > 0 ? pt_clock_mono_ms() + (int64_t)every : 0;
    for (;;) {
        int req;
        if (pt_runner_wait(&r->run, POLL_MS, &req))
            break;
        int64_t now = pt_clock_mono_ms();
        int scheduled = r->next_ms != 0 && now >= r->next_ms;
        if (scheduled)
            r->next_ms = now + (int64_t)every;
        if (req != 0 || (scheduled && pt_runner_leads(&r->run)))
            run_pass(r, req == 2);
    }
    return NULL;
}

int pt_retention_start(struct pt_node *node, uv_loop_t *loop, struct pt_retention **out)
{
    struct pt_retention *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return PT_E_NOMEM;
    r->node = node;
    r->report = calloc(REPORT_MAX, sizeof(*r->report));
    r->tags = calloc(PT_COMMAND_RETAIN_MAX, sizeof(*r->tags));
    r->mans = calloc(PT_COMMAND_RETAIN_MAX, sizeof(*r->mans));
    if (r->report == NULL || r->tags == NULL || r->mans == NULL ||
        pt_runner_init(&r->run, node, loop) != 0) {
        free(r->report);
        free(r->tags);
        free(r->mans);
        free(r);
        return PT_E_NOMEM;
    }
    if (pt_runner_spawn(&r->run, retention_main, r) != 0)
        return PT_E_INTERNAL; /* r stays allocated: the mailbox closes on the loop */
    *out = r;
    return 0;
}

void pt_retention_stop(struct pt_retention *r)
{
    if (r == NULL)
        return;
    pt_runner_stop(&r->run);
}

int pt_retention_request(struct pt_retention *r, int dry_run)
{
    return pt_runner_request(&r->run, dry_run);
}

char *pt_retention_status_json(struct pt_retention *r)
{
    pthread_mutex_lock(&r->run.lock);
    json_t *tags = json_array(), *mans = json_array();
    for (size_t i = 0; tags != NULL && mans != NULL && i < r->nreport; i++) {
        const struct item *it = &r->report[i];
        if (it->tag[0] != '\0')
            json_array_append_new(tags, json_pack("{s:s,s:s,s:s}", "repo", it->repo, "tag", it->tag,
                                                  "digest", it->digest));
        else
            json_array_append_new(mans,
                                  json_pack("{s:s,s:s}", "repo", it->repo, "digest", it->digest));
    }
    json_t *o = json_pack(
        "{s:s,s:b,s:b,s:I,s:I,s:I,s:I,s:o,s:o,s:b,s:s,s:I}", "region", r->node->cfg.region,
        "running", r->run.running || r->run.requested != 0, "dry_run",
        r->run.running ? r->run.dry_run : r->run.requested == 2 || r->run.dry_run, "tags_deleted",
        (json_int_t)r->tags_deleted, "manifests_deleted", (json_int_t)r->manifests_deleted,
        "started_ms", (json_int_t)r->started_ms, "finished_ms", (json_int_t)r->finished_ms, "tags",
        tags != NULL ? tags : json_array(), "manifests", mans != NULL ? mans : json_array(),
        "truncated", r->truncated, "error", r->last_error, "interval_ms",
        (json_int_t)r->node->cfg.retention_interval_ms);
    pthread_mutex_unlock(&r->run.lock);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}
