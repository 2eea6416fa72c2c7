/*
 * metastore_retention.c - the retention rules at work (see metastore.h): the plan that walks
 * the repositories a rule matches and reports what the rules delete, and the re-check the FSM
 * makes of every item of a Retain command, through its batch, as of the command's time.
 *
 * One rule decides both (manifest_goes and filter_repo below), so a dry run lists exactly what
 * a run deletes on the same state:
 *   - a tag goes when a keep_last rule matches it and it is older (update time, then name)
 *     than the rule's keep_last newest matching tags of its repository, and no lock or
 *     immutable rule holds it (metastore_policy.c's checks);
 *   - a manifest goes when an untagged rule matches its repository, it was pushed at least
 *     that long ago, no tag names it (or only tags that go), it is no child of a manifest of
 *     its repository, no referrer of it is there, it is no referrer of a subject that is
 *     there, and neither it nor its repository is locked for deletes.
 * Memory: the plan holds the rules, keep_last entries per rule for the current repository and
 * at most PT_POLICY_RETAIN_BATCH_MAX manifests gathered before the repository-wide walks
 * (tags, index children) filter them; one such walk serves every gathered manifest. The
 * apply does the same per repository of a Retain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "err.h"
#include "manifest.h"
#include "metastore_int.h"
#include "tagglob.h"

static int any_cb(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    (void)k, (void)klen, (void)v, (void)vlen, (void)arg;
    return 1;
}

/* One manifest of a retention decision, with what the repository-wide walks found. */
struct cand {
    char digest[PT_METASTORE_DIGEST_MAX + 1];
    int64_t older_than_ms;
    size_t at; /* its position in the caller's list */
    bool keep; /* tagged (by a tag that stays) or a child of another manifest */
};

static int cand_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cand *)a)->digest, ((const struct cand *)b)->digest);
}

static struct cand *cand_find(struct cand *c, size_t n, const char *digest)
{
    struct cand key;
    snprintf(key.digest, sizeof(key.digest), "%s", digest);
    return bsearch(&key, c, n, sizeof(*c), cand_cmp);
}

struct filter {
    struct pt_metastore *ms;
    const char *repo;
    size_t rlen;
    struct cand *c;
    size_t n;
    /* the plan's decision on a tag: 1 = it goes; NULL = no tag goes (apply: already staged) */
    int (*goes)(void *arg, const char *repo, const char *tag, const char *digest, int64_t upd);
    void *arg;
};

/* A tag naming a candidate keeps it, unless the plan deletes that tag. */
static int filter_tag_cb(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    struct filter *f = arg;
    char d[PT_METASTORE_DIGEST_MAX + 1], tag[PT_METASTORE_TAG_MAX + 1];
    int64_t upd;
    int rv = ms_dec_tag(v, vlen, d, &upd);
    if (rv != 0)
        return rv;
    struct cand *c = cand_find(f->c, f->n, d);
    if (c == NULL || c->keep)
        return 0;
    if (klen - f->rlen > PT_METASTORE_TAG_MAX)
        return PT_E_CORRUPT;
    memcpy(tag, k + f->rlen, klen - f->rlen);
    tag[klen - f->rlen] = '\0';
    rv = f->goes != NULL ? f->goes(f->arg, f->repo, tag, d, upd) : 0;
    if (rv < 0)
        return rv;
    c->keep = rv == 0;
    return 0;
}

/* An index (or manifest list) naming a candidate as its child keeps it. */
static int filter_child_cb(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    (void)k, (void)klen;
    struct filter *f = arg;
    struct pt_manifest_rec rec;
    int rv = ms_dec_manifest(v, vlen, &rec, false);
    if (rv != 0)
        return rv;
    if (strstr(rec.media_type, "index") == NULL && strstr(rec.media_type, "list") == NULL)
        return 0;
    if ((rv = ms_dec_manifest(v, vlen, &rec, true)) != 0)
        return rv;
    struct pt_manifest_info info;
    if (pt_manifest_parse(rec.body, rec.len, rec.media_type, &info) == 0) {
        for (size_t i = 0; i < info.nchildren; i++) {
            char d[PT_DIGEST_STR_MAX + 1];
            pt_digest_format(&info.children[i].digest, d);
            struct cand *c = cand_find(f->c, f->n, d);
            if (c != NULL)
                c->keep = true;
        }
        pt_manifest_info_free(&info);
    } else {
        for (size_t i = 0; i < f->n; i++) /* cannot tell which: keep every one it names */
            f->c[i].keep |= strstr(rec.body, f->c[i].digest) != NULL;
    }
    pt_manifest_rec_free(&rec);
    return 0;
}

