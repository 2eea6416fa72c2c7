/*
 * cluster_config.c - reading and checking the cluster file (format in cluster_config.h).
 *
 * Design: the file is read whole (bounded by PT_CLUSTER_FILE_MAX) and walked with libyaml's
 * event API as a small state machine that knows the one shape the file may have:
 *
 *     stream > document > mapping { cluster_id: scalar,
 *                                   regions: sequence [ mapping { key: scalar ... } ... ] }
 *
 * Anything else (aliases, nested values, unknown or repeated keys, a second document) stops
 * the walk with an error carrying the line. Values are checked as they arrive, by the same
 * functions code-built configurations go through (pt_ident_check_* and pt_addr_check_*); the rules
 * between regions (uniqueness, a voter) are checked once at the end by the function that
 * pt_cluster_config_validate uses too, given the line of each region for messages.
 *
 * The walk fills a private copy; the caller's struct is written only when everything passed.
 */
#include "cluster_config.h"

#include "addr.h"
#include "err.h"
#include "metastore.h"
#include "yaml_file.h"

#include <errno.h>
#include <fcntl.h>
#include <raft.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

_Static_assert(PT_CLUSTER_STANDBY == RAFT_STANDBY, "roles are raft's");
_Static_assert(PT_CLUSTER_VOTER == RAFT_VOTER, "roles are raft's");
_Static_assert(PT_CLUSTER_SPARE == RAFT_SPARE, "roles are raft's");

/* Values quoted back in error messages are cut to this many bytes. */
#define QUOTE_MAX 64

/* Keys of one region, as bits of a seen-mask. */
enum region_key { RK_NAME, RK_ID, RK_ADDRESS, RK_URL, RK_ROLE, RK_COUNT };
static const char *const region_keys[RK_COUNT] = {"name", "id", "address", "url", "role"};
#define RK_REQUIRED ((1u << RK_NAME) | (1u << RK_ID) | (1u << RK_ADDRESS) | (1u << RK_URL))

/* Top-level keys. */
enum top_key { TK_CLUSTER_ID, TK_REGIONS, TK_COUNT };
static const char *const top_keys[TK_COUNT] = {"cluster_id", "regions"};

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return PT_E_CONFIG;
}

/* ---- regions and the whole configuration ----------------------------------------------- */

/* Checks r; prefix ("regions[2]." or "") is put before the key in messages. */
static int check_region(const struct pt_cluster_region *r, const char *prefix, char *err,
                        size_t errlen)
{
    const char *why;

    if (memchr(r->name, '\0', sizeof r->name) == NULL)
        return fail(err, errlen, "%sname: not terminated", prefix);
    if (pt_ident_check_region(r->name, &why) != 0)
        return fail(err, errlen, "%sname: %s", prefix, why);
    if (r->id == 0 || r->id > PT_CLUSTER_SERVER_ID_MAX)
        return fail(err, errlen, "%sid: %llu out of range 1..%llu", prefix,
                    (unsigned long long)r->id, (unsigned long long)PT_CLUSTER_SERVER_ID_MAX);
    if (memchr(r->address, '\0', sizeof r->address) == NULL)
        return fail(err, errlen, "%saddress: not terminated", prefix);
    if (pt_addr_check_peer(r->address, &why) != 0)
        return fail(err, errlen, "%saddress: \"%.*s\": %s", prefix, QUOTE_MAX, r->address, why);
    if (memchr(r->url, '\0', sizeof r->url) == NULL)
        return fail(err, errlen, "%surl: not terminated", prefix);
    if (pt_addr_check_url(r->url, &why) != 0)
        return fail(err, errlen, "%surl: \"%.*s\": %s", prefix, QUOTE_MAX, r->url, why);
    if (r->role != PT_CLUSTER_VOTER && r->role != PT_CLUSTER_STANDBY && r->role != PT_CLUSTER_SPARE)
        return fail(err, errlen, "%srole: not voter, standby or spare", prefix);
    return 0;
}

