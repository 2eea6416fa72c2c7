/*
 * directory_list.c - the directory's listings for the admin API (see directory.h): copies
 * out of the current view, sorted by name as the view is.
 */
#include <stdlib.h>
#include <string.h>

#include "directory_int.h"
#include "err.h"

static void user_info(const struct duser *u, struct pt_auth_user_info *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->name, u->name, sizeof(out->name));
    memcpy(out->grants, u->grants, u->n_grants * sizeof(*u->grants));
    out->n_grants = u->n_grants;
    out->disabled = u->disabled;
    out->created_ms = u->created_ms;
}

static void token_info(const struct dtoken *t, struct pt_auth_token_info *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->id, t->id, sizeof(out->id));
    memcpy(out->grants, t->grants, t->n_grants * sizeof(*t->grants));
    out->n_grants = t->n_grants;
    out->disabled = t->disabled;
    out->expires_ms = t->expires_ms;
    out->created_ms = t->created_ms;
    memcpy(out->description, t->description, sizeof(out->description));
    memcpy(out->owner, t->owner, sizeof(out->owner));
}

int pt_auth_dir_users(struct pt_auth_dir *d, struct pt_auth_user_info **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct view *v = dir_view_get(d);
    int rv = 0;
    if (v->n_users > 0) {
        struct pt_auth_user_info *a = malloc(v->n_users * sizeof(*a));
        if (a == NULL) {
            rv = PT_E_NOMEM;
        } else {
            for (size_t i = 0; i < v->n_users; i++)
                user_info(&v->users[i], &a[i]);
            *out = a;
            *n = v->n_users;
        }
    }
    dir_view_put(v);
    return rv;
}

int pt_auth_dir_tokens(struct pt_auth_dir *d, struct pt_auth_token_info **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct view *v = dir_view_get(d);
    int rv = 0;
    if (v->n_tokens > 0) {
        struct pt_auth_token_info *a = malloc(v->n_tokens * sizeof(*a));
        if (a == NULL) {
            rv = PT_E_NOMEM;
        } else {
            for (size_t i = 0; i < v->n_tokens; i++)
                token_info(&v->tokens[i], &a[i]);
            *out = a;
            *n = v->n_tokens;
        }
    }
    dir_view_put(v);
    return rv;
}

int pt_auth_dir_user(struct pt_auth_dir *d, const char *name, struct pt_auth_user_info *out)
{
    struct view *v = dir_view_get(d);
    const struct duser *u = dir_find_user(v, name);
    if (u != NULL)
        user_info(u, out);
    dir_view_put(v);
    return u != NULL ? 0 : PT_E_NOT_FOUND;
}

int pt_auth_dir_token(struct pt_auth_dir *d, const char *id, struct pt_auth_token_info *out)
{
    struct view *v = dir_view_get(d);
    const struct dtoken *t = dir_find_token(v, id);
    if (t != NULL)
        token_info(t, out);
    dir_view_put(v);
    return t != NULL ? 0 : PT_E_NOT_FOUND;
}

int pt_auth_dir_anonymous(struct pt_auth_dir *d, char (**patterns)[PT_AUTH_PATTERN_MAX + 1],
                          size_t *n)
{
    *patterns = NULL;
    *n = 0;
    struct view *v = dir_view_get(d);
    int rv = 0;
    if (v->n_anon > 0) {
        char(*a)[PT_AUTH_PATTERN_MAX + 1] = malloc(v->n_anon * sizeof(*a));
        if (a == NULL) {
            rv = PT_E_NOMEM;
        } else {
            for (size_t i = 0; i < v->n_anon; i++)
                memcpy(a[i], v->anon[i].pattern, sizeof(a[i]));
            *patterns = a;
            *n = v->n_anon;
        }
    }
    dir_view_put(v);
    return rv;
}

int pt_auth_dir_keys(struct pt_auth_dir *d, struct pt_auth_key_info **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct view *v = dir_view_get(d);
    int rv = 0;
    if (v->n_keys > 0) {
        struct pt_auth_key_info *a = calloc(v->n_keys, sizeof(*a));
        if (a == NULL) {
            rv = PT_E_NOMEM;
        } else {
            for (size_t i = 0; i < v->n_keys; i++) {
                memcpy(a[i].kid, v->keys[i].kid, sizeof(v->keys[i].kid));
                memcpy(a[i].region, v->keys[i].region, sizeof(v->keys[i].region));
                a[i].created_ms = v->keys[i].created_ms;
                a[i].not_after_ms = v->keys[i].not_after_ms;
            }
            *out = a;
            *n = v->n_keys;
        }
    }
    dir_view_put(v);
    return rv;
}