/* Marks keep on the candidates c[0..n) of repo (sorted here by digest) that a tag names (one
 * that stays) or that are the child of a manifest of the repository: one walk over the
 * repository's tags and one over its manifests, whatever n is. */
static int filter_repo(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                       struct cand *c, size_t n,
                       int (*goes)(void *, const char *, const char *, const char *, int64_t),
                       void *arg)
{
    if (n == 0)
        return 0;
    qsort(c, n, sizeof(*c), cand_cmp);
    char prefix[PT_METASTORE_REPO_MAX + 2];
    size_t rlen = strlen(repo) + 1;
    memcpy(prefix, repo, rlen);
    struct filter f = {ms, repo, rlen, c, n, goes, arg};
    int rv = ms_policy_walk(ms, wb, CF_TAGS, prefix, rlen, filter_tag_cb, &f);
    if (rv == 0)
        rv = ms_policy_walk(ms, wb, CF_MANIFESTS, prefix, rlen, filter_child_cb, &f);
    return rv;
}

/* The checks of one manifest alone (the repository-wide ones are filter_repo's): 1 if
 * repo@digest may go by an untagged rule of older_than_ms as of now_ms, 0 if it stays: it is
 * there, pushed long enough ago, no referrer of a present subject, no subject of a referrer,
 * and neither the repository nor the manifest is locked for deletes. */
static int manifest_goes(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                         const char *digest, int64_t older_than_ms, int64_t now_ms)
{
    if (older_than_ms <= 0 || !ms_name_ok(repo, PT_METASTORE_REPO_MAX) || !ms_digest_ok(digest))
        return 0;
    struct pt_manifest_rec rec;
    int rv = ms_manifest_get(ms, wb, repo, digest, &rec, false);
    if (rv != 0)
        return rv == PT_E_MANIFEST_UNKNOWN ? 0 : rv;
    int64_t pushed = 0;
    rv = ms_gc_pushed_at(ms, wb, repo, digest, &pushed);
    if (rv < 0)
        return rv;
    if (pushed > now_ms || now_ms - pushed < older_than_ms)
        return 0;
    if (rec.subject[0] != '\0') {
        rv = ms_manifest_get(ms, wb, repo, rec.subject, NULL, false);
        if (rv != PT_E_MANIFEST_UNKNOWN)
            return rv < 0 ? rv : 0; /* a referrer of a manifest that is there */
    }
    char prefix[KEY_MAX];
    size_t plen = ms_key_join(prefix, repo, digest, NULL) + 1; /* repo \0 digest \0 */
    rv = ms_policy_walk(ms, wb, CF_REFERRERS, prefix, plen, any_cb, NULL);
    if (rv != 0)
        return rv < 0 ? rv : 0; /* the subject of something kept */
    int we, de;
    if ((rv = ms_policy_lock_get(ms, wb, repo, NULL, NULL, &we, &de)) != 0 || !de)
        return rv < 0 ? rv : 0;
    if ((rv = ms_policy_lock_get(ms, wb, repo, NULL, digest, &we, &de)) != 0 || !de)
        return rv < 0 ? rv : 0;
    return 1;
}

int pt_metastore_batch_retain_tag(struct pt_metastore_batch *b, const char *repo, const char *tag,
                                  const char *digest, int *ok)
{
    *ok = 0;
    char cur[PT_METASTORE_DIGEST_MAX + 1];
    int rv = ms_tag_get(b->ms, b->wb, repo, tag, cur);
    if (rv == PT_E_MANIFEST_UNKNOWN || (rv == 0 && strcmp(cur, digest) != 0))
        return 0; /* gone, or moved since the plan: a push wins */
    if (rv != 0)
        return rv;
    rv = ms_policy_check(b->ms, b->wb, PT_POLICY_TAG_DELETE, repo, tag, NULL);
    if (rv == PT_E_LOCKED || rv == PT_E_IMMUTABLE)
        return 0;
    if (rv != 0)
        return rv;
    *ok = 1;
    return 0;
}