int pt_cluster_config_check_region(const struct pt_cluster_region *r, char *err, size_t errlen)
{
    return check_region(r, "", err, errlen);
}

/*
 * The rules of a whole configuration. where (borrowed) is "path:" or "" and lines (may be
 * NULL) holds each region's line in the file, for messages.
 */
static int check_config(const struct pt_cluster_config *c, const char *where,
                        const unsigned long *lines, char *err, size_t errlen)
{
    char prefix[PT_CLUSTER_NAME_MAX + 64], at[32] = "";
    const char *why;
    size_t voters = 0;
    int rc;

    if (memchr(c->cluster_id, '\0', sizeof c->cluster_id) == NULL)
        return fail(err, errlen, "%scluster_id: not terminated", where);
    if (pt_ident_check_cluster_id(c->cluster_id, &why) != 0)
        return fail(err, errlen, "%scluster_id: %s", where, why);
    if (c->nregions == 0)
        return fail(err, errlen, "%sregions: at least one region is needed", where);
    if (c->nregions > PT_CLUSTER_REGIONS_MAX)
        return fail(err, errlen, "%sregions: more than %d regions", where, PT_CLUSTER_REGIONS_MAX);
    for (size_t i = 0; i < c->nregions; i++) {
        const struct pt_cluster_region *r = &c->regions[i];

        if (lines != NULL)
            snprintf(at, sizeof at, "%lu: ", lines[i]);
        snprintf(prefix, sizeof prefix, "%s%sregions[%zu].", where, at, i);
        rc = check_region(r, prefix, err, errlen);
        if (rc != 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            const struct pt_cluster_region *o = &c->regions[j];
            const char *key = NULL;

            if (strcmp(r->name, o->name) == 0)
                key = "name";
            else if (r->id == o->id)
                key = "id";
            else if (strcasecmp(r->address, o->address) == 0)
                key = "address";
            else if (strcasecmp(r->url, o->url) == 0)
                key = "url";
            if (key != NULL)
                return fail(err, errlen, "%s%s: same as regions[%zu] (%s)", prefix, key, j,
                            o->name);
        }
        if (r->role == PT_CLUSTER_VOTER)
            voters++;
    }
    if (voters == 0)
        return fail(err, errlen, "%sregions: at least one region must be a voter", where);
    return 0;
}

int pt_cluster_config_validate(const struct pt_cluster_config *c, char *err, size_t errlen)
{
    return check_config(c, "", NULL, err, errlen);
}

const struct pt_cluster_region *pt_cluster_config_find(const struct pt_cluster_config *c,
                                                       const char *name)
{
    if (c == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < c->nregions && i < PT_CLUSTER_REGIONS_MAX; i++) {
        if (strcmp(c->regions[i].name, name) == 0)
            return &c->regions[i];
    }
    return NULL;
}

const struct pt_cluster_region *pt_cluster_config_find_id(const struct pt_cluster_config *c,
                                                          uint64_t id)
{
    if (c == NULL || id == 0)
        return NULL;
    for (size_t i = 0; i < c->nregions && i < PT_CLUSTER_REGIONS_MAX; i++) {
        if (c->regions[i].id == id)
            return &c->regions[i];
    }
    return NULL;
}

/* ---- YAML ------------------------------------------------------------------------------ */

enum state {
    S_ROOT,         /* expect the root mapping */
    S_TOP_KEY,      /* expect a top-level key or MAPPING-END */
    S_CLUSTER_ID,   /* expect the cluster_id scalar */
    S_REGIONS,      /* expect the regions SEQUENCE-START */
    S_REGION,       /* expect a region MAPPING-START or SEQUENCE-END */
    S_REGION_KEY,   /* expect a region key or MAPPING-END */
    S_REGION_VALUE, /* expect the value of region key `key` */
    S_DONE,         /* the root mapping ended */
};

