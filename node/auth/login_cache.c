/*
 * login_cache.c - remembered successful logins (see login_cache.h).
 */
#include "login_cache.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define WAYS 4

struct entry {
    unsigned char mac[PT_LOGIN_MAC_LEN];
    uint64_t gen; /* 0: never used (generations start at 1) */
    int64_t expires_ms;
    struct pt_identity id;
};

struct pt_login_cache {
    EVP_MD_CTX *inner, *outer; /* SHA-256 after the key's ipad / opad block; read only */
    int64_t ttl_ms;
    size_t n_sets;
    pthread_mutex_t mu;  /* guards table */
    struct entry *table; /* n_sets * WAYS */
};

/* Draws the key and precomputes the two HMAC states. */
static int hmac_init(struct pt_login_cache *c)
{
    unsigned char key[64], pad[64];
    int rv = PT_E_INTERNAL;
    c->inner = EVP_MD_CTX_new();
    c->outer = EVP_MD_CTX_new();
    if (c->inner == NULL || c->outer == NULL) {
        rv = PT_E_NOMEM;
        goto out;
    }
    if (RAND_bytes(key, sizeof(key)) != 1)
        goto out;
    for (size_t i = 0; i < 64; i++)
        pad[i] = key[i] ^ 0x36;
    if (EVP_DigestInit_ex(c->inner, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(c->inner, pad, 64) != 1)
        goto out;
    for (size_t i = 0; i < 64; i++)
        pad[i] = key[i] ^ 0x5c;
    if (EVP_DigestInit_ex(c->outer, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(c->outer, pad, 64) != 1)
        goto out;
    rv = 0;
out:
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(pad, sizeof(pad));
    return rv;
}

int pt_login_cache_create(size_t max_entries, int64_t ttl_ms, struct pt_login_cache **out)
{
    struct pt_login_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PT_E_NOMEM;
    c->ttl_ms = ttl_ms;
    c->n_sets = max_entries / WAYS > 0 ? max_entries / WAYS : 1;
    c->table = calloc(c->n_sets * WAYS, sizeof(*c->table));
    int rv = c->table != NULL ? hmac_init(c) : PT_E_NOMEM;
    if (rv != 0) {
        EVP_MD_CTX_free(c->inner);
        EVP_MD_CTX_free(c->outer);
        free(c->table);
        free(c);
        return rv;
    }
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return 0;
}

void pt_login_cache_free(struct pt_login_cache *c)
{
    if (c == NULL)
        return;
    EVP_MD_CTX_free(c->inner);
    EVP_MD_CTX_free(c->outer);
    OPENSSL_cleanse(c->table, c->n_sets * WAYS * sizeof(*c->table));
    free(c->table);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int pt_login_cache_mac(struct pt_login_cache *c, const char *name, size_t name_len,
                       const char *secret, size_t secret_len, unsigned char mac[PT_LOGIN_MAC_LEN])
{
    if (name_len > 255)
        return PT_E_INTERNAL;
    unsigned char inner[PT_LOGIN_MAC_LEN];
    unsigned int n = 0;
    unsigned char nl = (unsigned char)name_len;
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    if (x == NULL)
        return PT_E_NOMEM;
    int rv = PT_E_INTERNAL;
    if (EVP_MD_CTX_copy_ex(x, c->inner) == 1 && EVP_DigestUpdate(x, &nl, 1) == 1 &&
        EVP_DigestUpdate(x, name, name_len) == 1 && EVP_DigestUpdate(x, secret, secret_len) == 1 &&
        EVP_DigestFinal_ex(x, inner, &n) == 1 && n == PT_LOGIN_MAC_LEN &&
        EVP_MD_CTX_copy_ex(x, c->outer) == 1 && EVP_DigestUpdate(x, inner, PT_LOGIN_MAC_LEN) == 1 &&
        EVP_DigestFinal_ex(x, mac, &n) == 1 && n == PT_LOGIN_MAC_LEN)
        rv = 0;
    EVP_MD_CTX_free(x);
    OPENSSL_cleanse(inner, sizeof(inner));
    return rv;
}

static struct entry *set_of(struct pt_login_cache *c, const unsigned char mac[PT_LOGIN_MAC_LEN])
{
    uint64_t h;
    memcpy(&h, mac, sizeof(h));
    return &c->table[(h % c->n_sets) * WAYS];
}

int pt_login_cache_get(struct pt_login_cache *c, const unsigned char mac[PT_LOGIN_MAC_LEN],
                       uint64_t gen, int64_t now_ms, struct pt_identity *out)
{
    struct entry *set = set_of(c, mac);
    int hit = 0;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < WAYS; i++) {
        struct entry *e = &set[i];
        if (e->gen == gen && now_ms < e->expires_ms &&
            CRYPTO_memcmp(e->mac, mac, PT_LOGIN_MAC_LEN) == 0) {
            *out = e->id;
            hit = 1;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void pt_login_cache_put(struct pt_login_cache *c, const unsigned char mac[PT_LOGIN_MAC_LEN],
                        uint64_t gen, int64_t now_ms, const struct pt_identity *id)
{
    struct entry *set = set_of(c, mac);
    pthread_mutex_lock(&c->mu);
    struct entry *victim = &set[0];
    for (int i = 0; i < WAYS; i++) {
        struct entry *e = &set[i];
        /* the same credentials again, or a dead entry: take it */
        if (e->gen != gen || now_ms >= e->expires_ms ||
            memcmp(e->mac, mac, PT_LOGIN_MAC_LEN) == 0) {
            victim = e;
            break;
        }
        if (e->expires_ms < victim->expires_ms)
            victim = e;
    }
    memcpy(victim->mac, mac, PT_LOGIN_MAC_LEN);
    victim->gen = gen;
    victim->expires_ms = now_ms + c->ttl_ms;
    victim->id = *id;
    pthread_mutex_unlock(&c->mu);
}