int pt_metastore_batch_retain_manifests(struct pt_metastore_batch *b,
                                        const struct pt_retain_item *items, size_t n,
                                        int64_t now_ms, int *ok)
{
    if (n > PT_POLICY_RETAIN_BATCH_MAX)
        return PT_E_TOO_LARGE;
    for (size_t i = 0; i < n; i++) {
        int rv = manifest_goes(b->ms, b->wb, items[i].repo, items[i].digest, items[i].older_than_ms,
                               now_ms);
        if (rv < 0)
            return rv;
        ok[i] = rv;
    }
    struct cand *c = calloc(n + 1, sizeof(*c));
    if (c == NULL)
        return PT_E_NOMEM;
    int rv = 0;
    /* one filter per repository, over the items of it still going */
    for (size_t i = 0; rv == 0 && i < n; i++) {
        bool first = ok[i] == 1;
        for (size_t j = 0; first && j < i; j++)
            first = !(ok[j] == 1 && strcmp(items[j].repo, items[i].repo) == 0);
        if (!first)
            continue;
        size_t m = 0;
        for (size_t j = i; j < n; j++) {
            if (ok[j] != 1 || strcmp(items[j].repo, items[i].repo) != 0)
                continue;
            snprintf(c[m].digest, sizeof(c[m].digest), "%s", items[j].digest);
            c[m].keep = false;
            c[m++].at = j;
        }
        rv = filter_repo(b->ms, b->wb, items[i].repo, c, m, NULL, NULL);
        for (size_t j = 0; rv == 0 && j < m; j++)
            if (c[j].keep)
                ok[c[j].at] = 2; /* stays; 2 so that the repository is not filtered again */
    }
    for (size_t i = 0; i < n; i++)
        ok[i] = ok[i] == 1;
    free(c);
    return rv;
}

/* ---- retention: the plan ----------------------------------------------------------------- */

struct newest {
    int64_t upd;
    char tag[PT_METASTORE_TAG_MAX + 1];
};

/* (a.upd, a.tag) < (b.upd, b.tag) */
static bool older(const struct newest *a, int64_t upd, const char *tag)
{
    return a->upd != upd ? a->upd < upd : strcmp(a->tag, tag) < 0;
}

struct rule_state {
    struct pt_retention_rec r;
    bool active;        /* matches the current repository */
    struct newest *top; /* min-heap of the keep_last newest matching tags */
    size_t n;
};

struct plan {
    struct pt_metastore *ms;
    int64_t now_ms;
    struct cand *chunk; /* PT_POLICY_RETAIN_BATCH_MAX manifests of the current repository */
    size_t nchunk;
    struct rule_state *rules;
    size_t nrules;
    const char *repo;
    size_t rlen;
    int (*tag_cb)(const char *, const char *, const char *, void *);
    int (*man_cb)(const char *, const char *, int64_t, void *);
    void *arg;
};

static void heap_push(struct rule_state *s, int64_t upd, const char *tag)
{
    size_t cap = s->r.keep_last;
    struct newest e = {.upd = upd};
    snprintf(e.tag, sizeof(e.tag), "%s", tag);
    if (s->n == cap) {
        if (!older(&s->top[0], upd, tag))
            return;
        s->top[0] = e; /* replace the oldest and sift down */
        for (size_t i = 0;;) {
            size_t l = 2 * i + 1, r = l + 1, min = i;
            if (l < s->n && older(&s->top[l], s->top[min].upd, s->top[min].tag))
                min = l;
            if (r < s->n && older(&s->top[r], s->top[min].upd, s->top[min].tag))
                min = r;
            if (min == i)
                break;
            struct newest t = s->top[i];
            s->top[i] = s->top[min];
            s->top[min] = t;
            i = min;
        }
        return;
    }
    size_t i = s->n++;
    s->top[i] = e;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!older(&s->top[i], s->top[p].upd, s->top[p].tag))
            break;
        struct newest t = s->top[i];
        s->top[i] = s->top[p];
        s->top[p] = t;
        i = p;
    }
}