struct walk {
    enum state state;
    struct pt_cluster_config *cfg;
    const char *path;
    unsigned top_seen;                           /* bits of enum top_key */
    unsigned region_seen;                        /* bits of enum region_key, current region */
    enum region_key key;                         /* key whose value comes next */
    unsigned long lines[PT_CLUSTER_REGIONS_MAX]; /* line of each region's first key */
    char *err;
    size_t errlen;
};

static int lookup(const char *const *names, int count, const char *key)
{
    for (int i = 0; i < count; i++) {
        if (strcmp(names[i], key) == 0)
            return i;
    }
    return -1;
}

/* Stores the value v of the current region's key w->key. name is "path:line: regions[i].key". */
static int set_region_value(struct walk *w, const char *name, const char *v)
{
    struct pt_cluster_region *r = &w->cfg->regions[w->cfg->nregions - 1];
    const char *why;
    size_t n = strlen(v);

    switch (w->key) {
    case RK_NAME:
        if (pt_ident_check_region(v, &why) != 0)
            return fail(w->err, w->errlen, "%s: \"%.*s\": %s", name, QUOTE_MAX, v, why);
        memcpy(r->name, v, n + 1);
        return 0;
    case RK_ID:
        if (pt_ident_parse_server_id(v, &r->id) != 0)
            return fail(w->err, w->errlen, "%s: \"%.*s\": must be an integer 1..%llu", name,
                        QUOTE_MAX, v, (unsigned long long)PT_CLUSTER_SERVER_ID_MAX);
        return 0;
    case RK_ADDRESS:
        if (pt_addr_check_peer(v, &why) != 0)
            return fail(w->err, w->errlen, "%s: \"%.*s\": %s", name, QUOTE_MAX, v, why);
        memcpy(r->address, v, n + 1);
        return 0;
    case RK_URL:
        /* "http://host:port/" means "http://host:port". */
        if (n > 0 && v[n - 1] == '/' && n - 1 <= PT_CLUSTER_URL_MAX) {
            char trimmed[PT_CLUSTER_URL_MAX + 1];
            memcpy(trimmed, v, n - 1);
            trimmed[n - 1] = '\0';
            if (pt_addr_check_url(trimmed, NULL) == 0) {
                memcpy(r->url, trimmed, n);
                return 0;
            }
        }
        if (pt_addr_check_url(v, &why) != 0)
            return fail(w->err, w->errlen, "%s: \"%.*s\": %s", name, QUOTE_MAX, v, why);
        memcpy(r->url, v, n + 1);
        return 0;
    case RK_ROLE:
        if (pt_ident_parse_role(v, &r->role) != 0)
            return fail(w->err, w->errlen, "%s: \"%.*s\": must be voter, standby or spare", name,
                        QUOTE_MAX, v);
        return 0;
    default:
        return fail(w->err, w->errlen, "%s: unhandled key", name);
    }
}

