/*
 * directory_int.h - what the pieces of the directory share (private to directory*.c):
 *   directory.c       views (load, swap, references), login, the questions on the request path
 *   directory_list.c  the listings of the admin API
 * The rules are directory.h's; a view is immutable once published, so a reader holding a
 * reference (dir_view_get .. dir_view_put) reads it without a lock.
 */
#ifndef PT_AUTH_DIRECTORY_INT_H
#define PT_AUTH_DIRECTORY_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "directory.h"
#include "metastore.h"
#include "password.h"

struct duser {
    char name[PT_AUTH_NAME_MAX + 1];
    char hash[PT_PASSWORD_HASH_MAX];
    int disabled;
    int64_t created_ms;
    unsigned all; /* union of the grants' bits */
    size_t n_grants;
    struct pt_grant *grants;
};

struct dtoken {
    char id[PT_AUTH_NAME_MAX + 1];
    char hash[PT_SECRET_HASH_MAX];
    int disabled;
    int64_t created_ms, expires_ms;
    char description[256];
    char owner[PT_AUTH_NAME_MAX + 1];
    unsigned all;
    size_t n_grants;
    struct pt_grant *grants;
};

struct danon {
    char pattern[PT_AUTH_PATTERN_MAX + 1];
    size_t len;
};

struct view {
    atomic_uint refs;
    uint64_t gen;
    struct duser *users;
    size_t n_users, cap_users;
    struct dtoken *tokens;
    size_t n_tokens, cap_tokens;
    struct danon *anon;
    size_t n_anon, cap_anon;
    struct pt_auth_key_rec *keys;
    size_t n_keys, cap_keys;
    struct pt_auth_revoked_rec *revoked;
    size_t n_revoked, cap_revoked;
};

/* The current view (after a refresh), with a reference the caller drops with dir_view_put. A
 * failed reload keeps the previous view. */
struct view *dir_view_get(struct pt_auth_dir *d);
/* Drops a reference; the last one frees the view. NULL is a no-op. */
void dir_view_put(struct view *v);
/* Binary search of name in a sorted array of n elements of size bytes whose first member is
 * a NUL-terminated name; NULL if absent. */
void *dir_find(const void *base, size_t n, size_t size, const char *name);
struct duser *dir_find_user(const struct view *v, const char *name);
struct dtoken *dir_find_token(const struct view *v, const char *id);

#endif
