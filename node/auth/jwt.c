/*
 * jwt.c - ES256 JWTs: key files, signing, verification (see jwt.h).
 *
 * Verification order, cheapest refusal first: length and shape of the compact form, the
 * header (decoded into a small stack buffer, JSON with duplicate keys refused, only the
 * members alg, typ and kid allowed, alg exactly "ES256"), the key from the lookup, the
 * signature, and only then the claims. So unauthenticated bytes reach jansson only as a
 * header of at most PT_JWT_HEADER_MAX bytes, and the claims parser only ever sees payloads
 * that a region's key signed.
 */
#include "jwt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "credentials.h"
#include "err.h"
#include "fileio.h"
#include "reference.h"

#define PT_JWT_HEADER_MAX  512 /* decoded header bytes accepted */
#define PT_JWT_SIG_LEN     64  /* raw r||s */
#define PT_JWT_AUD_MAX     8   /* entries of an "aud" array looked at */
#define PT_JWT_ACTIONS_MAX 8   /* entries of one access entry's "actions" */
#define PT_JWT_DER_SIG_MAX 80  /* DER ECDSA-Sig-Value of P-256: at most 72 bytes */

struct pt_jwt_key {
    EVP_PKEY *pkey;
    unsigned char spki[PT_JWT_SPKI_MAX];
    size_t spki_len;
    char kid[PT_JWT_KID_LEN + 1];
};

/* ---- keys ---------------------------------------------------------------------------------- */

/* 1 when pkey is an EC key on P-256. */
static int is_p256(EVP_PKEY *pkey)
{
    char group[64];
    size_t glen = 0;

    if (!EVP_PKEY_is_a(pkey, "EC"))
        return 0;
    if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        &glen))
        return 0;
    return strcmp(group, "prime256v1") == 0;
}

void pt_jwt_kid_of_der(const unsigned char *der, size_t len, char out[PT_JWT_KID_LEN + 1])
{
    unsigned char md[SHA256_DIGEST_LENGTH];

    SHA256(der, len, md);
    pt_base64url_encode(md, 16, out, PT_JWT_KID_LEN + 1);
}

/* Takes ownership of pkey on success (and frees it on failure). */
static int key_wrap(EVP_PKEY *pkey, struct pt_jwt_key **out)
{
    struct pt_jwt_key *k;
    unsigned char *p;
    int n;

    if (!is_p256(pkey)) {
        EVP_PKEY_free(pkey);
        return PT_E_CONFIG;
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        return PT_E_NOMEM;
    }
    k->pkey = pkey;
    n = i2d_PUBKEY(pkey, NULL);
    if (n <= 0 || (size_t)n > sizeof(k->spki)) {
        pt_jwt_key_free(k);
        return PT_E_INTERNAL;
    }
    p = k->spki;
    i2d_PUBKEY(pkey, &p);
    k->spki_len = (size_t)n;
    pt_jwt_kid_of_der(k->spki, k->spki_len, k->kid);
    *out = k;
    return 0;
}

int pt_jwt_key_generate(struct pt_jwt_key **out)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");

    if (pkey == NULL)
        return PT_E_INTERNAL;
    return key_wrap(pkey, out);
}

/* Never ask for a passphrase (an encrypted key file is refused, not prompted for). */
static int no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int pt_jwt_key_from_pem(const char *pem, size_t len, struct pt_jwt_key **out)
{
    EVP_PKEY *pkey;
    BIO *bio;

    if (len > PT_JWT_KEYFILE_MAX)
        return PT_E_CONFIG;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return PT_E_NOMEM;
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase_cb, NULL);
    BIO_free(bio);
    if (pkey == NULL)
        return PT_E_CONFIG;
    return key_wrap(pkey, out);
}