static int walk_event(void *arg, const yaml_event_t *ev)
{
    struct walk *w = arg;
    unsigned long line = (unsigned long)ev->start_mark.line + 1;
    char name[512]; /* "path:line: regions[i].key", path cut to fit */
    const char *v;
    int k;

    switch (w->state) {
    case S_ROOT:
        if (ev->type != YAML_MAPPING_START_EVENT)
            return fail(w->err, w->errlen,
                        "%s:%lu: the top level must be a mapping with cluster_id and regions",
                        w->path, line);
        w->state = S_TOP_KEY;
        return 0;
    case S_TOP_KEY:
        if (ev->type == YAML_MAPPING_END_EVENT) {
            for (k = 0; k < TK_COUNT; k++) {
                if (!(w->top_seen & (1u << k)))
                    return fail(w->err, w->errlen, "%s:%lu: missing key \"%s\"", w->path, line,
                                top_keys[k]);
            }
            w->state = S_DONE;
            return 0;
        }
        if (ev->type != YAML_SCALAR_EVENT)
            return fail(w->err, w->errlen, "%s:%lu: keys must be plain names, not %s", w->path,
                        line, pt_yaml_event_what(ev->type));
        v = pt_yaml_scalar_text(ev);
        k = v == NULL ? -1 : lookup(top_keys, TK_COUNT, v);
        if (k < 0)
            return fail(w->err, w->errlen, "%s:%lu: unknown key \"%.*s\"", w->path, line, QUOTE_MAX,
                        (const char *)ev->data.scalar.value);
        if (w->top_seen & (1u << k))
            return fail(w->err, w->errlen, "%s:%lu: %s: key given twice", w->path, line,
                        top_keys[k]);
        w->top_seen |= 1u << k;
        w->state = k == TK_CLUSTER_ID ? S_CLUSTER_ID : S_REGIONS;
        return 0;
    case S_CLUSTER_ID: {
        const char *why;
        if (ev->type != YAML_SCALAR_EVENT)
            return fail(w->err, w->errlen, "%s:%lu: cluster_id: expected a single value, not %s",
                        w->path, line, pt_yaml_event_what(ev->type));
        v = pt_yaml_scalar_text(ev);
        if (v == NULL)
            return fail(w->err, w->errlen, "%s:%lu: cluster_id: value contains a NUL byte", w->path,
                        line);
        if (pt_ident_check_cluster_id(v, &why) != 0)
            return fail(w->err, w->errlen, "%s:%lu: cluster_id: \"%.*s\": %s", w->path, line,
                        QUOTE_MAX, v, why);
        memcpy(w->cfg->cluster_id, v, strlen(v) + 1);
        w->state = S_TOP_KEY;
        return 0;
    }
    case S_REGIONS:
        if (ev->type != YAML_SEQUENCE_START_EVENT)
            return fail(w->err, w->errlen, "%s:%lu: regions: expected a list of regions, not %s",
                        w->path, line,
                        ev->type == YAML_SCALAR_EVENT ? "a single value"
                                                      : pt_yaml_event_what(ev->type));
        w->state = S_REGION;
        return 0;
    case S_REGION:
        if (ev->type == YAML_SEQUENCE_END_EVENT) {
            if (w->cfg->nregions == 0)
                return fail(w->err, w->errlen, "%s:%lu: regions: at least one region is needed",
                            w->path, line);
            w->state = S_TOP_KEY;
            return 0;
        }
        if (ev->type != YAML_MAPPING_START_EVENT)
            return fail(w->err, w->errlen,
                        "%s:%lu: regions[%zu]: expected a mapping of name, id, address, url, "
                        "role; not %s",
                        w->path, line, w->cfg->nregions, pt_yaml_event_what(ev->type));
        if (w->cfg->nregions == PT_CLUSTER_REGIONS_MAX)
            return fail(w->err, w->errlen, "%s:%lu: regions: more than %d regions", w->path, line,
                        PT_CLUSTER_REGIONS_MAX);
        w->lines[w->cfg->nregions] = line;
        memset(&w->cfg->regions[w->cfg->nregions], 0, sizeof w->cfg->regions[0]);
        w->cfg->regions[w->cfg->nregions].role = PT_CLUSTER_VOTER;
        w->cfg->nregions++;
        w->region_seen = 0;
        w->state = S_REGION_KEY;
        return 0;
    case S_REGION_KEY: {
        size_t i = w->cfg->nregions - 1;
        if (ev->type == YAML_MAPPING_END_EVENT) {
            for (k = 0; k < RK_COUNT; k++) {
                if ((RK_REQUIRED & (1u << k)) && !(w->region_seen & (1u << k)))
                    return fail(w->err, w->errlen, "%s:%lu: regions[%zu]: missing key \"%s\"",
                                w->path, w->lines[i], i, region_keys[k]);
            }
            w->state = S_REGION;
            return 0;
        }
        if (ev->type != YAML_SCALAR_EVENT)
            return fail(w->err, w->errlen, "%s:%lu: regions[%zu]: keys must be plain names, not %s",
                        w->path, line, i, pt_yaml_event_what(ev->type));
        v = pt_yaml_scalar_text(ev);
        k = v == NULL ? -1 : lookup(region_keys, RK_COUNT, v);
        if (k < 0)
            return fail(w->err, w->errlen, "%s:%lu: regions[%zu]: unknown key \"%.*s\"", w->path,
                        line, i, QUOTE_MAX, (const char *)ev->data.scalar.value);
        if (w->region_seen & (1u << k))
            return fail(w->err, w->errlen, "%s:%lu: regions[%zu].%s: key given twice", w->path,
                        line, i, region_keys[k]);
        w->region_seen |= 1u << k;
        w->key = (enum region_key)k;
        w->state = S_REGION_VALUE;
        return 0;
    }
    case S_REGION_VALUE:
        snprintf(name, sizeof name, "%.300s:%lu: regions[%zu].%s", w->path, line,
                 w->cfg->nregions - 1, region_keys[w->key]);
        if (ev->type != YAML_SCALAR_EVENT)
            return fail(w->err, w->errlen, "%s: expected a single value, not %s", name,
                        pt_yaml_event_what(ev->type));
        v = pt_yaml_scalar_text(ev);
        if (v == NULL)
            return fail(w->err, w->errlen, "%s: value contains a NUL byte", name);
        w->state = S_REGION_KEY;
        return set_region_value(w, name, v);
    case S_DONE:
        break;
    }
    return fail(w->err, w->errlen, "%s:%lu: unexpected YAML structure", w->path, line);
}