static int fill_cb(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    struct plan *pl = arg;
    char d[PT_METASTORE_DIGEST_MAX + 1], tag[PT_METASTORE_TAG_MAX + 1];
    int64_t upd;
    int rv = ms_dec_tag(v, vlen, d, &upd);
    if (rv != 0 || klen - pl->rlen > PT_METASTORE_TAG_MAX)
        return rv != 0 ? rv : PT_E_CORRUPT;
    memcpy(tag, k + pl->rlen, klen - pl->rlen);
    tag[klen - pl->rlen] = '\0';
    for (size_t i = 0; i < pl->nrules; i++) {
        struct rule_state *s = &pl->rules[i];
        if (s->active && s->r.keep_last > 0 &&
            pt_tag_glob_match(s->r.tag_pattern, strlen(s->r.tag_pattern), tag, strlen(tag)))
            heap_push(s, upd, tag);
    }
    return 0;
}

/* 1 if the plan deletes repo:tag (updated upd): some active keep_last rule matches it, it is
 * older than that rule's keep_last newest, and no lock or immutable rule holds it. */
static int tag_goes(void *arg, const char *repo, const char *tag, const char *digest, int64_t upd)
{
    (void)digest;
    struct plan *pl = arg;
    bool past = false;
    for (size_t i = 0; i < pl->nrules && !past; i++) {
        struct rule_state *s = &pl->rules[i];
        past = s->active && s->r.keep_last > 0 && s->n == s->r.keep_last &&
               pt_tag_glob_match(s->r.tag_pattern, strlen(s->r.tag_pattern), tag, strlen(tag)) &&
               ((upd != s->top[0].upd) ? upd < s->top[0].upd : strcmp(tag, s->top[0].tag) < 0);
    }
    if (!past)
        return 0;
    int rv = ms_policy_check(pl->ms, NULL, PT_POLICY_TAG_DELETE, repo, tag, NULL);
    if (rv == PT_E_LOCKED || rv == PT_E_IMMUTABLE)
        return 0;
    return rv < 0 ? rv : 1;
}

static int emit_tags_cb(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    struct plan *pl = arg;
    char d[PT_METASTORE_DIGEST_MAX + 1], tag[PT_METASTORE_TAG_MAX + 1];
    int64_t upd;
    int rv = ms_dec_tag(v, vlen, d, &upd);
    if (rv != 0 || klen - pl->rlen > PT_METASTORE_TAG_MAX)
        return rv != 0 ? rv : PT_E_CORRUPT;
    memcpy(tag, k + pl->rlen, klen - pl->rlen);
    tag[klen - pl->rlen] = '\0';
    rv = tag_goes(pl, pl->repo, tag, d, upd);
    if (rv <= 0)
        return rv;
    return pl->tag_cb(pl->repo, tag, d, pl->arg);
}

/* Filters the gathered manifests of the repository (tags, children) and reports the rest. */
static int flush_chunk(struct plan *pl)
{
    size_t n = pl->nchunk;
    pl->nchunk = 0;
    int rv = filter_repo(pl->ms, NULL, pl->repo, pl->chunk, n, tag_goes, pl);
    for (size_t i = 0; rv == 0 && i < n; i++)
        if (!pl->chunk[i].keep)
            rv = pl->man_cb(pl->repo, pl->chunk[i].digest, pl->chunk[i].older_than_ms, pl->arg);
    return rv;
}

static int emit_manifests_cb(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    (void)v, (void)vlen;
    struct plan *pl = arg;
    char digest[PT_METASTORE_DIGEST_MAX + 1];
    if (klen - pl->rlen > PT_METASTORE_DIGEST_MAX)
        return PT_E_CORRUPT;
    memcpy(digest, k + pl->rlen, klen - pl->rlen);
    digest[klen - pl->rlen] = '\0';
    int64_t older_than = 0; /* the strictest active untagged rule */
    for (size_t i = 0; i < pl->nrules; i++) {
        int64_t o = pl->rules[i].r.untagged_older_than_ms;
        if (pl->rules[i].active && o > 0 && (older_than == 0 || o < older_than))
            older_than = o;
    }
    int rv = manifest_goes(pl->ms, NULL, pl->repo, digest, older_than, pl->now_ms);
    if (rv <= 0)
        return rv;
    struct cand *c = &pl->chunk[pl->nchunk++];
    snprintf(c->digest, sizeof(c->digest), "%s", digest);
    c->older_than_ms = older_than;
    c->keep = false;
    return pl->nchunk == PT_POLICY_RETAIN_BATCH_MAX ? flush_chunk(pl) : 0;
}

