/*
 * api_policy.c - the admin API of repository locks, immutable tag rules and retention
 * (base/admin_api.h: /admin/locks, /admin/tag-rules, /admin/retention, /admin/retention/run).
 *
 * The gate (auth_gate.c) already required an administrator for every route here. Every
 * change is one command through the log (replication/fsm_policy.c validates it again at
 * apply); reads answer from this region's state. Bodies are JSON objects bounded by
 * pt_admin_body; query values by their buffers.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "admin_api.h"
#include "api.h"
#include "api_common.h"
#include "command.h"
#include "digest.h"
#include "err.h"
#include "http.h"
#include "metastore.h"
#include "query.h"
#include "reference.h"
#include "retention.h"
#include "tagglob.h"
#include "worker.h"

#include "api_auth_int.h"

static int ref_is(const struct pt_route *rt, const char *s)
{
    return rt->ref_len == strlen(s) && memcmp(rt->ref, s, rt->ref_len) == 0;
}

static bool repo_pattern_ok(const char *p)
{
    return p != NULL && pt_access_pattern_valid(p, strlen(p));
}

static bool tag_pattern_ok(const char *p)
{
    return p != NULL && pt_tag_glob_valid(p, strlen(p));
}

/* Listing callbacks: append one record to a JSON array. */
static int lock_json_cb(const struct pt_lock_rec *r, void *arg)
{
    json_t *o = json_pack("{s:s,s:b,s:b}", "repo", r->repo, "write_enabled", r->write_enabled,
                          "delete_enabled", r->delete_enabled);
    if (o != NULL && r->tag[0] != '\0')
        json_object_set_new(o, "tag", json_string(r->tag));
    if (o != NULL && r->digest[0] != '\0')
        json_object_set_new(o, "digest", json_string(r->digest));
    return json_array_append_new(arg, o) == 0 ? 0 : PT_E_NOMEM;
}

struct match {
    const char *repo; /* NULL: every record */
    json_t *a;
};

static int rule_json_cb(const struct pt_tag_rule_rec *r, void *arg)
{
    struct match *m = arg;
    if (m->repo != NULL && !pt_access_pattern_match(r->repo_pattern, strlen(r->repo_pattern),
                                                    m->repo, strlen(m->repo)))
        return 0;
    return json_array_append_new(m->a, json_pack("{s:s,s:s}", "repo_pattern", r->repo_pattern,
                                                 "tag_pattern", r->tag_pattern)) == 0
               ? 0
               : PT_E_NOMEM;
}

static int retention_json_cb(const struct pt_retention_rec *r, void *arg)
{
    struct match *m = arg;
    if (m->repo != NULL && !pt_access_pattern_match(r->repo_pattern, strlen(r->repo_pattern),
                                                    m->repo, strlen(m->repo)))
        return 0;
    return json_array_append_new(m->a, json_pack("{s:s,s:I,s:I,s:s}", "repo_pattern",
                                                 r->repo_pattern, "untagged_older_than_ms",
                                                 (json_int_t)r->untagged_older_than_ms, "keep_last",
                                                 (json_int_t)r->keep_last, "tag_pattern",
                                                 r->tag_pattern)) == 0
               ? 0
               : PT_E_NOMEM;
}

/* Locks ------------------------------------------------------------------------------------- */

/* GET /admin/locks[?repo=<name>]: every lock, or those of one repository with the immutable
 * tag rules and retention rules that match it. */
