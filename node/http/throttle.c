/*
 * throttle.c - token buckets per identity (throttle.h has the contract and the design).
 *
 * Tier presets (per identity, in each region; modelled on Azure Container Registry's
 * service tiers, whose documented limits these are):
 *
 *   tier       reads/min  writes/min  read (download)  write (upload)
 *   basic          1000         100        30 MB/s         10 MB/s
 *   standard       3000         500        60 MB/s         20 MB/s
 *   premium       10000        2000       100 MB/s         50 MB/s
 *   custom     (every value given; 0 = no limit)
 */
#include "throttle.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define MB         1000000ull
#define HASH_SLOTS (2 * PT_THROTTLE_SHARD_BUCKETS)

/* ---- bucket math ------------------------------------------------------------------------ */

unsigned pt_bucket_take(struct pt_bucket *b, double rate, double burst, double min, double cost,
                        int64_t now_ms)
{
    if (b->t_ms == 0) {
        b->tokens = burst;
    } else if (now_ms > b->t_ms) {
        b->tokens += rate * (double)(now_ms - b->t_ms) / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
    }
    if (b->t_ms == 0 || now_ms > b->t_ms)
        b->t_ms = now_ms;
    if (b->tokens >= min) {
        b->tokens -= cost;
        return 0;
    }
    double wait = (min - b->tokens) / rate;
    if (wait > 86400.0)
        return 86400;
    unsigned s = (unsigned)wait;
    if ((double)s < wait)
        s++;
    return s > 0 ? s : 1;
}

static const struct {
    const char *name;
    uint32_t reads, writes;
    uint64_t read_bps, write_bps;
} tiers[PT_THROTTLE_TIER_COUNT] = {
    [PT_THROTTLE_TIER_CUSTOM] = {"custom", 0, 0, 0, 0},
    [PT_THROTTLE_TIER_BASIC] = {"basic", 1000, 100, 30 * MB, 10 * MB},
    [PT_THROTTLE_TIER_STANDARD] = {"standard", 3000, 500, 60 * MB, 20 * MB},
    [PT_THROTTLE_TIER_PREMIUM] = {"premium", 10000, 2000, 100 * MB, 50 * MB},
};

void pt_throttle_tier_limits(unsigned tier, struct pt_throttle_rec *out)
{
    if (tier >= PT_THROTTLE_TIER_COUNT)
        tier = PT_THROTTLE_TIER_CUSTOM;
    out->tier = tier;
    out->reads_per_minute = tiers[tier].reads;
    out->writes_per_minute = tiers[tier].writes;
    out->read_bytes_per_second = tiers[tier].read_bps;
    out->write_bytes_per_second = tiers[tier].write_bps;
}

const char *pt_throttle_tier_name(unsigned tier)
{
    return tier < PT_THROTTLE_TIER_COUNT ? tiers[tier].name : "custom";
}

int pt_throttle_tier_parse(const char *name)
{
    for (unsigned i = 0; i < PT_THROTTLE_TIER_COUNT; i++)
        if (strcmp(name, tiers[i].name) == 0)
            return (int)i;
    return -1;
}

/* ---- the table -------------------------------------------------------------------------- */

struct limits {
    uint32_t ops[2];   /* per minute, by enum pt_throttle_kind */
    uint64_t bytes[2]; /* per second */
};

struct slot {
    char key[PT_THROTTLE_KEY_MAX + 1];
    struct pt_bucket ops[2], bytes[2];
    struct limits lim;
    uint64_t gen;   /* settings generation lim was read at */
    int prev, next; /* LRU list (head: most recent), -1 ends */
    int hnext;      /* hash chain, -1 ends */
};

struct shard {
    pthread_mutex_t lock;
    struct slot *slots; /* PT_THROTTLE_SHARD_BUCKETS, allocated at first use */
    int heads[HASH_SLOTS];
    int used, lru_head, lru_tail;
};