static int load_rule_cb(const struct pt_retention_rec *r, void *arg)
{
    struct plan *pl = arg;
    if (pl->nrules == PT_POLICY_RETENTION_MAX)
        return 0;
    struct rule_state *s = &pl->rules[pl->nrules];
    s->r = *r;
    s->top = r->keep_last > 0 ? calloc(r->keep_last, sizeof(*s->top)) : NULL;
    if (r->keep_last > 0 && s->top == NULL)
        return PT_E_NOMEM;
    pl->nrules++;
    return 0;
}

/* One repository: the rules that match it, then its tags, then its manifests. */
static int plan_repo(struct plan *pl, const char *repo)
{
    bool any = false, untagged = false;
    for (size_t i = 0; i < pl->nrules; i++) {
        struct rule_state *s = &pl->rules[i];
        s->active = pt_access_pattern_match(s->r.repo_pattern, strlen(s->r.repo_pattern), repo,
                                            strlen(repo));
        s->n = 0;
        any |= s->active;
        untagged |= s->active && s->r.untagged_older_than_ms > 0;
    }
    if (!any)
        return 0;
    char prefix[PT_METASTORE_REPO_MAX + 2];
    pl->repo = repo;
    pl->rlen = strlen(repo) + 1;
    memcpy(prefix, repo, pl->rlen);
    int rv = ms_policy_walk(pl->ms, NULL, CF_TAGS, prefix, pl->rlen, fill_cb, pl);
    if (rv == 0)
        rv = ms_policy_walk(pl->ms, NULL, CF_TAGS, prefix, pl->rlen, emit_tags_cb, pl);
    if (rv == 0 && untagged) {
        pl->nchunk = 0;
        rv = ms_policy_walk(pl->ms, NULL, CF_MANIFESTS, prefix, pl->rlen, emit_manifests_cb, pl);
        if (rv == 0)
            rv = flush_chunk(pl);
    }
    return rv;
}

static int repo_cb(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    (void)v, (void)vlen;
    char repo[PT_METASTORE_REPO_MAX + 1];
    if (klen == 0 || klen > PT_METASTORE_REPO_MAX)
        return PT_E_CORRUPT;
    memcpy(repo, k, klen);
    repo[klen] = '\0';
    return plan_repo(arg, repo);
}

int pt_metastore_retention_plan(struct pt_metastore *ms, int64_t now_ms,
                                int (*tag_cb)(const char *repo, const char *tag, const char *digest,
                                              void *arg),
                                int (*man_cb)(const char *repo, const char *digest,
                                              int64_t older_than_ms, void *arg),
                                void *arg)
{
    struct plan pl = {.ms = ms, .now_ms = now_ms, .tag_cb = tag_cb, .man_cb = man_cb, .arg = arg};
    pl.rules = calloc(PT_POLICY_RETENTION_MAX, sizeof(*pl.rules));
    pl.chunk = calloc(PT_POLICY_RETAIN_BATCH_MAX, sizeof(*pl.chunk));
    if (pl.rules == NULL || pl.chunk == NULL) {
        free(pl.rules);
        free(pl.chunk);
        return PT_E_NOMEM;
    }
    int rv = pt_metastore_retention_list(ms, load_rule_cb, &pl);
    if (rv == 0 && pl.nrules > 0)
        rv = ms_policy_walk(ms, NULL, CF_REPOS, "", 0, repo_cb, &pl);
    for (size_t i = 0; i < pl.nrules; i++)
        free(pl.rules[i].top);
    free(pl.rules);
    free(pl.chunk);
    return rv;
}
