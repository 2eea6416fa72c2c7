/*
 * throttle.h - request throttling in one region: token buckets per identity for read
 * operations, write operations and bandwidth (README "Storage quotas and throttling").
 *
 * Role: the gate (auth_gate.c) asks pt_throttle_admit once per registry request (/v2/...)
 * after it knows who the request acts as; handlers that learn how many bytes they send
 * (a blob GET) charge them with pt_throttle_charge. Over a limit the request gets 429
 * TOOMANYREQUESTS with Retry-After: the seconds until the bucket holds a token again.
 *
 * Design:
 *   - Limits are replicated settings (metastore_throttle.c: a record per subject, else
 *     "default"); counters are local to this region. No record at all (the default): nothing
 *     is counted and pt_throttle_admit returns at once.
 *   - Buckets (pt_bucket): operations refill at per_minute / 60 per second and hold at most
 *     per_minute tokens (one minute's burst); an operation takes one. Bandwidth buckets
 *     refill at bytes_per_second and hold one second's worth; a transfer is admitted while
 *     the bucket is not in debt and then takes its whole size (the bucket may go negative:
 *     the next request waits until the debt is repaid), so a blob larger than a second's
 *     worth still passes, and the average stays at the limit.
 *   - Keys: "user:<name>", "token:<id>", and "addr:<client address>" for anonymous requests.
 *   - Memory: PT_THROTTLE_SHARDS shards, each a fixed table of PT_THROTTLE_SHARD_BUCKETS
 *     buckets in LRU order; a new key takes a free slot or the least recently used one (a
 *     bucket idle for a minute is full again, so evicting it forgets nothing).
 *   - Settings are cached per shard and reloaded when pt_metastore_auth_generation moves.
 * Threads: every function may be called from any worker loop; each shard has its own mutex,
 * held for a hash lookup and a few arithmetic operations (settings reload: one RocksDB read).
 */
#ifndef PT_THROTTLE_H
#define PT_THROTTLE_H

#include <stdint.h>

#include "metastore.h"

#define PT_THROTTLE_SHARDS        64
#define PT_THROTTLE_SHARD_BUCKETS 1024 /* 65536 buckets in all, about 13 MiB at most */
#define PT_THROTTLE_KEY_MAX       80

/* ---- bucket math (pure, for tests) ------------------------------------------------------ */

struct pt_bucket {
    double tokens;
    int64_t t_ms; /* last refill, monotonic ms; 0: never used (starts full) */
};

/* Refills b at rate tokens per second up to burst as of now_ms, then, when at least min
 * tokens are there, takes cost and returns 0; else returns the whole seconds (at least 1)
 * until min tokens will be there. rate and burst > 0. */
unsigned pt_bucket_take(struct pt_bucket *b, double rate, double burst, double min, double cost,
                        int64_t now_ms);

/* The limits of a preset tier (metastore.h enum pt_throttle_tier; CUSTOM: all 0). */
void pt_throttle_tier_limits(unsigned tier, struct pt_throttle_rec *out);
/* "custom", "basic", "standard", "premium"; tier index from a name, or -1. */
const char *pt_throttle_tier_name(unsigned tier);
int pt_throttle_tier_parse(const char *name);

/* ---- the region's table ----------------------------------------------------------------- */

struct pt_throttle;

enum pt_throttle_kind { PT_THROTTLE_READ, PT_THROTTLE_WRITE };

/* Creates the table over ms (borrowed; outlives it). 0 or PT_E_NOMEM. */
int pt_throttle_create(struct pt_metastore *ms, struct pt_throttle **out);
void pt_throttle_free(struct pt_throttle *t);

/* Admits one request of kind by key (borrowed, "user:x" / "token:x" / "addr:x") whose
 * settings are looked up as subject (borrowed: "user:x", "token:x" or "anonymous"), with
 * bytes of body already known (writes: the request body; 0 otherwise). Returns 0, or the
 * seconds to tell in Retry-After. */
unsigned pt_throttle_admit(struct pt_throttle *t, const char *key, const char *subject,
                           enum pt_throttle_kind kind, uint64_t bytes, int64_t now_ms);
/* Charges bytes sent to key's read bandwidth (no effect without a limit). */
void pt_throttle_charge(struct pt_throttle *t, const char *key, const char *subject, uint64_t bytes,
                        int64_t now_ms);
/* Buckets in use (metrics, tests). */
unsigned pt_throttle_buckets(struct pt_throttle *t);

#endif
