/*
 * token_cache.c - verified bearer tokens by SHA-256 of their text (see token_cache.h).
 *
 * Layout: PT_TC_SHARDS shards, each a mutex and an array of buckets of PT_TC_WAYS entries.
 * The first byte of a token's SHA-256 picks the shard, the next eight the bucket, so a lookup
 * hashes once, locks one mutex and compares at most PT_TC_WAYS keys. An entry owns a copy of
 * the claims cut after the last access entry it uses (about 1 KiB for one entry instead of the
 * full 5 KiB struct). Allocation and free happen outside the shard lock.
 */
#include "token_cache.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "err.h"

#define PT_TC_SHARDS 16
#define PT_TC_WAYS   8

struct tc_entry {
    unsigned char key[SHA256_DIGEST_LENGTH];
    uint64_t generation;
    int64_t until_s; /* exp + leeway: served while now_s <= until_s */
    uint64_t seq;    /* insertion order within the shard, for eviction */
    size_t n_access;
    unsigned char *claims; /* NULL: slot empty; else the claims up to access[n_access] */
};

struct tc_shard {
    pthread_mutex_t lock;
    struct tc_entry *entries; /* n_buckets * PT_TC_WAYS */
    size_t n_buckets, count;
    uint64_t seq;
};

struct pt_token_cache {
    struct tc_shard shards[PT_TC_SHARDS];
};

#define CLAIMS_PREFIX offsetof(struct pt_jwt_claims, access)

static size_t claims_bytes(size_t n_access)
{
    return CLAIMS_PREFIX + n_access * sizeof(struct pt_jwt_access);
}

int pt_token_cache_create(size_t max_entries, struct pt_token_cache **out)
{
    struct pt_token_cache *c;
    size_t per_shard, i;

    if (max_entries == 0)
        return PT_E_CONFIG;
    per_shard = max_entries / PT_TC_SHARDS / PT_TC_WAYS;
    if (per_shard == 0)
        per_shard = 1;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PT_E_NOMEM;
    for (i = 0; i < PT_TC_SHARDS; i++) {
        struct tc_shard *s = &c->shards[i];
        s->n_buckets = per_shard;
        s->entries = calloc(per_shard * PT_TC_WAYS, sizeof(*s->entries));
        if (s->entries == NULL || pthread_mutex_init(&s->lock, NULL) != 0) {
            free(s->entries);
            while (i-- > 0) {
                pthread_mutex_destroy(&c->shards[i].lock);
                free(c->shards[i].entries);
            }
            free(c);
            return PT_E_NOMEM;
        }
    }
    *out = c;
    return 0;
}

static void shard_drop_all(struct tc_shard *s)
{
    size_t i;

    for (i = 0; i < s->n_buckets * PT_TC_WAYS; i++) {
        free(s->entries[i].claims);
        s->entries[i].claims = NULL;
    }
    s->count = 0;
}

void pt_token_cache_free(struct pt_token_cache *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < PT_TC_SHARDS; i++) {
        shard_drop_all(&c->shards[i]);
        pthread_mutex_destroy(&c->shards[i].lock);
        free(c->shards[i].entries);
    }
    free(c);
}

/* Hashes the token and finds its shard and bucket. */
static struct tc_entry *locate(struct pt_token_cache *c, const char *tok, size_t len,
                               unsigned char key[SHA256_DIGEST_LENGTH], struct tc_shard **shard)
{
    uint64_t b = 0;
    int i;

    SHA256((const unsigned char *)tok, len, key);
    *shard = &c->shards[key[0] % PT_TC_SHARDS];
    for (i = 1; i <= 8; i++)
        b = b << 8 | key[i];
    return &(*shard)->entries[(b % (*shard)->n_buckets) * PT_TC_WAYS];
}

int pt_token_cache_get(struct pt_token_cache *c, const char *tok, size_t len, int64_t now_s,
                       uint64_t generation, struct pt_jwt_claims *out)
{
    unsigned char key[SHA256_DIGEST_LENGTH];
    struct tc_shard *s;
    struct tc_entry *bucket = locate(c, tok, len, key, &s);
    unsigned char *stale = NULL;
    int hit = 0, w;

    pthread_mutex_lock(&s->lock);
    for (w = 0; w < PT_TC_WAYS; w++) {
        struct tc_entry *e = &bucket[w];
        if (e->claims == NULL || memcmp(e->key, key, sizeof(key)) != 0)
            continue;
        if (e->generation != generation || now_s > e->until_s) {
            stale = e->claims;
            e->claims = NULL;
            s->count--;
        } else {
            memcpy(out, e->claims, claims_bytes(e->n_access));
            out->n_access = e->n_access;
            hit = 1;
        }
        break;
    }
    pthread_mutex_unlock(&s->lock);
    free(stale);
    return hit;
}

void pt_token_cache_put(struct pt_token_cache *c, const char *tok, size_t len, uint64_t generation,
                        const struct pt_jwt_claims *claims)
{
    unsigned char key[SHA256_DIGEST_LENGTH];
    struct tc_shard *s;
    struct tc_entry *bucket = locate(c, tok, len, key, &s), *slot = NULL;
    size_t n = claims->n_access > PT_JWT_ACCESS_MAX ? PT_JWT_ACCESS_MAX : claims->n_access;
    unsigned char *copy = malloc(claims_bytes(n)), *old = NULL;
    int w;

    if (copy == NULL)
        return;
    memcpy(copy, claims, claims_bytes(n));
    pthread_mutex_lock(&s->lock);
    for (w = 0; w < PT_TC_WAYS; w++) {
        struct tc_entry *e = &bucket[w];
        if (e->claims != NULL && memcmp(e->key, key, sizeof(key)) == 0) {
            slot = e; /* the same token again: replace */
            break;
        }
        if (e->claims == NULL) {
            if (slot == NULL || slot->claims != NULL)
                slot = e;
        } else if (slot == NULL || (slot->claims != NULL && e->seq < slot->seq)) {
            slot = e;
        }
    }
    old = slot->claims;
    if (old == NULL)
        s->count++;
    memcpy(slot->key, key, sizeof(key));
    slot->generation = generation;
    slot->until_s =
        claims->exp > INT64_MAX - PT_JWT_LEEWAY_S ? INT64_MAX : claims->exp + PT_JWT_LEEWAY_S;
    slot->seq = ++s->seq;
    slot->n_access = n;
    slot->claims = copy;
    pthread_mutex_unlock(&s->lock);
    free(old);
}

void pt_token_cache_clear(struct pt_token_cache *c)
{
    size_t i;

    for (i = 0; i < PT_TC_SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].lock);
        shard_drop_all(&c->shards[i]);
        pthread_mutex_unlock(&c->shards[i].lock);
    }
}

size_t pt_token_cache_size(struct pt_token_cache *c)
{
    size_t i, n = 0;

    for (i = 0; i < PT_TC_SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].lock);
        n += c->shards[i].count;
        pthread_mutex_unlock(&c->shards[i].lock);
    }
    return n;
}
