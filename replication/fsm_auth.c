/*
 * fsm_auth.c - applies the access control operations of a command (proto/command.proto:
 * PutUser .. RevokeJwt) to the metastore's auth records.
 *
 * Every field is validated here before anything is staged (names, patterns, action bits,
 * hash formats, sizes, the signing key's algorithm), with the grammar of oci/access.h that
 * the store checks again, so a malformed command fails the same way in every region with
 * PT_E_CONFIG. Time comes from the command only (created times, the expiry of revoked ids),
 * so apply stays deterministic; every operation is idempotent: putting the same record
 * again, deleting an absent one, revoking an id twice leave the same state.
 *
 * Rules beyond the format:
 *   - a grant holding ADMIN must be on the pattern "**" (admin is registry-wide);
 *   - PutUser/PutToken keep the created time of the record they replace;
 *   - PutUser with only_if_no_users is a no-op (status 0) once any user exists;
 *   - PutSigningKey of a kid already stored with another key is PT_E_CONFLICT; the same key
 *     again changes nothing (a retired key stays retired);
 *   - RetireSigningKey of an unknown kid is PT_E_NOT_FOUND;
 *   - RevokeJwt forgets every revoked id whose expiry is at or before the command's time;
 *   - a new record past its kind's bound (PT_METASTORE_AUTH_*_MAX) is PT_E_TOO_LARGE;
 *     replacing an existing one always works.
 */
#include "fsm_auth.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "err.h"

#define DER_P256_MIN 64 /* an uncompressed P-256 SPKI is 91 bytes; anything much shorter is not */

int pt_fsm_auth_op(const Portolan__Op *op)
{
    return op->op_case >= PORTOLAN__OP__OP_PUT_USER && op->op_case <= PORTOLAN__OP__OP_REVOKE_JWT;
}

/* Copies a NUL-terminated s into dst (cap bytes) if it fits; false if not. */
static bool fits(char *dst, size_t cap, const char *s)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        return false;
    memcpy(dst, s, n + 1);
    return true;
}

static bool grants_copy(struct pt_auth_grant_rec *dst, size_t *n, Portolan__Grant *const *src,
                        size_t n_src)
{
    if (n_src > PT_METASTORE_AUTH_GRANTS_MAX)
        return false;
    for (size_t i = 0; i < n_src; i++) {
        const Portolan__Grant *g = src[i];
        if (!fits(dst[i].pattern, sizeof(dst[i].pattern), g->pattern) ||
            !pt_access_pattern_valid(dst[i].pattern, strlen(dst[i].pattern)) ||
            !pt_access_actions_valid(g->actions))
            return false;
        if ((g->actions & PT_ACCESS_ADMIN) != 0 && strcmp(g->pattern, "**") != 0)
            return false; /* admin is registry-wide */
        dst[i].actions = g->actions;
    }
    *n = n_src;
    return true;
}

static bool name_ok(const char *s)
{
    return pt_access_name_valid(s, strnlen(s, PT_ACCESS_NAME_MAX + 1));
}

static bool id_ok(const char *s)
{
    return pt_access_id_valid(s, strnlen(s, PT_ACCESS_NAME_MAX + 1));
}

/* PT_E_TOO_LARGE if kind already holds max records (a new one would pass the bound), else 0
 * or an I/O error. */
static int room_for(struct pt_metastore_batch *b, enum pt_auth_rec_kind kind, size_t max)
{
    long n = pt_metastore_batch_auth_count(b, kind, max);
    if (n < 0)
        return (int)n;
    return (size_t)n >= max ? PT_E_TOO_LARGE : 0;
}

/* room_for, unless the record name of kind exists already (putting it again is a
 * replacement). */
static int new_room(struct pt_metastore_batch *b, enum pt_auth_rec_kind kind, const char *name,
                    size_t max)
{
    int rv = pt_metastore_batch_auth_exists(b, kind, name);
    if (rv != 0)
        return rv > 0 ? 0 : rv;
    return room_for(b, kind, max);
}

