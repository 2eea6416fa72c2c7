/*
 * directory.h - the in-memory view of access control that every worker thread reads: users,
 * access tokens, anonymous rules, token signing keys and revoked token ids.
 *
 * Role: answers "who is this" (login with Basic credentials) and "what may they do here"
 * (action bits on a repository) without touching RocksDB on the request path.
 *
 * Design: the replicated records live in the metastore (written only by the FSM). The
 * directory holds an immutable snapshot of all of them, built from the metastore and
 * replaced (copy-on-write, swapped under a mutex, reference counted) whenever
 * pt_metastore_auth_generation moved; every call checks the generation first (one atomic
 * load when nothing changed). Password checks (yescrypt, milliseconds) are cached on
 * success: HMAC-SHA256 under a per-process random key of name + secret -> identity, for 60
 * s, in a bounded table, dropped as a whole on any generation change. Failures are never
 * cached.
 *
 * Invariants: a removed, disabled or expired identity holds no actions. The directory never
 * stores or logs a password or secret (only their keyed HMAC in the cache).
 *
 * Threads: every function may be called from any thread concurrently, except that
 * pt_auth_dir_close runs after every other call returned. Password verification runs on the
 * calling thread: the HTTP layer calls login off its event loops or accepts the cost.
 *
 * Errors: 0 or a negative PT_E_* (node/base/err.h). Strings are borrowed for the call.
 */
#ifndef PT_AUTH_DIRECTORY_H
#define PT_AUTH_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

#include "metastore.h"
#include "pattern.h"

/* Successful logins are remembered this long. */
#define PT_AUTH_LOGIN_CACHE_TTL_MS 60000
/* At most this many remembered logins (the oldest is replaced when full). */
#define PT_AUTH_LOGIN_CACHE_MAX 4096

enum pt_identity_kind { PT_IDENTITY_ANONYMOUS = 0, PT_IDENTITY_USER, PT_IDENTITY_TOKEN };

/* Who a request acts as. Anonymous has an empty name. */
struct pt_identity {
    enum pt_identity_kind kind;
    char name[PT_AUTH_NAME_MAX + 1];
};

struct pt_auth_dir;

/* Opens a directory over ms (borrowed: must outlive the directory) and loads it. On success
 * *out is owned by the caller until pt_auth_dir_close. PT_E_NOMEM, PT_E_IO, PT_E_CORRUPT. */
int pt_auth_dir_open(struct pt_metastore *ms, struct pt_auth_dir **out);
/* Frees d (NULL is a no-op). */
void pt_auth_dir_close(struct pt_auth_dir *d);

/* Reloads from the metastore when its auth generation moved (cheap check; call freely). All
 * functions below call it. 0, or the metastore's error (then the previous view stays). */
int pt_auth_dir_refresh(struct pt_auth_dir *d);
/* The metastore auth generation the current view was loaded at. */
uint64_t pt_auth_dir_generation(struct pt_auth_dir *d);

/* The cache half of pt_auth_dir_login, cheap enough for an event loop: 0 and *out when these
 * credentials were verified recently (same rules as a cache hit there), PT_E_NOT_FOUND when
 * only the slow check can tell (call pt_auth_dir_login, off the loop). */
int pt_auth_dir_login_cached(struct pt_auth_dir *d, const char *name, size_t name_len,
                             const char *secret, size_t secret_len, int64_t now_ms,
                             struct pt_identity *out);

/*
 * Basic credentials: a user's name + password, or a token's id + secret (the secret starts
 * with "ptk_"). 0 and *out, or PT_E_UNAUTHORIZED (unknown, wrong, disabled, expired, over the
 * bounds), or PT_E_UNAVAILABLE when the check could not run (memory, the password hash or the
 * cache's MAC failed): no verdict on the credentials. Successful checks are cached (HMAC-SHA256
 * with a per-process random key of name+password -> identity, 60 s, dropped on any generation
 * change); failures never.
 */
int pt_auth_dir_login(struct pt_auth_dir *d, const char *name, size_t name_len, const char *secret,
                      size_t secret_len, int64_t now_ms, struct pt_identity *out);