static void locks_list(struct pt_worker *w, h2o_req_t *req)
{
    h2o_iovec_t q = pt_http_query(req);
    char repo[PT_NAME_MAX + 1];
    int n = pt_query_get(q.base, q.len, "repo", 0, repo, sizeof(repo));
    if (n != PT_E_NOT_FOUND && (n <= 0 || pt_name_validate(repo, (size_t)n) != 0)) {
        pt_http_error(req, PT_E_INVALID, "?repo= must name a repository", NULL);
        return;
    }
    const char *r = n > 0 ? repo : NULL;
    json_t *locks = json_array(), *rules = json_array(), *ret = json_array();
    struct match mr = {r, rules}, mt = {r, ret};
    int rv = locks != NULL && rules != NULL && ret != NULL ? 0 : PT_E_NOMEM;
    if (rv == 0)
        rv = pt_metastore_locks_list(w->node->ms, r, lock_json_cb, locks);
    if (rv == 0 && r != NULL)
        rv = pt_metastore_tag_rules_list(w->node->ms, rule_json_cb, &mr);
    if (rv == 0 && r != NULL)
        rv = pt_metastore_retention_list(w->node->ms, retention_json_cb, &mt);
    if (rv != 0) {
        json_decref(locks);
        json_decref(rules);
        json_decref(ret);
        pt_http_error(req, rv, NULL, NULL);
        return;
    }
    json_t *o = json_pack("{s:o}", "locks", locks);
    if (r != NULL) {
        json_object_set_new(o, "repo", json_string(r));
        json_object_set_new(o, "tag_rules", rules);
        json_object_set_new(o, "retention", ret);
    } else {
        json_decref(rules);
        json_decref(ret);
    }
    pt_admin_send_json(req, 200, o);
}

/* A flag of the body: absent = true (enabled). */
static int flag(json_t *o, const char *name, int *out)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL) {
        *out = 1;
        return 0;
    }
    if (!json_is_boolean(v))
        return -1;
    *out = json_is_true(v);
    return 0;
}

/* POST /admin/locks {"repo", "tag"?, "digest"?, "write_enabled"?, "delete_enabled"?} */
static void lock_set(struct pt_worker *w, h2o_req_t *req)
{
    json_t *o = pt_admin_body(req);
    if (o == NULL)
        return;
    const char *repo = json_string_value(json_object_get(o, "repo"));
    const char *tag = json_string_value(json_object_get(o, "tag"));
    const char *digest = json_string_value(json_object_get(o, "digest"));
    int we, de;
    struct pt_digest d;
    const char *bad = NULL;
    if (repo == NULL || pt_name_validate(repo, strlen(repo)) != 0)
        bad = "\"repo\" must name a repository";
    else if ((json_object_get(o, "tag") != NULL && tag == NULL) ||
             (tag != NULL && pt_tag_validate(tag, strlen(tag)) != 0))
        bad = "\"tag\" must be a tag";
    else if ((json_object_get(o, "digest") != NULL && digest == NULL) ||
             (digest != NULL && pt_digest_parse(digest, strlen(digest), &d) != 0))
        bad = "\"digest\" must be a digest";
    else if (tag != NULL && digest != NULL)
        bad = "a lock names a tag or a digest, not both";
    else if (flag(o, "write_enabled", &we) != 0 || flag(o, "delete_enabled", &de) != 0)
        bad = "\"write_enabled\" and \"delete_enabled\" are booleans";
    if (bad != NULL) {
        pt_http_error(req, PT_E_INVALID, bad, NULL);
        json_decref(o);
        return;
    }
    json_t *body =
        json_pack("{s:s,s:b,s:b}", "repo", repo, "write_enabled", we, "delete_enabled", de);
    if (body != NULL && tag != NULL)
        json_object_set_new(body, "tag", json_string(tag));
    if (body != NULL && digest != NULL)
        json_object_set_new(body, "digest", json_string(digest));
    struct pt_command_builder b;
    if (pt_admin_begin(w, req, &b) == 0)
        pt_admin_commit(w, req, &b, pt_command_add_put_lock(&b, repo, tag, digest, we, de), 200,
                        body);
    else
        json_decref(body);
    json_decref(o);
}

/* Immutable tag rules ------------------------------------------------------------------------ */

static void tag_rules_list(struct pt_worker *w, h2o_req_t *req)
{
    struct match m = {NULL, json_array()};
    int rv = m.a != NULL ? pt_metastore_tag_rules_list(w->node->ms, rule_json_cb, &m) : PT_E_NOMEM;
    if (rv != 0) {
        json_decref(m.a);
        pt_http_error(req, rv, NULL, NULL);
        return;
    }
    pt_admin_send_json(req, 200, json_pack("{s:o}", "rules", m.a));
}

