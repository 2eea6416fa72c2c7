/*
 * api_quota.c - storage quotas and throttling at the HTTP door: the admin routes (quotas,
 * throttles, repository usage; base/admin_api.h), the check of an upload against the quotas
 * before its bytes are kept, the 403 DENIED that names the quota, and the usage metrics.
 *
 * The gate (auth_gate.c) already required an administrator with Basic credentials for every
 * /admin/ route here. Changes are FSM commands (PutQuota .. DeleteThrottle) proposed like
 * every other admin change (pt_admin_commit), so they apply in every region.
 *
 * Bounds: a listing of repositories returns at most PT_QUOTA_REPOS_PAGE_MAX per page and
 * counts at most PT_QUOTA_COUNT_CAP manifests and tags per repository; the quota listing
 * scans at most PT_METASTORE_LIST_MAX repositories to find a wildcard quota's fullest one;
 * the metrics name the PT_QUOTA_METRICS_TOP repositories with the most bytes (of at most
 * PT_METASTORE_LIST_MAX scanned) plus one series per quota, so the label cardinality stays
 * fixed whatever the number of repositories.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"
#include "api.h"
#include "api_common.h"
#include "api_quota.h"
#include "auth_gate.h"
#include "command.h"
#include "err.h"
#include "http.h"
#include "metastore.h"
#include "metrics.h"
#include "query.h"
#include "throttle.h"
#include "units.h"
#include "worker.h"

#include "api_auth_int.h"

#define PT_QUOTA_REPOS_PAGE_MAX 1000
#define PT_QUOTA_REPOS_PAGE_DEF 100
#define PT_QUOTA_COUNT_CAP      100000
#define PT_QUOTA_METRICS_TOP    10

static int ref_is(const struct pt_route *rt, const char *s)
{
    return rt->ref_len == strlen(s) && memcmp(rt->ref, s, rt->ref_len) == 0;
}

/* Refusals ---------------------------------------------------------------------------------- */

void pt_api_quota_refuse(struct pt_worker *w, h2o_req_t *req, const char *repo, const char *digest,
                         uint64_t size)
{
    struct pt_quota_refusal q;
    char msg[PT_METASTORE_QUOTA_PATTERN_MAX + PT_NAME_MAX + 256], used[32], limit[32], add[32];
    pt_metrics_quota_refused();
    if (pt_metastore_quota_admit(w->node->ms, repo, digest, size, &q) != PT_E_QUOTA_EXCEEDED) {
        /* the state moved since the FSM refused: still name the repository */
        snprintf(msg, sizeof(msg), "repository %s would exceed a storage quota", repo);
    } else {
        pt_units_format_size(q.used, used, sizeof(used));
        pt_units_format_size(q.limit, limit, sizeof(limit));
        pt_units_format_size(q.adding, add, sizeof(add));
        if (strcmp(q.pattern, PT_QUOTA_REGISTRY) == 0)
            snprintf(msg, sizeof(msg),
                     "storage quota of the registry (\"*\") exceeded: %s of %s used, %s more "
                     "refused",
                     used, limit, add);
        else
            snprintf(msg, sizeof(msg),
                     "storage quota \"%s\" of repository %s exceeded: %s of %s used, %s more "
                     "refused",
                     q.pattern, repo, used, limit, add);
    }
    pt_http_error(req, PT_E_QUOTA_EXCEEDED, msg, NULL);
}

int pt_api_quota_check(struct pt_worker *w, h2o_req_t *req, const char *repo, const char *digest,
                       uint64_t size)
{
    int rv = pt_metastore_quota_admit(w->node->ms, repo, digest, size, NULL);
    if (rv == 0)
        return 0;
    if (rv == PT_E_QUOTA_EXCEEDED)
        pt_api_quota_refuse(w, req, repo, digest, size);
    else
        pt_http_error(req, rv, NULL, NULL);
    return -1;
}

/* Quotas ------------------------------------------------------------------------------------ */