static int put_user(struct pt_metastore_batch *b, const Portolan__Command *c,
                    const Portolan__PutUser *u)
{
    struct pt_auth_user_rec *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return PT_E_NOMEM;
    int rv = PT_E_CONFIG;
    if (!name_ok(u->name) || !fits(r->name, sizeof(r->name), u->name) ||
        !fits(r->password_hash, sizeof(r->password_hash), u->password_hash) ||
        !pt_access_password_hash_valid(r->password_hash) ||
        !grants_copy(r->grants, &r->n_grants, u->grants, u->n_grants))
        goto out;
    r->disabled = u->disabled ? 1 : 0;
    if (u->only_if_no_users) {
        rv = pt_metastore_batch_auth_has_users(b);
        if (rv != 0) {
            rv = rv > 0 ? 0 : rv; /* a user exists: nothing to do */
            goto out;
        }
    }
    struct pt_auth_user_rec *old = malloc(sizeof(*old));
    if (old == NULL) {
        rv = PT_E_NOMEM;
        goto out;
    }
    rv = pt_metastore_batch_auth_user_get(b, r->name, old);
    r->created_ms = rv == 0 ? old->created_ms : c->time_ms;
    free(old);
    if (rv == PT_E_NOT_FOUND)
        rv = room_for(b, PT_AUTH_REC_USER, PT_METASTORE_AUTH_USERS_MAX);
    if (rv == 0)
        rv = pt_metastore_batch_auth_user_put(b, r);
out:
    free(r);
    return rv;
}

static int put_token(struct pt_metastore_batch *b, const Portolan__Command *c,
                     const Portolan__PutToken *t)
{
    struct pt_auth_token_rec *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return PT_E_NOMEM;
    int rv = PT_E_CONFIG;
    if (!name_ok(t->id) || !fits(r->id, sizeof(r->id), t->id) ||
        !fits(r->secret_hash, sizeof(r->secret_hash), t->secret_hash) ||
        !pt_access_secret_hash_valid(r->secret_hash) ||
        !grants_copy(r->grants, &r->n_grants, t->grants, t->n_grants) || t->expires_ms < 0 ||
        !fits(r->description, sizeof(r->description), t->description) ||
        (t->owner[0] != '\0' && !name_ok(t->owner)) || !fits(r->owner, sizeof(r->owner), t->owner))
        goto out;
    r->disabled = t->disabled ? 1 : 0;
    r->expires_ms = t->expires_ms;
    struct pt_auth_token_rec *old = malloc(sizeof(*old));
    if (old == NULL) {
        rv = PT_E_NOMEM;
        goto out;
    }
    rv = pt_metastore_batch_auth_token_get(b, r->id, old);
    r->created_ms = rv == 0 ? old->created_ms : c->time_ms;
    free(old);
    if (rv == PT_E_NOT_FOUND)
        rv = room_for(b, PT_AUTH_REC_TOKEN, PT_METASTORE_AUTH_TOKENS_MAX);
    if (rv == 0)
        rv = pt_metastore_batch_auth_token_put(b, r);
out:
    free(r);
    return rv;
}

/* 1 if der[0..len) is a DER SubjectPublicKeyInfo of an EC P-256 key, else 0. */
static bool p256_spki(const unsigned char *der, size_t len)
{
    if (len < DER_P256_MIN || len > PT_METASTORE_AUTH_DER_MAX)
        return false;
    const unsigned char *p = der;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)len);
    if (pk == NULL)
        return false;
    char group[64];
    size_t glen = 0;
    bool ok = p == der + len && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
              EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) == 1 &&
              (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0);
    EVP_PKEY_free(pk);
    return ok;
}

static int put_signing_key(struct pt_metastore_batch *b, const Portolan__Command *c,
                           const Portolan__PutSigningKey *k)
{
    const char *region = k->region[0] != '\0' ? k->region : c->region;
    struct pt_auth_key_rec *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return PT_E_NOMEM;
    int rv = PT_E_CONFIG;
    if (!id_ok(k->kid) || !fits(r->kid, sizeof(r->kid), k->kid) ||
        !fits(r->region, sizeof(r->region), region) || r->region[0] == '\0' ||
        !p256_spki(k->public_key.data, k->public_key.len))
        goto out;
    rv = pt_metastore_batch_auth_key_get(b, r->kid, r);
    if (rv == 0) {
        /* the same key again changes nothing; another key under its id is a conflict */
        rv = r->der_len == k->public_key.len && memcmp(r->der, k->public_key.data, r->der_len) == 0
                 ? 0
                 : PT_E_CONFLICT;
        goto out;
    }
    if (rv != PT_E_NOT_FOUND)
        goto out;
    rv = room_for(b, PT_AUTH_REC_KEY, PT_METASTORE_AUTH_KEYS_MAX);
    if (rv != 0)
        goto out;
    memset(r, 0, sizeof(*r));
    strcpy(r->kid, k->kid);    /* fits: checked above */
    strcpy(r->region, region); /* fits: checked above */
    r->created_ms = c->time_ms;
    r->not_after_ms = 0;
    r->der_len = k->public_key.len;
    memcpy(r->der, k->public_key.data, r->der_len);
    rv = pt_metastore_batch_auth_key_put(b, r);
out:
    free(r);
    return rv;
}