static void tag_rule_add(struct pt_worker *w, h2o_req_t *req)
{
    json_t *o = pt_admin_body(req);
    if (o == NULL)
        return;
    const char *rp = json_string_value(json_object_get(o, "repo_pattern"));
    const char *tp = json_string_value(json_object_get(o, "tag_pattern"));
    if (!repo_pattern_ok(rp) || !tag_pattern_ok(tp)) {
        pt_http_error(req, PT_E_INVALID,
                      !repo_pattern_ok(rp) ? "invalid repository pattern" : "invalid tag pattern",
                      NULL);
    } else {
        struct pt_command_builder b;
        if (pt_admin_begin(w, req, &b) == 0)
            pt_admin_commit(w, req, &b, pt_command_add_tag_rule(&b, rp, tp, 1), 201,
                            json_pack("{s:s,s:s}", "repo_pattern", rp, "tag_pattern", tp));
    }
    json_decref(o);
}

struct find_rule {
    const char *rp, *tp;
    int found;
};

static int find_rule_cb(const struct pt_tag_rule_rec *r, void *arg)
{
    struct find_rule *f = arg;
    f->found |= strcmp(r->repo_pattern, f->rp) == 0 && strcmp(r->tag_pattern, f->tp) == 0;
    return 0;
}

/* DELETE /admin/tag-rules?repo_pattern=&tag_pattern= */
static void tag_rule_delete(struct pt_worker *w, h2o_req_t *req)
{
    h2o_iovec_t q = pt_http_query(req);
    char rp[PT_ACCESS_PATTERN_MAX + 1], tp[PT_TAG_GLOB_MAX + 1];
    int n = pt_query_get(q.base, q.len, "repo_pattern", 0, rp, sizeof(rp));
    int m = pt_query_get(q.base, q.len, "tag_pattern", 0, tp, sizeof(tp));
    if (n <= 0 || m <= 0 || !repo_pattern_ok(rp) || !tag_pattern_ok(tp)) {
        pt_http_error(req, PT_E_INVALID, "?repo_pattern= and ?tag_pattern= must name a rule", NULL);
        return;
    }
    struct find_rule f = {rp, tp, 0};
    int rv = pt_metastore_tag_rules_list(w->node->ms, find_rule_cb, &f);
    if (rv != 0 || !f.found) {
        pt_http_error(req, rv != 0 ? rv : PT_E_NOT_FOUND, "no such immutable tag rule", NULL);
        return;
    }
    struct pt_command_builder b;
    if (pt_admin_begin(w, req, &b) == 0)
        pt_admin_commit(w, req, &b, pt_command_add_tag_rule(&b, rp, tp, 0), 204, NULL);
}

/* Retention ---------------------------------------------------------------------------------- */

static void retention_list(struct pt_worker *w, h2o_req_t *req)
{
    struct match m = {NULL, json_array()};
    int rv =
        m.a != NULL ? pt_metastore_retention_list(w->node->ms, retention_json_cb, &m) : PT_E_NOMEM;
    if (rv != 0) {
        json_decref(m.a);
        pt_http_error(req, rv, NULL, NULL);
        return;
    }
    pt_admin_send_json(req, 200,
                       json_pack("{s:o,s:I}", "rules", m.a, "interval_ms",
                                 (json_int_t)w->node->cfg.retention_interval_ms));
}

/* POST /admin/retention {"repo_pattern", "untagged_older_than_ms"?, "keep_last"?,
 * "tag_pattern"?} */