/* The fullest repository matching each quota's pattern, found in one walk of the usage. */
struct fullest {
    const char *pattern;
    char repo[PT_NAME_MAX + 1];
    uint64_t bytes;
};

struct fullest_walk {
    struct fullest *f;
    size_t n;
};

static int fullest_cb(void *arg, const char *repo, const struct pt_usage *u)
{
    struct fullest_walk *w = arg;
    size_t rl = strlen(repo);
    for (size_t i = 0; i < w->n; i++) {
        struct fullest *f = &w->f[i];
        if (f->pattern != NULL && u->bytes >= f->bytes &&
            pt_access_pattern_match(f->pattern, strlen(f->pattern), repo, rl)) {
            f->bytes = u->bytes;
            snprintf(f->repo, sizeof(f->repo), "%s", repo);
        }
    }
    return 0;
}

static void quotas_list(struct pt_worker *w, h2o_req_t *req)
{
    struct pt_quota_rec *q = NULL;
    size_t n = 0;
    struct pt_usage total;
    int rv = pt_metastore_quota_list(w->node->ms, &q, &n);
    if (rv == 0)
        rv = pt_metastore_usage_registry(w->node->ms, &total);
    if (rv != 0) {
        free(q);
        pt_http_error(req, rv, NULL, NULL);
        return;
    }
    struct fullest *f = calloc(n > 0 ? n : 1, sizeof(*f));
    struct fullest_walk walk = {f, n};
    if (f == NULL)
        rv = PT_E_NOMEM;
    for (size_t i = 0; rv == 0 && i < n; i++) {
        if (strcmp(q[i].pattern, PT_QUOTA_REGISTRY) == 0)
            f[i].bytes = total.bytes;
        else
            f[i].pattern = q[i].pattern;
    }
    if (rv == 0 && n > 0)
        rv = pt_metastore_usage_list(w->node->ms, NULL, PT_METASTORE_LIST_MAX, fullest_cb, &walk);
    if (rv != 0) {
        free(f);
        free(q);
        pt_http_error(req, rv, NULL, NULL);
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        double pct = q[i].limit > 0 ? 100.0 * (double)f[i].bytes / (double)q[i].limit : 0.0;
        json_t *o =
            json_pack("{s:s,s:I,s:I,s:f}", "pattern", q[i].pattern, "limit", (json_int_t)q[i].limit,
                      "used", (json_int_t)f[i].bytes, "percent", pct);
        if (f[i].pattern != NULL)
            json_object_set_new(o, "repository",
                                f[i].repo[0] != '\0' ? json_string(f[i].repo) : json_null());
        json_array_append_new(a, o);
    }
    free(f);
    free(q);
    pt_admin_send_json(req, 200,
                       json_pack("{s:o,s:{s:I,s:I}}", "quotas", a, "registry", "bytes",
                                 (json_int_t)total.bytes, "blobs", (json_int_t)total.blobs));
}

/* The limit of a body: an integer of bytes, or a size text ("10GiB"). */
static int body_size(json_t *v, uint64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v))
        return pt_units_parse_size(json_string_value(v), out);
    return PT_E_INVALID;
}

static void quota_set(struct pt_worker *w, h2o_req_t *req)
{
    json_t *o = pt_admin_body(req);
    if (o == NULL)
        return;
    const char *pattern = json_string_value(json_object_get(o, "pattern"));
    uint64_t limit;
    if (pattern == NULL || !pt_metastore_quota_pattern_valid(pattern)) {
        pt_http_error(req, PT_E_INVALID, "pattern must be \"*\" or a repository pattern",
                      pattern != NULL ? pattern : "missing");
    } else if (body_size(json_object_get(o, "limit"), &limit) != 0) {
        pt_http_error(req, PT_E_INVALID, "limit must be bytes or a size such as \"10GiB\"", NULL);
    } else {
        struct pt_command_builder b;
        if (pt_admin_begin(w, req, &b) == 0)
            pt_admin_commit(w, req, &b, pt_command_add_put_quota(&b, pattern, limit), 201,
                            json_pack("{s:s,s:I}", "pattern", pattern, "limit", (json_int_t)limit));
    }
    json_decref(o);
}