void pt_jwt_key_free(struct pt_jwt_key *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

const char *pt_jwt_key_kid(const struct pt_jwt_key *k)
{
    return k->kid;
}

int pt_jwt_key_public_der(const struct pt_jwt_key *k, unsigned char *der, size_t *len)
{
    if (*len < k->spki_len)
        return PT_E_TOO_LARGE;
    memcpy(der, k->spki, k->spki_len);
    *len = k->spki_len;
    return 0;
}

int pt_jwt_key_save(const struct pt_jwt_key *k, const char *path)
{
    char tmp[PATH_MAX];
    BIO *bio;
    char *data = NULL;
    long n = 0;
    int fd, rc = PT_E_IO;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= sizeof(tmp))
        return PT_E_IO;
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return PT_E_NOMEM;
    if (!PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL)) {
        rc = PT_E_INTERNAL;
        goto err_after_bio;
    }
    n = BIO_get_mem_data(bio, &data);
    fd = mkstemp(tmp); /* mode 0600, whatever the umask */
    if (fd < 0)
        goto err_after_bio;
    if (fchmod(fd, 0600) != 0 || pt_write_all(fd, data, (size_t)n) != 0 || fsync(fd) != 0) {
        close(fd);
        goto err_after_tmp;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0)
        goto err_after_tmp;
    rc = pt_fsync_parent(path) == 0 ? 0 : PT_E_IO;
    OPENSSL_cleanse(data, (size_t)n);
    BIO_free(bio);
    return rc;

err_after_tmp:
    unlink(tmp);
err_after_bio:
    if (data != NULL)
        OPENSSL_cleanse(data, (size_t)n);
    BIO_free(bio);
    return rc;
}

int pt_jwt_key_load_or_create(const char *path, struct pt_jwt_key **out)
{
    char *buf;
    struct stat st;
    size_t len = 0;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        struct pt_jwt_key *k;
        if ((rc = pt_jwt_key_generate(&k)) != 0)
            return rc;
        if ((rc = pt_jwt_key_save(k, path)) != 0) {
            pt_jwt_key_free(k);
            return rc;
        }
        *out = k;
        return 0;
    }
    if (fd < 0)
        return errno == EACCES ? PT_E_CONFIG : PT_E_IO;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return PT_E_IO;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 || st.st_size > PT_JWT_KEYFILE_MAX) {
        close(fd);
        return PT_E_CONFIG;
    }
    buf = malloc(PT_JWT_KEYFILE_MAX + 1);
    if (buf == NULL) {
        close(fd);
        return PT_E_NOMEM;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, PT_JWT_KEYFILE_MAX + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = PT_E_IO;
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > PT_JWT_KEYFILE_MAX) {
            rc = PT_E_CONFIG;
            goto out;
        }
    }
    rc = pt_jwt_key_from_pem(buf, len, out);
out:
    OPENSSL_cleanse(buf, PT_JWT_KEYFILE_MAX + 1);
    free(buf);
    close(fd);
    return rc;
}

/* ---- claims to JSON and back --------------------------------------------------------------- */

static const struct {
    unsigned bit;
    const char *name;
} action_names[] = {
    {PT_ACTION_PULL, "pull"},
    {PT_ACTION_PUSH, "push"},
    {PT_ACTION_DELETE, "delete"},
    {PT_ACTION_ADMIN, "admin"},
};
#define N_ACTION_NAMES (sizeof(action_names) / sizeof(action_names[0]))

/* [a-z0-9][a-z0-9._-]{0,63}, the grammar of user names and token ids (pattern.h). */
static int ident_valid(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > PT_AUTH_NAME_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return 0;
    }
    return 1;
}

static const char *sub_prefix(int kind)
{
    switch (kind) {
    case PT_JWT_SUB_USER:
        return "user:";
    case PT_JWT_SUB_TOKEN:
        return "token:";
    default:
        return NULL;
    }
}

/* 1 when the fixed-size field holds a NUL-terminated string. */
#define FIELD_OK(f) (memchr((f), '\0', sizeof(f)) != NULL)

static int set_new(json_t *obj, const char *key, json_t *v)
{
    return v == NULL || json_object_set_new(obj, key, v) != 0 ? -1 : 0;
}

