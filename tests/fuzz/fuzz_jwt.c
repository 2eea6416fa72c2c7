/*
 * fuzz_jwt.c - libFuzzer driver for pt_jwt_verify (node/auth/jwt.h).
 *
 * No network, no files: the driver holds one fixed test key (PEM below, used nowhere else)
 * and its lookup knows that key's kid only.
 *
 * Input layout: byte 0's low 2 bits choose what the rest is:
 *   0, 1  a whole token text, verified as is (reaches the structure and header checks; a
 *         valid signature is out of the fuzzer's reach here);
 *   2     a claims payload (JSON text): the driver signs it under a correct header with the
 *         test key, so the claims parser sees signed input it did not write;
 *   3     a header and a payload separated by the first newline, both signed as given
 *         (alg, kid, typ and extra members under a valid signature).
 * Verification runs at a fixed time (1700000000) for audience "registry.example".
 *
 * Checks beyond memory safety: a failure is UNAUTHORIZED (or NOMEM) with *out all zeros; a
 * success has a sub that fits its kind (empty for anonymous, else [a-z0-9][a-z0-9._-]{0,63}),
 * the expected aud and kid, exp/nbf/iat within the leeway of the fixed time, at most
 * PT_JWT_ACCESS_MAX access entries with valid names and known action bits, none on a refresh
 * token; and the claims signed again with pt_jwt_sign verify to the same claims.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "credentials.h"
#include "err.h"
#include "fuzz_check.h"
#include "jwt.h"
#include "reference.h"

#define NOW 1700000000
#define AUD "registry.example"

static const char test_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgnq1cIdTOYRcG2FU7\n"
    "dwoF0c2ZLby9jIWlYUZee6ligC+hRANCAATNwao6qGoZ4d+RaA0S8W9a0/DqRsvU\n"
    "LR61VH6QuWNuqyXOICNa5/mfX3kps7F7FwSk0hwZaqOmY+r0TRQrLTr0\n"
    "-----END PRIVATE KEY-----\n";

static struct pt_jwt_key *key;
static EVP_PKEY *raw_key;

static int lookup(void *arg, const char *kid, unsigned char *der, size_t *len)
{
    (void)arg;
    if (strcmp(kid, pt_jwt_key_kid(key)) != 0)
        return PT_E_NOT_FOUND;
    return pt_jwt_key_public_der(key, der, len);
}

static void init(void)
{
    BIO *bio;

    if (key != NULL)
        return;
    PT_FUZZ_CHECK(pt_jwt_key_from_pem(test_key_pem, strlen(test_key_pem), &key) == 0);
    bio = BIO_new_mem_buf(test_key_pem, -1);
    raw_key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    PT_FUZZ_CHECK(raw_key != NULL);
}

/* "b64(h).b64(p).b64(sig)" signed with the test key; malloc'd, *len set. */
static char *sign_raw(const char *h, size_t hl, const char *p, size_t pl, size_t *len)
{
    size_t cap = PT_BASE64URL_LEN(hl) + PT_BASE64URL_LEN(pl) + 90, pos, der_len = 80;
    unsigned char der[80], raw[64];
    const unsigned char *dp = der;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    const BIGNUM *r, *s;
    ECDSA_SIG *sig;
    char *tok = malloc(cap);

    PT_FUZZ_CHECK(tok != NULL && md != NULL);
    pos = hl ? pt_base64url_encode(h, hl, tok, cap) : 0;
    tok[pos++] = '.';
    pos += pl ? pt_base64url_encode(p, pl, tok + pos, cap - pos) : 0;
    PT_FUZZ_CHECK(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, raw_key) == 1);
    PT_FUZZ_CHECK(EVP_DigestSign(md, der, &der_len, (unsigned char *)tok, pos) == 1);
    EVP_MD_CTX_free(md);
    sig = d2i_ECDSA_SIG(NULL, &dp, (long)der_len);
    PT_FUZZ_CHECK(sig != NULL);
    ECDSA_SIG_get0(sig, &r, &s);
    BN_bn2binpad(r, raw, 32);
    BN_bn2binpad(s, raw + 32, 32);
    ECDSA_SIG_free(sig);
    tok[pos++] = '.';
    pos += pt_base64url_encode(raw, 64, tok + pos, cap - pos);
    *len = pos;
    return tok;
}

static int ident_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > PT_AUTH_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return 0;
    }
    return 1;
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *u = p;
    size_t i;

    for (i = 0; i < n; i++)
        if (u[i])
            return 0;
    return 1;
}