struct pt_throttle {
    struct pt_metastore *ms;
    pthread_mutex_t reload; /* serializes reloads of `any` */
    _Atomic uint64_t gen_seen;
    _Atomic int any; /* some throttle record exists (as of gen_seen) */
    _Atomic unsigned buckets;
    struct shard shards[PT_THROTTLE_SHARDS];
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

int pt_throttle_create(struct pt_metastore *ms, struct pt_throttle **out)
{
    struct pt_throttle *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return PT_E_NOMEM;
    t->ms = ms;
    pthread_mutex_init(&t->reload, NULL);
    atomic_store(&t->gen_seen, 0);
    atomic_store(&t->any, 0);
    for (unsigned i = 0; i < PT_THROTTLE_SHARDS; i++) {
        pthread_mutex_init(&t->shards[i].lock, NULL);
        for (unsigned j = 0; j < HASH_SLOTS; j++)
            t->shards[i].heads[j] = -1;
        t->shards[i].lru_head = t->shards[i].lru_tail = -1;
    }
    *out = t;
    return 0;
}

void pt_throttle_free(struct pt_throttle *t)
{
    if (t == NULL)
        return;
    for (unsigned i = 0; i < PT_THROTTLE_SHARDS; i++) {
        pthread_mutex_destroy(&t->shards[i].lock);
        free(t->shards[i].slots);
    }
    pthread_mutex_destroy(&t->reload);
    free(t);
}

unsigned pt_throttle_buckets(struct pt_throttle *t)
{
    return atomic_load(&t->buckets);
}

/* The current settings generation; reloads whether any record exists when it moved. */
static uint64_t settings_gen(struct pt_throttle *t)
{
    uint64_t gen = pt_metastore_auth_generation(t->ms);
    if (atomic_load(&t->gen_seen) == gen)
        return gen;
    pthread_mutex_lock(&t->reload);
    if (atomic_load(&t->gen_seen) != gen) {
        struct pt_throttle_rec *recs = NULL;
        size_t n = 0;
        /* a read error keeps the previous answer; the next request tries again */
        if (pt_metastore_throttle_list(t->ms, &recs, &n) == 0) {
            atomic_store(&t->any, n > 0);
            atomic_store(&t->gen_seen, gen);
        }
        free(recs);
    }
    pthread_mutex_unlock(&t->reload);
    return gen;
}

static void read_limits(struct pt_throttle *t, const char *subject, struct limits *l)
{
    struct pt_throttle_rec r;
    memset(l, 0, sizeof(*l));
    if (pt_metastore_throttle_get(t->ms, subject, &r) != 0 &&
        pt_metastore_throttle_get(t->ms, "default", &r) != 0)
        return;
    l->ops[PT_THROTTLE_READ] = r.reads_per_minute;
    l->ops[PT_THROTTLE_WRITE] = r.writes_per_minute;
    l->bytes[PT_THROTTLE_READ] = r.read_bytes_per_second;
    l->bytes[PT_THROTTLE_WRITE] = r.write_bytes_per_second;
}

static void lru_unlink(struct shard *s, int i)
{
    struct slot *x = &s->slots[i];
    if (x->prev >= 0)
        s->slots[x->prev].next = x->next;
    else
        s->lru_head = x->next;
    if (x->next >= 0)
        s->slots[x->next].prev = x->prev;
    else
        s->lru_tail = x->prev;
}

static void lru_front(struct shard *s, int i)
{
    struct slot *x = &s->slots[i];
    x->prev = -1;
    x->next = s->lru_head;
    if (s->lru_head >= 0)
        s->slots[s->lru_head].prev = i;
    s->lru_head = i;
    if (s->lru_tail < 0)
        s->lru_tail = i;
}

static void hash_unlink(struct shard *s, int i)
{
    int *p = &s->heads[(hash(s->slots[i].key) >> 6) % HASH_SLOTS];
    while (*p >= 0 && *p != i)
        p = &s->slots[*p].hnext;
    if (*p == i)
        *p = s->slots[i].hnext;
}

/* The slot of key in s (locked), made the most recent; a new one (free, else the least
 * recently used) when absent. -1 when the shard's table cannot be allocated. */
static int find(struct pt_throttle *t, struct shard *s, const char *key, uint64_t h)
{
    if (s->slots == NULL &&
        (s->slots = calloc(PT_THROTTLE_SHARD_BUCKETS, sizeof(*s->slots))) == NULL)
        return -1;
    int *head = &s->heads[(h >> 6) % HASH_SLOTS];
    for (int i = *head; i >= 0; i = s->slots[i].hnext) {
        if (strcmp(s->slots[i].key, key) == 0) {
            lru_unlink(s, i);
            lru_front(s, i);
            return i;
        }
    }
    int i;
    if (s->used < PT_THROTTLE_SHARD_BUCKETS) {
        i = s->used++;
        atomic_fetch_add(&t->buckets, 1);
    } else {
        i = s->lru_tail;
        lru_unlink(s, i);
        hash_unlink(s, i);
    }
    struct slot *x = &s->slots[i];
    memset(x, 0, sizeof(*x));
    snprintf(x->key, sizeof(x->key), "%s", key);
    x->hnext = *head;
    *head = i;
    lru_front(s, i);
    return i;
}

/* Runs one admission (charge_only: bytes only, never refused) under the shard's lock. */
static unsigned run(struct pt_throttle *t, const char *key, const char *subject,
                    enum pt_throttle_kind kind, uint64_t bytes, int64_t now_ms, int charge_only)
{
    uint64_t gen = settings_gen(t);
    if (!atomic_load(&t->any))
        return 0;
    if (now_ms <= 0)
        now_ms = 1;
    uint64_t h = hash(key);
    struct shard *s = &t->shards[h % PT_THROTTLE_SHARDS];
    unsigned wait = 0;
    pthread_mutex_lock(&s->lock);
    int i = find(t, s, key, h);
    if (i >= 0) {
        struct slot *x = &s->slots[i];
        if (x->gen != gen) {
            read_limits(t, subject, &x->lim);
            x->gen = gen;
        }
        uint32_t per_min = x->lim.ops[kind];
        uint64_t bps = x->lim.bytes[kind];
        if (!charge_only && per_min > 0)
            wait = pt_bucket_take(&x->ops[kind], per_min / 60.0, per_min, 1, 1, now_ms);
        if (bps > 0 && (wait == 0 || charge_only)) {
            unsigned w = pt_bucket_take(&x->bytes[kind], (double)bps, (double)bps,
                                        charge_only ? -1e300 : 0, (double)bytes, now_ms);
            if (w > 0 && !charge_only) {
                /* give the operation token back: the request does not happen */
                if (per_min > 0)
                    x->ops[kind].tokens += 1;
                wait = w;
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
    return wait;
}

unsigned pt_throttle_admit(struct pt_throttle *t, const char *key, const char *subject,
                           enum pt_throttle_kind kind, uint64_t bytes, int64_t now_ms)
{
    return run(t, key, subject, kind, bytes, now_ms, 0);
}

void pt_throttle_charge(struct pt_throttle *t, const char *key, const char *subject, uint64_t bytes,
                        int64_t now_ms)
{
    run(t, key, subject, PT_THROTTLE_READ, bytes, now_ms, 1);
}