/* The payload object of c, or NULL (invalid claims or no memory). */
static json_t *claims_to_json(const struct pt_jwt_claims *c, const char *jti)
{
    json_t *o = json_object(), *access = NULL;
    char sub[PT_AUTH_NAME_MAX + 8];
    size_t i, j;

    if (o == NULL)
        return NULL;
    if (!FIELD_OK(c->iss) || !FIELD_OK(c->sub) || !FIELD_OK(c->aud) || !FIELD_OK(c->jti) ||
        c->n_access > PT_JWT_ACCESS_MAX || (c->refresh && c->n_access > 0))
        goto err;
    if (c->sub_kind == PT_JWT_SUB_ANONYMOUS) {
        if (c->sub[0] != '\0')
            goto err;
        sub[0] = '\0';
    } else {
        const char *prefix = sub_prefix(c->sub_kind);
        if (prefix == NULL || !ident_valid(c->sub, strlen(c->sub)))
            goto err;
        snprintf(sub, sizeof(sub), "%s%s", prefix, c->sub);
    }
    if (set_new(o, "iss", json_string(c->iss)) || set_new(o, "sub", json_string(sub)) ||
        set_new(o, "aud", json_string(c->aud)) || set_new(o, "exp", json_integer(c->exp)) ||
        (c->nbf != 0 && set_new(o, "nbf", json_integer(c->nbf))) ||
        set_new(o, "iat", json_integer(c->iat)) || set_new(o, "jti", json_string(jti)))
        goto err;
    if (c->refresh) {
        if (set_new(o, "typ", json_string("refresh")))
            goto err;
        return o;
    }
    access = json_array();
    if (set_new(o, "access", access)) /* o owns it from here, even on error */
        goto err;
    for (i = 0; i < c->n_access; i++) {
        const struct pt_jwt_access *a = &c->access[i];
        json_t *e = json_object(), *acts = json_array();
        if (e == NULL || acts == NULL) {
            json_decref(e);
            json_decref(acts);
            goto err;
        }
        /* the _new setters take the reference even when they fail */
        if (json_array_append_new(access, e) != 0) {
            json_decref(acts);
            goto err;
        }
        if (!FIELD_OK(a->name) || a->name[0] == '\0' || (a->actions & ~(unsigned)PT_ACTIONS_ALL) ||
            set_new(e, "type", json_string(a->registry ? "registry" : "repository")) ||
            set_new(e, "name", json_string(a->name))) {
            json_decref(acts);
            goto err;
        }
        if (set_new(e, "actions", acts))
            goto err;
        for (j = 0; j < N_ACTION_NAMES; j++)
            if ((a->actions & action_names[j].bit) &&
                json_array_append_new(acts, json_string(action_names[j].name)) != 0)
                goto err;
    }
    return o;
err:
    json_decref(o);
    return NULL;
}

/* Copies a JSON string member into dst (size bytes); -1 when absent, not a string, or too
 * long. required = 0 leaves dst empty when the member is absent. */
static int get_string(json_t *o, const char *key, char *dst, size_t size, int required)
{
    json_t *v = json_object_get(o, key);
    size_t n;

    dst[0] = '\0';
    if (v == NULL)
        return required ? -1 : 0;
    if (!json_is_string(v))
        return -1;
    n = json_string_length(v);
    if (n >= size)
        return -1;
    memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
    return 0;
}

static int get_int(json_t *o, const char *key, int64_t *dst, int required)
{
    json_t *v = json_object_get(o, key);

    *dst = 0;
    if (v == NULL)
        return required ? -1 : 0;
    if (!json_is_integer(v))
        return -1;
    *dst = (int64_t)json_integer_value(v);
    return 0;
}

