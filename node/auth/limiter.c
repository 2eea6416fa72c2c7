/*
 * limiter.c - failed-login back-off in a fixed table (see limiter.h).
 *
 * Layout: PT_LIM_BUCKETS buckets of PT_LIM_WAYS entries, each entry the 64-bit SipHash-2-4
 * of a key under a per-process random key, its failures in the current window, its back-off
 * and until when it is refused. PT_LIM_STRIPES mutexes guard the buckets (bucket i under
 * stripe i % PT_LIM_STRIPES). The table is allocated once; nothing a client sends changes
 * its size. A hash collision (2^-64 per pair) only makes two keys share a back-off.
 */
#include "limiter.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "err.h"

#define PT_LIM_BUCKETS 4096
#define PT_LIM_WAYS    8
#define PT_LIM_STRIPES 64

struct lim_entry {
    uint64_t hash;         /* 0: empty slot */
    int64_t window_start;  /* ms: start of the window the failures count in */
    int64_t last_ms;       /* ms: last failure */
    int64_t blocked_until; /* ms: refused while now < blocked_until */
    uint32_t backoff_ms;   /* last back-off given; 0 none yet */
    unsigned failures;     /* in the current window */
};

struct pt_limiter {
    unsigned burst;
    uint64_t window_ms;
    uint64_t k0, k1; /* SipHash key */
    pthread_mutex_t stripes[PT_LIM_STRIPES];
    struct lim_entry entries[PT_LIM_BUCKETS * PT_LIM_WAYS];
};

/* SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012). */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static uint64_t siphash(uint64_t k0, uint64_t k1, const unsigned char *in, size_t len)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    uint64_t b = (uint64_t)len << 56, m;
    size_t i, end = len - len % 8;
    int r;

    for (i = 0; i < end; i += 8) {
        memcpy(&m, in + i, 8); /* little-endian hosts; the value only needs to be stable */
        v3 ^= m;
        for (r = 0; r < 2; r++)
            SIPROUND;
        v0 ^= m;
    }
    for (i = 0; i < len % 8; i++)
        b |= (uint64_t)in[end + i] << (8 * i);
    v3 ^= b;
    for (r = 0; r < 2; r++)
        SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    for (r = 0; r < 4; r++)
        SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

int pt_limiter_create(unsigned burst, uint64_t window_ms, struct pt_limiter **out)
{
    struct pt_limiter *l;
    unsigned char seed[16];
    int i;

    if (burst == 0 || window_ms == 0)
        return PT_E_CONFIG;
    if (RAND_bytes(seed, sizeof(seed)) != 1)
        return PT_E_INTERNAL;
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return PT_E_NOMEM;
    l->burst = burst;
    l->window_ms = window_ms;
    memcpy(&l->k0, seed, 8);
    memcpy(&l->k1, seed + 8, 8);
    for (i = 0; i < PT_LIM_STRIPES; i++) {
        if (pthread_mutex_init(&l->stripes[i], NULL) != 0) {
            while (i-- > 0)
                pthread_mutex_destroy(&l->stripes[i]);
            free(l);
            return PT_E_NOMEM;
        }
    }
    *out = l;
    return 0;
}

void pt_limiter_free(struct pt_limiter *l)
{
    int i;

    if (l == NULL)
        return;
    for (i = 0; i < PT_LIM_STRIPES; i++)
        pthread_mutex_destroy(&l->stripes[i]);
    free(l);
}

/* Hash of key (never 0) and its bucket; locks the bucket's stripe. */
static struct lim_entry *lock_bucket(struct pt_limiter *l, const char *key, uint64_t *hash,
                                     pthread_mutex_t **lock)
{
    uint64_t h = siphash(l->k0, l->k1, (const unsigned char *)key, strlen(key));
    size_t b;

    if (h == 0)
        h = 1;
    b = (size_t)(h >> 32) % PT_LIM_BUCKETS;
    *hash = h;
    *lock = &l->stripes[b % PT_LIM_STRIPES];
    pthread_mutex_lock(*lock);
    return &l->entries[b * PT_LIM_WAYS];
}

static struct lim_entry *find(struct lim_entry *bucket, uint64_t hash)
{
    int w;

    for (w = 0; w < PT_LIM_WAYS; w++)
        if (bucket[w].hash == hash)
            return &bucket[w];
    return NULL;
}

unsigned pt_limiter_check(struct pt_limiter *l, const char *key, int64_t now_ms)
{
    pthread_mutex_t *lock;
    uint64_t hash;
    struct lim_entry *bucket = lock_bucket(l, key, &hash, &lock);
    struct lim_entry *e = find(bucket, hash);
    unsigned wait = 0;

    if (e != NULL && now_ms < e->blocked_until) {
        int64_t ms = e->blocked_until - now_ms;
        wait = (unsigned)((ms + 999) / 1000);
    }
    pthread_mutex_unlock(lock);
    return wait;
}

void pt_limiter_fail(struct pt_limiter *l, const char *key, int64_t now_ms)
{
    pthread_mutex_t *lock;
    uint64_t hash;
    struct lim_entry *bucket = lock_bucket(l, key, &hash, &lock);
    struct lim_entry *e = find(bucket, hash);
    int w;

    if (e == NULL) {
        /* an empty slot, else the least recently seen entry not refused now, else the least
         * recently seen of all */
        for (w = 0; w < PT_LIM_WAYS; w++) {
            struct lim_entry *c = &bucket[w];
            int c_blocked = now_ms < c->blocked_until, e_blocked;
            if (c->hash == 0) {
                e = c;
                break;
            }
            if (e == NULL) {
                e = c;
                continue;
            }
            e_blocked = now_ms < e->blocked_until;
            if ((e_blocked && !c_blocked) || (e_blocked == c_blocked && c->last_ms < e->last_ms))
                e = c;
        }
        memset(e, 0, sizeof(*e));
        e->hash = hash;
        e->window_start = now_ms;
    }
    /* Quiet for the window plus the last back-off: start again from the smallest back-off. */
    if (e->backoff_ms != 0 && now_ms - e->last_ms > (int64_t)(l->window_ms + e->backoff_ms))
        e->backoff_ms = 0;
    if (now_ms - e->window_start > (int64_t)l->window_ms) {
        e->window_start = now_ms;
        e->failures = 0;
    }
    e->last_ms = now_ms;
    if (++e->failures >= l->burst) {
        if (e->backoff_ms == 0)
            e->backoff_ms = PT_LIMITER_BACKOFF_MIN_MS;
        else if (e->backoff_ms < PT_LIMITER_BACKOFF_MAX_MS / 2)
            e->backoff_ms *= 2;
        else
            e->backoff_ms = PT_LIMITER_BACKOFF_MAX_MS;
        e->blocked_until = now_ms + e->backoff_ms;
        e->failures = 0;
        e->window_start = now_ms;
    }
    pthread_mutex_unlock(lock);
}

void pt_limiter_success(struct pt_limiter *l, const char *key)
{
    pthread_mutex_t *lock;
    uint64_t hash;
    struct lim_entry *bucket = lock_bucket(l, key, &hash, &lock);
    struct lim_entry *e = find(bucket, hash);

    if (e != NULL)
        memset(e, 0, sizeof(*e));
    pthread_mutex_unlock(lock);
}