int pt_cluster_config_parse(struct pt_cluster_config *c, const char *text, size_t len,
                            const char *name, char *err, size_t errlen)
{
    struct pt_cluster_config *tmp;
    struct walk *w;
    char where[320];
    int rc;

    if (len > PT_CLUSTER_FILE_MAX)
        return fail(err, errlen, "%s: larger than %d bytes", name, PT_CLUSTER_FILE_MAX);
    /* About 60 KiB together: on the heap, callers may run on small thread stacks. */
    tmp = calloc(1, sizeof *tmp);
    w = calloc(1, sizeof *w);
    if (tmp == NULL || w == NULL) {
        free(tmp);
        free(w);
        return fail(err, errlen, "%s: out of memory", name);
    }
    *w = (struct walk){.state = S_ROOT, .cfg = tmp, .path = name, .err = err, .errlen = errlen};
    rc = pt_yaml_walk(text, len, name, walk_event, w, err, errlen);
    if (rc == 0 && w->state == S_ROOT)
        rc = fail(err, errlen, "%s: empty file (cluster_id and regions are needed)", name);
    if (rc == 0) {
        snprintf(where, sizeof where, "%.300s:", name);
        rc = check_config(tmp, where, w->lines, err, errlen);
    }
    if (rc == 0)
        *c = *tmp;
    free(w);
    free(tmp);
    return rc;
}

int pt_cluster_config_load(struct pt_cluster_config *c, const char *path, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    int rc = pt_yaml_read_file(path, PT_CLUSTER_FILE_MAX, &buf, &len, err, errlen);
    if (rc != 0)
        return rc;
    rc = pt_cluster_config_parse(c, buf, len, path, err, errlen);
    free(buf);
    return rc;
}

void pt_cluster_config_describe(const struct pt_cluster_config *c, const struct pt_region_rec *recs,
                                size_t nrecs, uint64_t id, const char **name, const char **url)
{
    *name = "";
    *url = "";
    for (size_t i = 0; c != NULL && i < c->nregions; i++) {
        if (c->regions[i].id == id) {
            *name = c->regions[i].name;
            *url = c->regions[i].url;
            return;
        }
    }
    for (size_t i = 0; i < nrecs; i++) {
        if (recs[i].id == id) {
            *name = recs[i].name;
            *url = recs[i].url;
        }
    }
}