static int parse_access(json_t *arr, struct pt_jwt_claims *out)
{
    size_t i, j;

    if (!json_is_array(arr) || json_array_size(arr) > PT_JWT_ACCESS_MAX)
        return -1;
    for (i = 0; i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i), *acts;
        struct pt_jwt_access *a = &out->access[i];
        char type[16];

        if (!json_is_object(e) || get_string(e, "type", type, sizeof(type), 1) != 0 ||
            get_string(e, "name", a->name, sizeof(a->name), 1) != 0)
            return -1;
        if (strcmp(type, "repository") == 0) {
            if (pt_name_validate(a->name, strlen(a->name)) != 0)
                return -1;
        } else if (strcmp(type, "registry") == 0 && strcmp(a->name, "catalog") == 0) {
            a->registry = 1;
        } else {
            return -1;
        }
        acts = json_object_get(e, "actions");
        if (!json_is_array(acts) || json_array_size(acts) > PT_JWT_ACTIONS_MAX)
            return -1;
        for (j = 0; j < json_array_size(acts); j++) {
            const char *s = json_string_value(json_array_get(acts, j));
            size_t k;
            if (s == NULL)
                return -1;
            if (strcmp(s, "*") == 0) {
                a->actions |= PT_ACTIONS_DOCKER_ALL;
                continue;
            }
            for (k = 0; k < N_ACTION_NAMES; k++)
                if (strcmp(s, action_names[k].name) == 0)
                    break;
            if (k == N_ACTION_NAMES)
                return -1;
            a->actions |= action_names[k].bit;
        }
        out->n_access = i + 1;
    }
    return 0;
}

static int aud_is(json_t *v, const char *expected)
{
    return json_is_string(v) && json_string_length(v) == strlen(expected) &&
           strcmp(json_string_value(v), expected) == 0;
}

/* RFC 7519 section 4.1.3: "aud" is one string or an array of strings. */
static int aud_matches(json_t *aud, const char *expected)
{
    size_t i;

    if (json_is_string(aud))
        return aud_is(aud, expected);
    if (!json_is_array(aud) || json_array_size(aud) > PT_JWT_AUD_MAX)
        return 0;
    for (i = 0; i < json_array_size(aud); i++)
        if (aud_is(json_array_get(aud, i), expected))
            return 1;
    return 0;
}

static int parse_claims(json_t *o, const char *expected_aud, int64_t now_s,
                        struct pt_jwt_claims *out)
{
    char sub[PT_AUTH_NAME_MAX + 8], typ[16];
    json_t *access;
    const char *name;

    if (!json_is_object(o))
        return -1;
    if (get_string(o, "iss", out->iss, sizeof(out->iss), 1) != 0 ||
        get_string(o, "sub", sub, sizeof(sub), 1) != 0 ||
        get_string(o, "jti", out->jti, sizeof(out->jti), 1) != 0 ||
        get_string(o, "typ", typ, sizeof(typ), 0) != 0 || get_int(o, "exp", &out->exp, 1) != 0 ||
        get_int(o, "nbf", &out->nbf, 0) != 0 || get_int(o, "iat", &out->iat, 1) != 0)
        return -1;
    /* RFC 7519 sections 4.1.4, 4.1.5: exp and nbf, with the leeway for clock skew. */
    if (now_s - PT_JWT_LEEWAY_S > out->exp || out->nbf > now_s + PT_JWT_LEEWAY_S ||
        out->iat > now_s + PT_JWT_LEEWAY_S)
        return -1;
    if (expected_aud == NULL || strlen(expected_aud) >= sizeof(out->aud) ||
        !aud_matches(json_object_get(o, "aud"), expected_aud))
        return -1;
    strcpy(out->aud, expected_aud);

    if (sub[0] == '\0') {
        out->sub_kind = PT_JWT_SUB_ANONYMOUS;
        name = sub;
    } else if (strncmp(sub, "user:", 5) == 0) {
        out->sub_kind = PT_JWT_SUB_USER;
        name = sub + 5;
    } else if (strncmp(sub, "token:", 6) == 0) {
        out->sub_kind = PT_JWT_SUB_TOKEN;
        name = sub + 6;
    } else {
        return -1;
    }
    if (out->sub_kind != PT_JWT_SUB_ANONYMOUS && !ident_valid(name, strlen(name)))
        return -1;
    memmove(out->sub, name, strlen(name) + 1);

