/*
 * config_yaml.c - the YAML file of `portolan serve` (--config FILE or $PORTOLAN_CONFIG).
 *
 * Design: the file is read whole (at most PT_CONFIG_FILE_MAX bytes) and walked with libyaml's
 * event API as a small state machine: one document whose root is a mapping of scalar keys to
 * scalar values, each key a row of the settings table (config.c). Nested values, aliases,
 * duplicate keys and a second document are refused; messages carry the file, line and key.
 * The walk works on a copy and copies it back only on success.
 *
 * Threads: none; runs at start-up on the caller's thread.
 */
#include "config_int.h"
#include "yaml_file.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Inside the one document (pt_yaml_walk frames it). */
enum yaml_state {
    Y_ROOT,  /* expect the root node */
    Y_KEY,   /* expect a key or MAPPING-END */
    Y_VALUE, /* expect the value of key */
    Y_DONE,  /* the root node ended */
};

struct yaml_walk {
    enum yaml_state state;
    struct pt_config *cfg;
    const char *path;
    const struct option *opt; /* key whose value comes next */
    uint64_t seen;            /* bit i set once options[i] was given */
    char *err;
    size_t errlen;
};

static int walk_event(void *arg, const yaml_event_t *ev)
{
    struct yaml_walk *w = arg;
    unsigned long line = (unsigned long)ev->start_mark.line + 1;
    char name[PATH_MAX + 128]; /* "path:line: key" */

    switch (w->state) {
    case Y_ROOT:
        if (ev->type == YAML_MAPPING_START_EVENT) {
            w->state = Y_KEY;
            return 0;
        }
        /* A document holding nothing ("---" alone) is an empty configuration. */
        if (ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length == 0 &&
            ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
            w->state = Y_DONE;
            return 0;
        }
        return pt_config__fail(w->err, w->errlen,
                               "%s:%lu: the top level must be a mapping of settings", w->path,
                               line);
    case Y_KEY: {
        const char *key;
        if (ev->type == YAML_MAPPING_END_EVENT) {
            w->state = Y_DONE;
            return 0;
        }
        if (ev->type != YAML_SCALAR_EVENT)
            return pt_config__fail(w->err, w->errlen, "%s:%lu: keys must be plain names, not %s",
                                   w->path, line, pt_yaml_event_what(ev->type));
        key = (const char *)ev->data.scalar.value;
        w->opt = strlen(key) == ev->data.scalar.length ? pt_config__find_key(key) : NULL;
        if (w->opt == NULL)
            return pt_config__fail(w->err, w->errlen, "%s:%lu: unknown key \"%.*s\"", w->path, line,
                                   QUOTE_MAX, key);
        uint64_t bit = UINT64_C(1) << (w->opt - pt_config__option(0));
        if (w->seen & bit)
            return pt_config__fail(w->err, w->errlen, "%s:%lu: %s: key given twice", w->path, line,
                                   w->opt->key);
        w->seen |= bit;
        w->state = Y_VALUE;
        return 0;
    }
    case Y_VALUE:
        snprintf(name, sizeof name, "%s:%lu: %s", w->path, line, w->opt->key);
        if (ev->type != YAML_SCALAR_EVENT)
            return pt_config__fail(w->err, w->errlen, "%s: expected a single value, not %s", name,
                                   pt_yaml_event_what(ev->type));
        if (strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length)
            return pt_config__fail(w->err, w->errlen, "%s: value contains a NUL byte", name);
        w->state = Y_KEY;
        return pt_config__set_value(w->cfg, w->opt, name, pt_yaml_scalar_text(ev), w->err,
                                    w->errlen);
    case Y_DONE:
        break;
    }
    return pt_config__fail(w->err, w->errlen, "%s:%lu: unexpected YAML structure", w->path, line);
}

int pt_config_load_file(struct pt_config *c, const char *path, char *err, size_t errlen)
{
    struct pt_config tmp = *c;
    struct yaml_walk w = {.state = Y_ROOT, .cfg = &tmp, .path = path, .err = err, .errlen = errlen};
    char *buf = NULL;
    size_t len = 0;
    int rc;

    rc = pt_yaml_read_file(path, PT_CONFIG_FILE_MAX, &buf, &len, err, errlen);
    if (rc != 0)
        return rc;
    rc = pt_yaml_walk(buf, len, path, walk_event, &w, err, errlen);
    free(buf);
    if (rc == 0)
        *c = tmp;
    return rc;
}