static int retire_signing_key(struct pt_metastore_batch *b, const Portolan__RetireSigningKey *k)
{
    if (!id_ok(k->kid) || k->not_after_ms <= 0)
        return PT_E_CONFIG;
    struct pt_auth_key_rec *r = malloc(sizeof(*r));
    if (r == NULL)
        return PT_E_NOMEM;
    int rv = pt_metastore_batch_auth_key_get(b, k->kid, r);
    if (rv == 0) {
        r->not_after_ms = k->not_after_ms;
        rv = pt_metastore_batch_auth_key_put(b, r);
    }
    free(r);
    return rv;
}

static int revoke_jwt(struct pt_metastore_batch *b, const Portolan__Command *c,
                      const Portolan__RevokeJwt *j)
{
    if (!id_ok(j->jti) || j->expires_ms <= 0)
        return PT_E_CONFIG;
    int rv = pt_metastore_batch_auth_revoked_purge(b, c->time_ms);
    if (rv != 0 || j->expires_ms <= c->time_ms)
        return rv; /* already expired: nothing to remember */
    rv = new_room(b, PT_AUTH_REC_REVOKED, j->jti, PT_METASTORE_AUTH_REVOKED_MAX);
    if (rv != 0)
        return rv;
    struct pt_auth_revoked_rec r = {.expires_ms = j->expires_ms};
    strcpy(r.jti, j->jti); /* fits: id_ok */
    return pt_metastore_batch_auth_revoked_put(b, &r);
}

static int anonymous(struct pt_metastore_batch *b, const char *pattern, bool put)
{
    if (!pt_access_pattern_valid(pattern, strnlen(pattern, PT_ACCESS_PATTERN_MAX + 1)))
        return PT_E_CONFIG;
    if (!put)
        return pt_metastore_batch_auth_anonymous_delete(b, pattern);
    int rv = new_room(b, PT_AUTH_REC_ANONYMOUS, pattern, PT_METASTORE_AUTH_ANON_MAX);
    return rv != 0 ? rv : pt_metastore_batch_auth_anonymous_put(b, pattern);
}

int pt_fsm_apply_auth(struct pt_metastore_batch *b, const Portolan__Command *c,
                      const Portolan__Op *op)
{
    switch (op->op_case) {
    case PORTOLAN__OP__OP_PUT_USER:
        return put_user(b, c, op->put_user);
    case PORTOLAN__OP__OP_DELETE_USER:
        if (!name_ok(op->delete_user->name))
            return PT_E_CONFIG;
        return pt_metastore_batch_auth_user_delete(b, op->delete_user->name);
    case PORTOLAN__OP__OP_PUT_TOKEN:
        return put_token(b, c, op->put_token);
    case PORTOLAN__OP__OP_DELETE_TOKEN:
        if (!name_ok(op->delete_token->id))
            return PT_E_CONFIG;
        return pt_metastore_batch_auth_token_delete(b, op->delete_token->id);
    case PORTOLAN__OP__OP_PUT_ANONYMOUS_RULE:
        return anonymous(b, op->put_anonymous_rule->pattern, true);
    case PORTOLAN__OP__OP_DELETE_ANONYMOUS_RULE:
        return anonymous(b, op->delete_anonymous_rule->pattern, false);
    case PORTOLAN__OP__OP_PUT_SIGNING_KEY:
        return put_signing_key(b, c, op->put_signing_key);
    case PORTOLAN__OP__OP_RETIRE_SIGNING_KEY:
        return retire_signing_key(b, op->retire_signing_key);
    case PORTOLAN__OP__OP_REVOKE_JWT:
        return revoke_jwt(b, c, op->revoke_jwt);
    default:
        return PT_E_CORRUPT; /* not an access control operation: a caller's bug */
    }
}