    if (typ[0] != '\0') {
        if (strcmp(typ, "refresh") != 0)
            return -1;
        out->refresh = 1;
    }
    access = json_object_get(o, "access");
    if (access != NULL) {
        if (parse_access(access, out) != 0 || (out->refresh && out->n_access > 0))
            return -1;
    }
    return 0;
}

/* ---- signing and verifying ----------------------------------------------------------------- */

int pt_jwt_jti_generate(char *out, size_t size)
{
    unsigned char raw[16];

    if (size < PT_BASE64URL_LEN(sizeof(raw)) + 1 || RAND_bytes(raw, sizeof(raw)) != 1)
        return PT_E_INTERNAL;
    pt_base64url_encode(raw, sizeof(raw), out, size);
    return 0;
}

/* Raw r||s (64 bytes) from a DER ECDSA-Sig-Value. */
static int der_to_raw(const unsigned char *der, size_t len, unsigned char raw[PT_JWT_SIG_LEN])
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    const BIGNUM *r, *s;
    int ok;

    if (sig == NULL)
        return -1;
    ECDSA_SIG_get0(sig, &r, &s);
    ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    return ok ? 0 : -1;
}

/* DER ECDSA-Sig-Value from raw r||s; its length, or -1. */
static int raw_to_der(const unsigned char raw[PT_JWT_SIG_LEN], unsigned char *der, size_t cap)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    unsigned char *p = der;
    int n = -1;

    if (sig == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(sig, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return -1;
    }
    if (i2d_ECDSA_SIG(sig, NULL) <= (int)cap)
        n = i2d_ECDSA_SIG(sig, &p);
    ECDSA_SIG_free(sig);
    return n;
}

int pt_jwt_sign(const struct pt_jwt_key *k, const struct pt_jwt_claims *c, char **out)
{
    char hdr[96], jti[64], *payload = NULL, *tok = NULL;
    unsigned char der[PT_JWT_DER_SIG_MAX], raw[PT_JWT_SIG_LEN];
    size_t hlen, plen, b64p, pos, der_len = sizeof(der), cap;
    EVP_MD_CTX *md = NULL;
    json_t *o;
    int rc = PT_E_INTERNAL, n;

    if (!FIELD_OK(c->jti))
        return PT_E_INTERNAL;
    if (c->jti[0] != '\0')
        strcpy(jti, c->jti);
    else if (pt_jwt_jti_generate(jti, sizeof(jti)) != 0)
        return PT_E_INTERNAL;
    o = claims_to_json(c, jti);
    if (o == NULL)
        return PT_E_INTERNAL; /* invalid claims (or no memory: not told apart) */
    payload = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (payload == NULL)
        return PT_E_NOMEM;
    plen = strlen(payload);
    n = snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", k->kid);
    hlen = (size_t)n;
    b64p = PT_BASE64URL_LEN(plen);
    cap = PT_BASE64URL_LEN(hlen) + 1 + b64p + 1 + PT_BASE64URL_LEN(PT_JWT_SIG_LEN) + 1;
    tok = malloc(cap);
    if (tok == NULL) {
        rc = PT_E_NOMEM;
        goto out;
    }
    pos = pt_base64url_encode(hdr, hlen, tok, cap);
    tok[pos++] = '.';
    pos += pt_base64url_encode(payload, plen, tok + pos, cap - pos);
    md = EVP_MD_CTX_new();
    if (md == NULL) {
        rc = PT_E_NOMEM;
        goto out;
    }
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
        EVP_DigestSign(md, der, &der_len, (const unsigned char *)tok, pos) != 1 ||
        der_to_raw(der, der_len, raw) != 0)
        goto out;
    tok[pos++] = '.';
    pos += pt_base64url_encode(raw, sizeof(raw), tok + pos, cap - pos);
    tok[pos] = '\0';
    *out = tok;
    tok = NULL;
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    free(tok);
    free(payload);
    return rc;
}

