/*
 * login_cache.h - remembered successful logins, so a request with Basic credentials costs a
 * keyed hash instead of a yescrypt verification (used by directory.c).
 *
 * Design: a fixed table of entries in sets of 4 (set-associative), indexed by
 * HMAC-SHA256(name, secret) under a key drawn at creation (RAND_bytes, never stored or
 * shown). An entry holds only that MAC, the identity, the directory generation it was checked
 * against and its expiry; an entry of another generation or past its expiry is dead. A full
 * set replaces its entry closest to expiry. Memory is bounded by the size given at creation.
 * The HMAC runs from precomputed inner and outer SHA-256 states (RFC 2104 section 2, a
 * 64-byte key is one block), copied per call.
 *
 * Invariants: no password or secret is stored; the caller adds only successful logins.
 *
 * Threads: every function may be called from any thread (one mutex around the table, held
 * for a few comparisons); pt_login_cache_free runs after every other call returned.
 */
#ifndef PT_AUTH_LOGIN_CACHE_H
#define PT_AUTH_LOGIN_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "directory.h"

#define PT_LOGIN_MAC_LEN 32

struct pt_login_cache;

/* A cache of about max_entries entries (rounded down to whole sets, at least one set) that
 * remembers a login for ttl_ms. *out owned until pt_login_cache_free. PT_E_NOMEM,
 * PT_E_INTERNAL (random generator or digest failure). */
int pt_login_cache_create(size_t max_entries, int64_t ttl_ms, struct pt_login_cache **out);
/* NULL is a no-op; the table is wiped before it is freed. */
void pt_login_cache_free(struct pt_login_cache *c);

/* mac = HMAC-SHA256(key, u8:name_len name secret); name_len <= 255. 0, PT_E_NOMEM,
 * PT_E_INTERNAL. */
int pt_login_cache_mac(struct pt_login_cache *c, const char *name, size_t name_len,
                       const char *secret, size_t secret_len, unsigned char mac[PT_LOGIN_MAC_LEN]);
/* 1 and *out if a live entry for mac at generation gen exists at now_ms, else 0. */
int pt_login_cache_get(struct pt_login_cache *c, const unsigned char mac[PT_LOGIN_MAC_LEN],
                       uint64_t gen, int64_t now_ms, struct pt_identity *out);
/* Remembers id (copied) for mac at generation gen until now_ms + ttl_ms. */
void pt_login_cache_put(struct pt_login_cache *c, const unsigned char mac[PT_LOGIN_MAC_LEN],
                        uint64_t gen, int64_t now_ms, const struct pt_identity *id);

#endif