static void quota_remove(struct pt_worker *w, h2o_req_t *req)
{
    h2o_iovec_t qs = pt_http_query(req);
    char pattern[PT_METASTORE_QUOTA_PATTERN_MAX + 1];
    int n = pt_query_get(qs.base, qs.len, "pattern", 0, pattern, sizeof(pattern));
    if (n <= 0 || !pt_metastore_quota_pattern_valid(pattern)) {
        pt_http_error(req, PT_E_INVALID, "?pattern= must name a quota pattern", NULL);
        return;
    }
    struct pt_quota_rec *q = NULL;
    size_t count = 0;
    int found = 0;
    if (pt_metastore_quota_list(w->node->ms, &q, &count) == 0)
        for (size_t i = 0; i < count; i++)
            found |= strcmp(q[i].pattern, pattern) == 0;
    free(q);
    if (!found) {
        pt_http_error(req, PT_E_NOT_FOUND, "no such quota", pattern);
        return;
    }
    struct pt_command_builder b;
    if (pt_admin_begin(w, req, &b) == 0)
        pt_admin_commit(w, req, &b, pt_command_add_delete_quota(&b, pattern), 204, NULL);
}

/* Throttles --------------------------------------------------------------------------------- */

static json_t *throttle_json(const struct pt_throttle_rec *r)
{
    return json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "subject", r->subject, "tier",
                     pt_throttle_tier_name(r->tier), "reads_per_minute",
                     (json_int_t)r->reads_per_minute, "writes_per_minute",
                     (json_int_t)r->writes_per_minute, "read_bytes_per_second",
                     (json_int_t)r->read_bytes_per_second, "write_bytes_per_second",
                     (json_int_t)r->write_bytes_per_second);
}

static void throttles_list(struct pt_worker *w, h2o_req_t *req)
{
    struct pt_throttle_rec *r = NULL;
    size_t n = 0;
    int rv = pt_metastore_throttle_list(w->node->ms, &r, &n);
    if (rv != 0) {
        pt_http_error(req, rv, NULL, NULL);
        return;
    }
    json_t *a = json_array(), *tiers = json_object();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, throttle_json(&r[i]));
    free(r);
    for (unsigned t = PT_THROTTLE_TIER_BASIC; t < PT_THROTTLE_TIER_COUNT; t++) {
        struct pt_throttle_rec p = {.subject = ""};
        pt_throttle_tier_limits(t, &p);
        json_t *o = throttle_json(&p);
        json_object_del(o, "subject");
        json_object_set_new(tiers, pt_throttle_tier_name(t), o);
    }
    pt_admin_send_json(req, 200, json_pack("{s:o,s:o}", "throttles", a, "tiers", tiers));
}

/* A limit field of the body into *v when present: 0 absent or set, -1 malformed. */
static int body_limit(json_t *o, const char *name, uint64_t max, uint64_t *v)
{
    json_t *x = json_object_get(o, name);
    if (x == NULL)
        return 0;
    if (!json_is_integer(x) || json_integer_value(x) < 0 || (uint64_t)json_integer_value(x) > max)
        return -1;
    *v = (uint64_t)json_integer_value(x);
    return 0;
}

