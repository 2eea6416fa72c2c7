/*
 * token_cache.h - verified bearer tokens, so a token is checked once and not on every request.
 *
 * Role: sits on every /v2/ request that carries a Bearer token. A hit returns the claims a
 * previous pt_jwt_verify produced for exactly the same token text, without any signature or
 * JSON work; a miss means "verify it, then put it".
 *
 * Design: entries are keyed by SHA-256 of the token text (the text itself is never stored).
 * The table is sharded (16 shards, each a mutex over a set-associative array of buckets of 8
 * entries), so threads rarely contend and a lookup touches one bucket. Memory is bounded:
 * at most max_entries entries, each owning a copy of the claims with only the access entries
 * it uses. Inserting into a full bucket evicts its oldest entry. An entry is served until its
 * exp plus PT_JWT_LEEWAY_S (the window pt_jwt_verify accepts) and only for the generation it
 * was put with: any change of the auth directory's generation (key retired, jti revoked, user
 * removed) makes every older entry a miss (and frees it when met).
 *
 * Invariants: a hit implies the same token text was verified with the same generation, and
 * now_s is not past its exp + leeway.
 * Threads: every function is thread-safe, except create/free (one owner).
 */
#ifndef PT_AUTH_TOKEN_CACHE_H
#define PT_AUTH_TOKEN_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "jwt.h"

#define PT_TOKEN_CACHE_DEFAULT 65536

struct pt_token_cache;

/* max_entries is rounded down to whole buckets (at least one bucket a shard). 0, PT_E_CONFIG
 * (max_entries 0), PT_E_NOMEM. *out owned; free with pt_token_cache_free. */
int pt_token_cache_create(size_t max_entries, struct pt_token_cache **out);
void pt_token_cache_free(struct pt_token_cache *c); /* NULL is fine */

/* Claims of tok[0..len) if cached with this generation and not past exp + leeway: returns 1
 * and copies them into *out (out->access beyond out->n_access is left untouched); else 0 and
 * *out untouched. tok and out borrowed. */
int pt_token_cache_get(struct pt_token_cache *c, const char *tok, size_t len, int64_t now_s,
                       uint64_t generation, struct pt_jwt_claims *out);

/* Remembers claims (copied) for tok[0..len) under generation. Out of memory only skips the
 * caching. tok and claims borrowed. */
void pt_token_cache_put(struct pt_token_cache *c, const char *tok, size_t len, uint64_t generation,
                        const struct pt_jwt_claims *claims);

/* Drops every entry. */
void pt_token_cache_clear(struct pt_token_cache *c);

/* Number of entries held now (approximate while other threads put). */
size_t pt_token_cache_size(struct pt_token_cache *c);

#endif