static void check_claims(const struct pt_jwt_claims *c)
{
    size_t i;

    PT_FUZZ_CHECK(strcmp(c->aud, AUD) == 0);
    PT_FUZZ_CHECK(strcmp(c->kid, pt_jwt_key_kid(key)) == 0);
    if (c->sub_kind == PT_JWT_SUB_ANONYMOUS)
        PT_FUZZ_CHECK(c->sub[0] == '\0');
    else
        PT_FUZZ_CHECK((c->sub_kind == PT_JWT_SUB_USER || c->sub_kind == PT_JWT_SUB_TOKEN) &&
                      ident_ok(c->sub));
    PT_FUZZ_CHECK(NOW - PT_JWT_LEEWAY_S <= c->exp);
    PT_FUZZ_CHECK(c->nbf <= NOW + PT_JWT_LEEWAY_S && c->iat <= NOW + PT_JWT_LEEWAY_S);
    PT_FUZZ_CHECK(c->n_access <= PT_JWT_ACCESS_MAX);
    PT_FUZZ_CHECK(!c->refresh || c->n_access == 0);
    PT_FUZZ_CHECK(memchr(c->iss, '\0', sizeof(c->iss)) && memchr(c->jti, '\0', sizeof(c->jti)));
    for (i = 0; i < c->n_access; i++) {
        const struct pt_jwt_access *a = &c->access[i];
        PT_FUZZ_CHECK((a->actions & ~(unsigned)PT_ACTIONS_ALL) == 0);
        if (a->registry)
            PT_FUZZ_CHECK(strcmp(a->name, "catalog") == 0);
        else
            PT_FUZZ_CHECK(pt_name_validate(a->name, strnlen(a->name, sizeof(a->name))) == 0);
    }
}

/* Signs c again and verifies: the claims must come back unchanged. Re-encoding may make a
 * token longer than the input ("*" spelled out as three actions, a typ header added), so a
 * token over PT_JWT_MAX is the one case skipped. */
static void check_round_trip(const struct pt_jwt_claims *c)
{
    struct pt_jwt_claims again;
    char *tok;
    size_t i, len;
    int rc = pt_jwt_sign(key, c, &tok);

    if (rc == PT_E_NOMEM)
        return;
    PT_FUZZ_CHECK(rc == 0); /* verified claims are always signable */
    len = strlen(tok);
    rc = pt_jwt_verify(tok, len, AUD, NOW, lookup, NULL, &again);
    free(tok);
    if (len > PT_JWT_MAX || rc == PT_E_NOMEM)
        return;
    PT_FUZZ_CHECK(rc == 0);
    PT_FUZZ_CHECK(strcmp(again.iss, c->iss) == 0 && strcmp(again.sub, c->sub) == 0);
    PT_FUZZ_CHECK(again.sub_kind == c->sub_kind && again.refresh == c->refresh);
    PT_FUZZ_CHECK(again.exp == c->exp && again.nbf == c->nbf && again.iat == c->iat);
    PT_FUZZ_CHECK(c->jti[0] == '\0' || strcmp(again.jti, c->jti) == 0);
    PT_FUZZ_CHECK(again.n_access == c->n_access);
    for (i = 0; i < c->n_access; i++) {
        PT_FUZZ_CHECK(again.access[i].registry == c->access[i].registry);
        PT_FUZZ_CHECK(again.access[i].actions == c->access[i].actions);
        PT_FUZZ_CHECK(strcmp(again.access[i].name, c->access[i].name) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pt_jwt_claims c;
    const char *body;
    char *tok, hdr[96];
    size_t len, blen;
    int rc;

    if (size < 1)
        return 0;
    init();
    body = (const char *)data + 1;
    blen = size - 1;
    switch (data[0] & 3) {
    case 2:
        len =
            (size_t)snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
                             pt_jwt_key_kid(key));
        tok = sign_raw(hdr, len, body, blen, &len);
        break;
    case 3: {
        const char *nl = memchr(body, '\n', blen);
        size_t hl = nl ? (size_t)(nl - body) : blen;
        tok = sign_raw(body, hl, nl ? nl + 1 : body + blen, nl ? blen - hl - 1 : 0, &len);
        break;
    }
    default:
        tok = malloc(blen ? blen : 1);
        PT_FUZZ_CHECK(tok != NULL);
        memcpy(tok, body, blen);
        len = blen;
        break;
    }
    rc = pt_jwt_verify(tok, len, AUD, NOW, lookup, NULL, &c);
    free(tok);
    if (rc != 0) {
        PT_FUZZ_CHECK(rc == PT_E_UNAUTHORIZED || rc == PT_E_NOMEM);
        PT_FUZZ_CHECK(all_zero(&c, sizeof(c)));
        return 0;
    }
    check_claims(&c);
    check_round_trip(&c);
    return 0;
}