static void throttle_set(struct pt_worker *w, h2o_req_t *req)
{
    json_t *o = pt_admin_body(req);
    if (o == NULL)
        return;
    const char *subject = json_string_value(json_object_get(o, "subject"));
    const char *tier = json_string_value(json_object_get(o, "tier"));
    struct pt_throttle_rec r;
    memset(&r, 0, sizeof(r));
    int t = tier != NULL ? pt_throttle_tier_parse(tier) : PT_THROTTLE_TIER_CUSTOM;
    uint64_t reads = 0, writes = 0, rbps = 0, wbps = 0;
    if (subject == NULL || !pt_metastore_throttle_subject_valid(subject)) {
        pt_http_error(req, PT_E_INVALID,
                      "subject must be default, anonymous, user:<name> or token:<id>",
                      subject != NULL ? subject : "missing");
        goto out;
    }
    if (t < 0) {
        pt_http_error(req, PT_E_INVALID, "tier must be basic, standard, premium or custom", tier);
        goto out;
    }
    pt_throttle_tier_limits((unsigned)t, &r);
    reads = r.reads_per_minute;
    writes = r.writes_per_minute;
    rbps = r.read_bytes_per_second;
    wbps = r.write_bytes_per_second;
    if (body_limit(o, "reads_per_minute", UINT32_MAX, &reads) != 0 ||
        body_limit(o, "writes_per_minute", UINT32_MAX, &writes) != 0 ||
        body_limit(o, "read_bytes_per_second", INT64_MAX, &rbps) != 0 ||
        body_limit(o, "write_bytes_per_second", INT64_MAX, &wbps) != 0) {
        pt_http_error(req, PT_E_INVALID, "limits must be non-negative integers (0: no limit)",
                      NULL);
        goto out;
    }
    /* a preset with a value changed is custom */
    r.reads_per_minute = (uint32_t)reads;
    r.writes_per_minute = (uint32_t)writes;
    r.read_bytes_per_second = rbps;
    r.write_bytes_per_second = wbps;
    struct pt_throttle_rec preset;
    pt_throttle_tier_limits((unsigned)t, &preset);
    if (preset.reads_per_minute != r.reads_per_minute ||
        preset.writes_per_minute != r.writes_per_minute ||
        preset.read_bytes_per_second != r.read_bytes_per_second ||
        preset.write_bytes_per_second != r.write_bytes_per_second)
        r.tier = PT_THROTTLE_TIER_CUSTOM;
    snprintf(r.subject, sizeof(r.subject), "%s", subject);
    struct pt_command_throttle c = {
        .subject = subject,
        .tier = r.tier,
        .reads_per_minute = r.reads_per_minute,
        .writes_per_minute = r.writes_per_minute,
        .read_bytes_per_second = r.read_bytes_per_second,
        .write_bytes_per_second = r.write_bytes_per_second,
    };
    struct pt_command_builder b;
    if (pt_admin_begin(w, req, &b) == 0)
        pt_admin_commit(w, req, &b, pt_command_add_put_throttle(&b, &c), 201, throttle_json(&r));
out:
    json_decref(o);
}

static void throttle_remove(struct pt_worker *w, h2o_req_t *req)
{
    h2o_iovec_t qs = pt_http_query(req);
    char subject[PT_METASTORE_THROTTLE_SUBJECT_MAX + 1];
    struct pt_throttle_rec r;
    int n = pt_query_get(qs.base, qs.len, "subject", 0, subject, sizeof(subject));
    if (n <= 0 || !pt_metastore_throttle_subject_valid(subject)) {
        pt_http_error(req, PT_E_INVALID, "?subject= must name a throttle subject", NULL);
        return;
    }
    if (pt_metastore_throttle_get(w->node->ms, subject, &r) != 0) {
        pt_http_error(req, PT_E_NOT_FOUND, "no such throttle", subject);
        return;
    }
    struct pt_command_builder b;
    if (pt_admin_begin(w, req, &b) == 0)
        pt_admin_commit(w, req, &b, pt_command_add_delete_throttle(&b, subject), 204, NULL);
}

/* Repositories ------------------------------------------------------------------------------ */

struct repo_page {
    struct pt_metastore *ms;
    json_t *a;
    int err;
    char last[PT_NAME_MAX + 1];
};