static void retention_add(struct pt_worker *w, h2o_req_t *req)
{
    json_t *o = pt_admin_body(req);
    if (o == NULL)
        return;
    const char *rp = json_string_value(json_object_get(o, "repo_pattern"));
    json_t *age = json_object_get(o, "untagged_older_than_ms");
    json_t *keep = json_object_get(o, "keep_last");
    json_t *tpj = json_object_get(o, "tag_pattern");
    const char *tp = tpj != NULL ? json_string_value(tpj) : "*";
    json_int_t a = age != NULL && json_is_integer(age) ? json_integer_value(age) : 0;
    json_int_t k = keep != NULL && json_is_integer(keep) ? json_integer_value(keep) : 0;
    const char *bad = NULL;
    if (!repo_pattern_ok(rp))
        bad = "invalid repository pattern";
    else if (!tag_pattern_ok(tp))
        bad = "invalid tag pattern";
    else if ((age != NULL && !json_is_integer(age)) || a < 0 || a > INT64_MAX / 2)
        bad = "\"untagged_older_than_ms\" must be a non-negative integer";
    else if ((keep != NULL && !json_is_integer(keep)) || k < 0 || k > PT_POLICY_KEEP_LAST_MAX)
        bad = "\"keep_last\" must be an integer from 0 to 10000";
    else if (a == 0 && k == 0)
        bad = "a rule needs \"untagged_older_than_ms\" or \"keep_last\"";
    if (bad != NULL) {
        pt_http_error(req, PT_E_INVALID, bad, NULL);
        json_decref(o);
        return;
    }
    struct pt_command_builder b;
    if (pt_admin_begin(w, req, &b) == 0)
        pt_admin_commit(w, req, &b, pt_command_add_put_retention(&b, rp, a, (uint32_t)k, tp), 201,
                        json_pack("{s:s,s:I,s:I,s:s}", "repo_pattern", rp, "untagged_older_than_ms",
                                  a, "keep_last", k, "tag_pattern", tp));
    json_decref(o);
}

struct find_ret {
    const char *rp;
    int found;
};

static int find_ret_cb(const struct pt_retention_rec *r, void *arg)
{
    struct find_ret *f = arg;
    f->found |= strcmp(r->repo_pattern, f->rp) == 0;
    return 0;
}

static void retention_delete(struct pt_worker *w, h2o_req_t *req)
{
    h2o_iovec_t q = pt_http_query(req);
    char rp[PT_ACCESS_PATTERN_MAX + 1];
    int n = pt_query_get(q.base, q.len, "repo_pattern", 0, rp, sizeof(rp));
    if (n <= 0 || !repo_pattern_ok(rp)) {
        pt_http_error(req, PT_E_INVALID, "?repo_pattern= must name a rule", NULL);
        return;
    }
    struct find_ret f = {rp, 0};
    int rv = pt_metastore_retention_list(w->node->ms, find_ret_cb, &f);
    if (rv != 0 || !f.found) {
        pt_http_error(req, rv != 0 ? rv : PT_E_NOT_FOUND, "no such retention rule", NULL);
        return;
    }
    struct pt_command_builder b;
    if (pt_admin_begin(w, req, &b) == 0)
        pt_admin_commit(w, req, &b, pt_command_add_delete_retention(&b, rp), 204, NULL);
}

/* GET /admin/retention/run: the runner's state; POST [?dry_run=true]: a run now (202). */
static int retention_start(void *r, int dry_run)
{
    return pt_retention_request(r, dry_run);
}

static char *retention_status(void *r)
{
    return pt_retention_status_json(r);
}

static void retention_run(struct pt_worker *w, h2o_req_t *req)
{
    pt_api_job_route(req, w->node->retention, retention_start, retention_status,
                     "a retention run is in progress");
}

int pt_api_policy_admin(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    int get = pt_http_method_is(req, "GET") || pt_http_is_head(req);
    int post = pt_http_method_is(req, "POST"), del = pt_http_method_is(req, "DELETE");
    if (ref_is(rt, PT_ADMIN_LOCKS)) {
        if (get)
            locks_list(w, req);
        else if (post)
            lock_set(w, req);
        else
            pt_http_error(req, PT_E_METHOD, NULL, NULL);
    } else if (ref_is(rt, PT_ADMIN_TAG_RULES)) {
        if (get)
            tag_rules_list(w, req);
        else if (post)
            tag_rule_add(w, req);
        else if (del)
            tag_rule_delete(w, req);
        else
            pt_http_error(req, PT_E_METHOD, NULL, NULL);
    } else if (ref_is(rt, PT_ADMIN_RETENTION)) {
        if (get)
            retention_list(w, req);
        else if (post)
            retention_add(w, req);
        else if (del)
            retention_delete(w, req);
        else
            pt_http_error(req, PT_E_METHOD, NULL, NULL);
    } else if (ref_is(rt, PT_ADMIN_RETENTION_RUN)) {
        retention_run(w, req);
    } else {
        return 0;
    }
    return 1;
}