/* Decodes the base64url part p[0..n) into a fresh JSON value (duplicate keys refused). */
static json_t *decode_json(const char *p, size_t n, unsigned char *buf, size_t cap)
{
    size_t len = cap;

    if (pt_base64_decode(p, n, 1, buf, &len) != 0)
        return NULL;
    return json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
}

/* Header checks: an object with only alg, typ and kid; alg exactly "ES256"; typ, if present,
 * "JWT"; kid a string of 1..63 characters, copied into kid. */
static int check_header(json_t *h, char kid[64])
{
    const char *key;
    json_t *v;
    int has_alg = 0;

    if (!json_is_object(h))
        return -1;
    json_object_foreach(h, key, v)
    {
        if (strcmp(key, "alg") == 0) {
            if (!json_is_string(v) || json_string_length(v) != 5 ||
                strcmp(json_string_value(v), "ES256") != 0)
                return -1;
            has_alg = 1;
        } else if (strcmp(key, "typ") == 0) {
            if (!json_is_string(v) || strcmp(json_string_value(v), "JWT") != 0 ||
                json_string_length(v) != 3)
                return -1;
        } else if (strcmp(key, "kid") == 0) {
            size_t n;
            if (!json_is_string(v))
                return -1;
            n = json_string_length(v);
            if (n == 0 || n >= 64 || strlen(json_string_value(v)) != n)
                return -1;
            memcpy(kid, json_string_value(v), n + 1);
        } else {
            return -1; /* crit, jwk, jku, x5u, x5c, ...: nothing else is ours */
        }
    }
    return has_alg && kid[0] != '\0' ? 0 : -1;
}

/*
 * Parsed public keys by their DER SPKI. Decoding a SubjectPublicKeyInfo through OpenSSL 3's
 * decoders costs more than the ECDSA verification itself, and a cluster has a handful of
 * signing keys, so the last PT_JWT_PUBKEY_CACHE distinct keys stay parsed (process-wide,
 * under one mutex held only to look up or swap an entry; an EVP_PKEY is used by several
 * threads at once only for verification, which does not modify it).
 */
#define PT_JWT_PUBKEY_CACHE 8

