/*
 * limiter.h - back-off for failed logins, per key (a user name, a client address).
 *
 * Role: slows down password guessing. The HTTP gate checks the keys of a request (its user
 * name and its client address, e.g. "u:alice" and "a:192.0.2.1") before checking credentials,
 * answers 429 with Retry-After while one is refused, records a failure on each key after a
 * wrong password, and clears the user key after a success.
 *
 * Design: after `burst` failures within `window_ms` a key is refused for a back-off that starts
 * at 1 s and doubles with every further block, up to 5 min; a key left alone for the window
 * plus its back-off starts again from 1 s. Keys are not stored: a keyed hash (SipHash-2-4 with
 * a per-process random key) of the key stands for it, so memory is a fixed table (4096 buckets
 * of 8 entries) whatever clients send; a full bucket evicts its entry seen least recently,
 * preferring entries not currently refused.
 *
 * Threads: every function is thread-safe (striped mutexes), except create/free (one owner).
 */
#ifndef PT_AUTH_LIMITER_H
#define PT_AUTH_LIMITER_H

#include <stdint.h>

#define PT_LIMITER_BACKOFF_MIN_MS 1000u
#define PT_LIMITER_BACKOFF_MAX_MS 300000u

struct pt_limiter;

/* burst >= 1 failures within window_ms (> 0) trigger a block. 0, PT_E_CONFIG, PT_E_NOMEM,
 * PT_E_INTERNAL (no randomness). *out owned; free with pt_limiter_free. */
int pt_limiter_create(unsigned burst, uint64_t window_ms, struct pt_limiter **out);
void pt_limiter_free(struct pt_limiter *l); /* NULL is fine */

/* 0 when key (NUL-terminated, borrowed) may try now, else the seconds to wait (Retry-After,
 * at least 1). */
unsigned pt_limiter_check(struct pt_limiter *l, const char *key, int64_t now_ms);

/* Records one failed attempt for key at now_ms. */
void pt_limiter_fail(struct pt_limiter *l, const char *key, int64_t now_ms);

/* Forgets key (its failures and back-off). */
void pt_limiter_success(struct pt_limiter *l, const char *key);

#endif