static int repo_cb(void *arg, const char *repo, const struct pt_usage *u)
{
    struct repo_page *p = arg;
    uint64_t manifests = 0, tags = 0;
    if ((p->err = pt_metastore_repo_counts(p->ms, repo, PT_QUOTA_COUNT_CAP, &manifests, &tags)) !=
        0)
        return -1;
    json_array_append_new(p->a,
                          json_pack("{s:s,s:I,s:I,s:I,s:I}", "name", repo, "bytes",
                                    (json_int_t)u->bytes, "blobs", (json_int_t)u->blobs,
                                    "manifests", (json_int_t)manifests, "tags", (json_int_t)tags));
    snprintf(p->last, sizeof(p->last), "%s", repo);
    return 0;
}

static void repos_list(struct pt_worker *w, h2o_req_t *req)
{
    h2o_iovec_t qs = pt_http_query(req);
    char last[PT_NAME_MAX + 1], nbuf[16];
    int ll = pt_query_get(qs.base, qs.len, "last", 0, last, sizeof(last));
    int nl = pt_query_get(qs.base, qs.len, "n", 0, nbuf, sizeof(nbuf));
    size_t n = PT_QUOTA_REPOS_PAGE_DEF;
    if (nl > 0) {
        char *end;
        unsigned long v = strtoul(nbuf, &end, 10);
        if (*end != '\0' || v == 0 || v > PT_QUOTA_REPOS_PAGE_MAX) {
            pt_http_error(req, PT_E_PAGINATION_NUMBER_INVALID, "n must be 1..1000", NULL);
            return;
        }
        n = v;
    } else if (nl != PT_E_NOT_FOUND) {
        pt_http_error(req, PT_E_PAGINATION_NUMBER_INVALID, "n must be 1..1000", NULL);
        return;
    }
    if (ll != PT_E_NOT_FOUND && ll <= 0) {
        pt_http_error(req, PT_E_NAME_INVALID, "last must name a repository", NULL);
        return;
    }
    struct repo_page p = {.ms = w->node->ms, .a = json_array()};
    int rv = pt_metastore_usage_list(w->node->ms, ll > 0 ? last : NULL, n, repo_cb, &p);
    if (rv == 0)
        rv = p.err;
    if (rv != 0) {
        json_decref(p.a);
        pt_http_error(req, rv, NULL, NULL);
        return;
    }
    json_t *next = json_array_size(p.a) == n ? json_string(p.last) : json_null();
    pt_admin_send_json(req, 200, json_pack("{s:o,s:o}", "repositories", p.a, "next", next));
}

/* Dispatch ---------------------------------------------------------------------------------- */

int pt_api_quota_admin(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    int get = pt_http_method_is(req, "GET") || pt_http_is_head(req);
    int post = pt_http_method_is(req, "POST"), del = pt_http_method_is(req, "DELETE");
    int quotas = ref_is(rt, PT_ADMIN_QUOTAS), throttles = ref_is(rt, PT_ADMIN_THROTTLES);
    int repos = ref_is(rt, PT_ADMIN_REPOS);
    if (!quotas && !throttles && !repos)
        return 0;
    if (quotas && get)
        quotas_list(w, req);
    else if (quotas && post)
        quota_set(w, req);
    else if (quotas && del)
        quota_remove(w, req);
    else if (throttles && get)
        throttles_list(w, req);
    else if (throttles && post)
        throttle_set(w, req);
    else if (throttles && del)
        throttle_remove(w, req);
    else if (repos && get)
        repos_list(w, req);
    else
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
    return 1;
}

/* Metrics ----------------------------------------------------------------------------------- */

struct top {
    struct {
        char repo[PT_NAME_MAX + 1];
        uint64_t bytes;
    } v[PT_QUOTA_METRICS_TOP];
    size_t n;
};