static struct {
    pthread_mutex_t lock;
    struct {
        unsigned char spki[PT_JWT_SPKI_MAX];
        size_t len;
        EVP_PKEY *pkey;
    } e[PT_JWT_PUBKEY_CACHE];
    unsigned next; /* round-robin replacement */
} pubkeys = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The P-256 public key of spki[0..len), a new reference (EVP_PKEY_free it), or NULL. */
static EVP_PKEY *pubkey_get(const unsigned char *spki, size_t len)
{
    const unsigned char *p = spki;
    EVP_PKEY *pkey = NULL, *old = NULL;
    unsigned i;

    pthread_mutex_lock(&pubkeys.lock);
    for (i = 0; i < PT_JWT_PUBKEY_CACHE; i++) {
        if (pubkeys.e[i].pkey != NULL && pubkeys.e[i].len == len &&
            memcmp(pubkeys.e[i].spki, spki, len) == 0) {
            pkey = pubkeys.e[i].pkey;
            if (!EVP_PKEY_up_ref(pkey))
                pkey = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&pubkeys.lock);
    if (pkey != NULL)
        return pkey;

    pkey = d2i_PUBKEY(NULL, &p, (long)len);
    if (pkey == NULL || p != spki + len || !is_p256(pkey)) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    if (!EVP_PKEY_up_ref(pkey))
        return pkey; /* not cached */
    pthread_mutex_lock(&pubkeys.lock);
    i = pubkeys.next++ % PT_JWT_PUBKEY_CACHE;
    old = pubkeys.e[i].pkey;
    memcpy(pubkeys.e[i].spki, spki, len);
    pubkeys.e[i].len = len;
    pubkeys.e[i].pkey = pkey; /* the cache's reference */
    pthread_mutex_unlock(&pubkeys.lock);
    EVP_PKEY_free(old);
    return pkey;
}

void pt_jwt_pubkey_cache_clear(void)
{
    unsigned i;

    pthread_mutex_lock(&pubkeys.lock);
    for (i = 0; i < PT_JWT_PUBKEY_CACHE; i++) {
        EVP_PKEY_free(pubkeys.e[i].pkey);
        pubkeys.e[i].pkey = NULL;
    }
    pthread_mutex_unlock(&pubkeys.lock);
}

static int verify_sig(const unsigned char *spki, size_t spki_len, const char *input, size_t n,
                      const unsigned char raw[PT_JWT_SIG_LEN])
{
    unsigned char der[PT_JWT_DER_SIG_MAX];
    EVP_PKEY *pkey = pubkey_get(spki, spki_len);
    EVP_MD_CTX *md = NULL;
    int der_len, ok = 0;

    if (pkey == NULL)
        goto out;
    der_len = raw_to_der(raw, der, sizeof(der));
    if (der_len <= 0)
        goto out;
    md = EVP_MD_CTX_new();
    if (md == NULL)
        goto out;
    ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
         EVP_DigestVerify(md, der, (size_t)der_len, (const unsigned char *)input, n) == 1;
out:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    return ok ? 0 : -1;
}

int pt_jwt_verify(const char *tok, size_t len, const char *expected_aud, int64_t now_s,
                  pt_jwt_key_lookup lookup, void *arg, struct pt_jwt_claims *out)
{
    unsigned char hbuf[PT_JWT_HEADER_MAX], raw[PT_JWT_SIG_LEN], spki[PT_JWT_SPKI_MAX];
    unsigned char *pbuf = NULL;
    const char *d1, *d2;
    size_t spki_len = sizeof(spki), raw_len = sizeof(raw), plen;
    json_t *j = NULL;
    int rc = PT_E_UNAUTHORIZED;

    memset(out, 0, sizeof(*out));
    if (tok == NULL || len == 0 || len > PT_JWT_MAX || memchr(tok, '\0', len) != NULL)
        return PT_E_UNAUTHORIZED;
    d1 = memchr(tok, '.', len);
    if (d1 == NULL)
        return PT_E_UNAUTHORIZED;
    d2 = memchr(d1 + 1, '.', (size_t)(tok + len - d1 - 1));
    if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(tok + len - d2 - 1)) != NULL)
        return PT_E_UNAUTHORIZED;

    /* header, kid, key */
    j = decode_json(tok, (size_t)(d1 - tok), hbuf, sizeof(hbuf));
    if (j == NULL || check_header(j, out->kid) != 0)
        goto out;
    json_decref(j);
    j = NULL;
    if (lookup(arg, out->kid, spki, &spki_len) != 0 || spki_len > sizeof(spki))
        goto out;

    /* signature over "header.payload" */
    if (pt_base64_decode(d2 + 1, (size_t)(tok + len - d2 - 1), 1, raw, &raw_len) != 0 ||
        raw_len != PT_JWT_SIG_LEN)
        goto out;
    if (verify_sig(spki, spki_len, tok, (size_t)(d2 - tok), raw) != 0)
        goto out;

    /* claims */
    plen = (size_t)(d2 - d1 - 1) / 4 * 3 + 3;
    pbuf = malloc(plen);
    if (pbuf == NULL) {
        rc = PT_E_NOMEM;
        goto out;
    }
    j = decode_json(d1 + 1, (size_t)(d2 - d1 - 1), pbuf, plen);
    if (j == NULL || parse_claims(j, expected_aud, now_s, out) != 0)
        goto out;
    rc = 0;
out:
    json_decref(j);
    free(pbuf);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}