/* Counters for metrics and tests: logins answered from the cache, and slow checks (password
 * or secret verifications) run. Any thread. */
uint64_t pt_auth_dir_cache_hits(struct pt_auth_dir *d);
uint64_t pt_auth_dir_verifications(struct pt_auth_dir *d);

/* Action bits `id` holds on repository repo[0..len) now: the union of its matching grants
 * (ADMIN anywhere -> PT_ACTIONS_ALL), for anonymous the anonymous rules (PULL only). A
 * removed, disabled or expired identity: 0. */
unsigned pt_auth_dir_allowed(struct pt_auth_dir *d, const struct pt_identity *id, const char *repo,
                             size_t len, int64_t now_ms);
/* 1 if id is active and holds ADMIN, else 0. */
int pt_auth_dir_is_admin(struct pt_auth_dir *d, const struct pt_identity *id, int64_t now_ms);
/* 1 if id exists and is neither disabled nor expired (anonymous: always 1), else 0. */
int pt_auth_dir_active(struct pt_auth_dir *d, const struct pt_identity *id, int64_t now_ms);
/* 1 if at least one user exists, else 0. */
int pt_auth_dir_has_users(struct pt_auth_dir *d);
/* 1 if any anonymous rule exists, else 0. */
int pt_auth_dir_anonymous_any(struct pt_auth_dir *d);

/* Signing public key by kid: 0 and a copy of the DER into der (*len bytes available on entry,
 * the key's length on return), PT_E_NOT_FOUND, PT_E_TOO_LARGE if *len is too small, or
 * PT_E_DENIED when retired before now. */
int pt_auth_dir_signing_key(struct pt_auth_dir *d, const char *kid, int64_t now_ms,
                            unsigned char *der, size_t *len);
/* 1 if the token id jti was revoked (and not yet forgotten), else 0. */
int pt_auth_dir_jwt_revoked(struct pt_auth_dir *d, const char *jti);

/* Listings for the admin API: copies, sorted by name; the caller frees with free(). */
struct pt_auth_user_info {
    char name[PT_AUTH_NAME_MAX + 1];
    struct pt_grant grants[PT_AUTH_GRANTS_MAX];
    size_t n_grants;
    int disabled;
    int64_t created_ms;
};
struct pt_auth_token_info {
    char id[PT_AUTH_NAME_MAX + 1];
    struct pt_grant grants[PT_AUTH_GRANTS_MAX];
    size_t n_grants;
    int disabled;
    int64_t expires_ms, created_ms; /* expires_ms 0: never */
    char description[256];
    char owner[PT_AUTH_NAME_MAX + 1];
};
/* 0 and *out (NULL when *n is 0), PT_E_NOMEM. */
int pt_auth_dir_users(struct pt_auth_dir *d, struct pt_auth_user_info **out, size_t *n);
int pt_auth_dir_tokens(struct pt_auth_dir *d, struct pt_auth_token_info **out, size_t *n);
/* 0 and *out, or PT_E_NOT_FOUND. */
int pt_auth_dir_user(struct pt_auth_dir *d, const char *name, struct pt_auth_user_info *out);
int pt_auth_dir_token(struct pt_auth_dir *d, const char *id, struct pt_auth_token_info *out);
/* Anonymous rule patterns, sorted: 0 and *patterns (free()), PT_E_NOMEM. */
int pt_auth_dir_anonymous(struct pt_auth_dir *d, char (**patterns)[PT_AUTH_PATTERN_MAX + 1],
                          size_t *n);

/* Signing keys for status and rotation (copies, sorted by kid; free()). not_after_ms 0: not
 * retired. */
struct pt_auth_key_info {
    char kid[PT_AUTH_NAME_MAX + 1];
    char region[PT_AUTH_NAME_MAX + 1];
    int64_t created_ms, not_after_ms;
};
int pt_auth_dir_keys(struct pt_auth_dir *d, struct pt_auth_key_info **out, size_t *n);

#endif