static int top_cb(void *arg, const char *repo, const struct pt_usage *u)
{
    struct top *t = arg;
    size_t i = t->n < PT_QUOTA_METRICS_TOP ? t->n++ : PT_QUOTA_METRICS_TOP - 1;
    if (i == PT_QUOTA_METRICS_TOP - 1 && t->n == PT_QUOTA_METRICS_TOP &&
        t->v[i].bytes >= u->bytes && t->v[i].repo[0] != '\0')
        return 0; /* not bigger than the smallest kept */
    /* insert in descending order */
    while (i > 0 && t->v[i - 1].bytes < u->bytes) {
        t->v[i] = t->v[i - 1];
        i--;
    }
    snprintf(t->v[i].repo, sizeof(t->v[i].repo), "%s", repo);
    t->v[i].bytes = u->bytes;
    return 0;
}

/* Appends a label value escaped for the exposition format. */
static void label(struct pt_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            pt_buf_append(b, "\\", 1);
        pt_buf_append(b, s, 1);
    }
}

static void line(struct pt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(struct pt_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        pt_buf_append(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void pt_api_quota_metrics(struct pt_node *node, struct pt_buf *b)
{
    struct top t;
    memset(&t, 0, sizeof(t));
    struct pt_usage total;
    if (pt_metastore_usage_registry(node->ms, &total) != 0 ||
        pt_metastore_usage_list(node->ms, NULL, PT_METASTORE_LIST_MAX, top_cb, &t) != 0)
        return;
    line(b,
         "# HELP portolan_registry_usage_bytes Bytes of the distinct blobs of the registry.\n"
         "# TYPE portolan_registry_usage_bytes gauge\nportolan_registry_usage_bytes %llu\n",
         (unsigned long long)total.bytes);
    line(b,
         "# HELP portolan_repo_usage_bytes Bytes of the distinct blobs of the %d "
         "repositories holding the most.\n# TYPE portolan_repo_usage_bytes gauge\n",
         PT_QUOTA_METRICS_TOP);
    for (size_t i = 0; i < t.n; i++) {
        pt_buf_append(b, "portolan_repo_usage_bytes{repository=\"",
                      sizeof("portolan_repo_usage_bytes{repository=\"") - 1);
        label(b, t.v[i].repo);
        line(b, "\"} %llu\n", (unsigned long long)t.v[i].bytes);
    }
    struct pt_quota_rec *q = NULL;
    size_t n = 0;
    if (pt_metastore_quota_list(node->ms, &q, &n) != 0)
        return;
    line(b, "# HELP portolan_quota_limit_bytes Limit of each storage quota.\n"
            "# TYPE portolan_quota_limit_bytes gauge\n");
    for (size_t i = 0; i < n; i++) {
        pt_buf_append(b, "portolan_quota_limit_bytes{pattern=\"",
                      sizeof("portolan_quota_limit_bytes{pattern=\"") - 1);
        label(b, q[i].pattern);
        line(b, "\"} %llu\n", (unsigned long long)q[i].limit);
    }
    /* used: of "*" and of patterns naming one repository (a point read each); the
     * repositories of a wildcard pattern show in portolan_repo_usage_bytes, so a scrape walks
     * the usage records once */
    line(b, "# HELP portolan_quota_used_bytes Usage the registry quota, or a quota naming one "
            "repository, is checked against.\n# TYPE portolan_quota_used_bytes gauge\n");
    for (size_t i = 0; i < n; i++) {
        struct pt_usage u = total;
        if (strcmp(q[i].pattern, PT_QUOTA_REGISTRY) != 0 &&
            (strchr(q[i].pattern, '*') != NULL ||
             pt_metastore_usage_repo(node->ms, q[i].pattern, &u) != 0))
            continue;
        pt_buf_append(b, "portolan_quota_used_bytes{pattern=\"",
                      sizeof("portolan_quota_used_bytes{pattern=\"") - 1);
        label(b, q[i].pattern);
        line(b, "\"} %llu\n", (unsigned long long)u.bytes);
    }
    free(q);
    if (node->throttle != NULL)
        line(b,
             "# HELP portolan_throttle_buckets Token buckets held by request throttling.\n"
             "# TYPE portolan_throttle_buckets gauge\nportolan_throttle_buckets %u\n",
             pt_throttle_buckets(node->throttle));
}
