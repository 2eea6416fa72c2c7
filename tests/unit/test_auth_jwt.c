/*
 * test_auth_jwt.c - ES256 JWTs: key files, sign/verify round trips and every refusal
 * (tampered signature, payload or header, alg none or another alg, expiry, nbf, audience,
 * unknown kid, oversize, duplicate keys, malformed claims).
 *
 * Tokens with arbitrary headers and payloads are signed here with OpenSSL directly, using the
 * same fixed test key the module loads, so refusals are tested with valid signatures too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "credentials.h"
#include "err.h"
#include "jwt.h"
#include "support/tmpdir.h"

/* Test-only keys (never used outside the tests). */
static const char key_a_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                                "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgnq1cIdTOYRcG2FU7\n"
                                "dwoF0c2ZLby9jIWlYUZee6ligC+hRANCAATNwao6qGoZ4d+RaA0S8W9a0/DqRsvU\n"
                                "LR61VH6QuWNuqyXOICNa5/mfX3kps7F7FwSk0hwZaqOmY+r0TRQrLTr0\n"
                                "-----END PRIVATE KEY-----\n";
static const char key_b_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                                "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgMag2uKiuYghDuIyl\n"
                                "N+C5Na0rAtP7wUeOf5PbtW8bBd6hRANCAASWlUk9C12kYsUwiBs2YGiYZCe5mbfo\n"
                                "fZ5NJyLhbk0jm/G1TlwHcJpqridzjtkbKi3QJl66IwCn6qIVJjupGZCF\n"
                                "-----END PRIVATE KEY-----\n";

#define NOW 1700000000
#define AUD "registry.example"

struct fixture {
    struct pt_jwt_key *a, *b;
    EVP_PKEY *raw_a; /* key a, for hand-made tokens */
    int lookups;
};

/* Knows key a under its kid, and key b's public key under the name "b-as-a": a token
 * claiming kid "b-as-a" but signed by a must fail. */
static int lookup(void *arg, const char *kid, unsigned char *der, size_t *len)
{
    struct fixture *f = arg;

    f->lookups++;
    if (strcmp(kid, pt_jwt_key_kid(f->a)) == 0)
        return pt_jwt_key_public_der(f->a, der, len);
    if (strcmp(kid, "b-as-a") == 0)
        return pt_jwt_key_public_der(f->b, der, len);
    return PT_E_NOT_FOUND;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    BIO *bio;

    assert_non_null(f);
    assert_int_equal(pt_jwt_key_from_pem(key_a_pem, strlen(key_a_pem), &f->a), 0);
    assert_int_equal(pt_jwt_key_from_pem(key_b_pem, strlen(key_b_pem), &f->b), 0);
    bio = BIO_new_mem_buf(key_a_pem, -1);
    f->raw_a = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(f->raw_a);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    pt_jwt_key_free(f->a);
    pt_jwt_key_free(f->b);
    EVP_PKEY_free(f->raw_a);
    free(f);
    return 0;
}

/* "b64(header).b64(payload).b64(ES256 signature by raw_a)" into a malloc'd string. */
static char *sign_raw(struct fixture *f, const char *header, const char *payload)
{
    size_t hl = strlen(header), pl = strlen(payload), cap, pos, der_len = 80;
    unsigned char der[80], raw[64];
    const unsigned char *p = der;
    const BIGNUM *r, *s;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ECDSA_SIG *sig;
    char *tok;

    cap = PT_BASE64URL_LEN(hl) + PT_BASE64URL_LEN(pl) + PT_BASE64URL_LEN(64) + 8;
    tok = malloc(cap);
    assert_non_null(tok);
    pos = pt_base64url_encode(header, hl, tok, cap);
    tok[pos++] = '.';
    pos += pt_base64url_encode(payload, pl, tok + pos, cap - pos);
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, f->raw_a), 1);
    assert_int_equal(EVP_DigestSign(md, der, &der_len, (unsigned char *)tok, pos), 1);
    EVP_MD_CTX_free(md);
    sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    assert_non_null(sig);
    ECDSA_SIG_get0(sig, &r, &s);
    BN_bn2binpad(r, raw, 32);
    BN_bn2binpad(s, raw + 32, 32);
    ECDSA_SIG_free(sig);
    tok[pos++] = '.';
    pt_base64url_encode(raw, 64, tok + pos, cap - pos);
    return tok;
}

static int verify(struct fixture *f, const char *tok, struct pt_jwt_claims *c)
{
    return pt_jwt_verify(tok, strlen(tok), AUD, NOW, lookup, f, c);
}

static void sample_claims(struct pt_jwt_claims *c)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->iss, "portolan-eu");
    strcpy(c->sub, "alice");
    c->sub_kind = PT_JWT_SUB_USER;
    strcpy(c->aud, AUD);
    strcpy(c->jti, "jti-1");
    c->iat = NOW;
    c->nbf = NOW - 5;
    c->exp = NOW + 300;
    c->n_access = 2;
    strcpy(c->access[0].name, "team/app");
    c->access[0].actions = PT_ACTION_PULL | PT_ACTION_PUSH;
    c->access[1].registry = 1;
    strcpy(c->access[1].name, "catalog");
    c->access[1].actions = PT_ACTION_PULL | PT_ACTION_PUSH | PT_ACTION_DELETE;
}

/* A header of key a with the given alg. */
static void header_with(struct fixture *f, const char *alg, char *out, size_t size)
{
    snprintf(out, size, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg,
             pt_jwt_key_kid(f->a));
}

/* tmpl with "@K" replaced by kid, into out. */
static void with_kid(const char *tmpl, const char *kid, char *out, size_t size)
{
    const char *at = strstr(tmpl, "@K");

    if (at == NULL)
        snprintf(out, size, "%s", tmpl);
    else
        snprintf(out, size, "%.*s%s%s", (int)(at - tmpl), tmpl, kid, at + 2);
}

static const char good_payload[] =
    "{\"iss\":\"x\",\"sub\":\"token:ci-1\",\"aud\":\"" AUD "\",\"exp\":1700000300,"
    "\"iat\":1700000000,\"jti\":\"j\",\"access\":[{\"type\":\"repository\",\"name\":\"a\","
    "\"actions\":[\"pull\"]}]}";

static void test_kid(void **state)
{
    struct fixture *f = *state;
    unsigned char der[PT_JWT_SPKI_MAX];
    size_t len = sizeof(der), small = 10;
    char kid[PT_JWT_KID_LEN + 1];

    assert_int_equal(strlen(pt_jwt_key_kid(f->a)), PT_JWT_KID_LEN);
    assert_int_equal(pt_jwt_key_public_der(f->a, der, &len), 0);
    assert_int_equal(len, 91);
    pt_jwt_kid_of_der(der, len, kid);
    assert_string_equal(kid, pt_jwt_key_kid(f->a));
    assert_string_not_equal(pt_jwt_key_kid(f->a), pt_jwt_key_kid(f->b));
    assert_int_equal(pt_jwt_key_public_der(f->a, der, &small), PT_E_TOO_LARGE);
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    struct pt_jwt_claims c, v;
    char *tok;

    sample_claims(&c);
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), 0);
    assert_int_equal(verify(f, tok, &v), 0);
    assert_string_equal(v.iss, "portolan-eu");
    assert_string_equal(v.sub, "alice");
    assert_int_equal(v.sub_kind, PT_JWT_SUB_USER);
    assert_string_equal(v.aud, AUD);
    assert_string_equal(v.jti, "jti-1");
    assert_string_equal(v.kid, pt_jwt_key_kid(f->a));
    assert_int_equal(v.exp, NOW + 300);
    assert_int_equal(v.nbf, NOW - 5);
    assert_int_equal(v.iat, NOW);
    assert_int_equal(v.refresh, 0);
    assert_int_equal(v.n_access, 2);
    assert_int_equal(v.access[0].registry, 0);
    assert_string_equal(v.access[0].name, "team/app");
    assert_int_equal(v.access[0].actions, PT_ACTION_PULL | PT_ACTION_PUSH);
    assert_int_equal(v.access[1].registry, 1);
    assert_string_equal(v.access[1].name, "catalog");
    assert_int_equal(v.access[1].actions, PT_ACTION_PULL | PT_ACTION_PUSH | PT_ACTION_DELETE);
    free(tok);

    /* a token identity, no access, a generated jti */
    sample_claims(&c);
    strcpy(c.sub, "ci-token.1");
    c.sub_kind = PT_JWT_SUB_TOKEN;
    c.n_access = 0;
    c.jti[0] = '\0';
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), 0);
    assert_int_equal(verify(f, tok, &v), 0);
    assert_string_equal(v.sub, "ci-token.1");
    assert_int_equal(v.sub_kind, PT_JWT_SUB_TOKEN);
    assert_int_equal(strlen(v.jti), 22);
    assert_int_equal(v.n_access, 0);
    free(tok);

    /* anonymous */
    sample_claims(&c);
    c.sub[0] = '\0';
    c.sub_kind = PT_JWT_SUB_ANONYMOUS;
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), 0);
    assert_int_equal(verify(f, tok, &v), 0);
    assert_int_equal(v.sub_kind, PT_JWT_SUB_ANONYMOUS);
    assert_string_equal(v.sub, "");
    free(tok);

    /* refresh */
    sample_claims(&c);
    c.n_access = 0;
    c.refresh = 1;
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), 0);
    assert_int_equal(verify(f, tok, &v), 0);
    assert_int_equal(v.refresh, 1);
    free(tok);

    /* hand-made, aud as an array */
    tok = sign_raw(f, "{\"alg\":\"ES256\",\"kid\":\"x\"}", good_payload);
    assert_int_equal(verify(f, tok, &v), PT_E_UNAUTHORIZED); /* unknown kid */
    free(tok);
    char hdr[128];
    header_with(f, "ES256", hdr, sizeof(hdr));
    tok = sign_raw(f, hdr,
                   "{\"iss\":\"x\",\"sub\":\"\",\"aud\":[\"other\",\"" AUD "\"],"
                   "\"exp\":1700000300,\"iat\":1700000000,\"jti\":\"j\"}");
    assert_int_equal(verify(f, tok, &v), 0);
    free(tok);
    tok = sign_raw(f, hdr, good_payload);
    assert_int_equal(verify(f, tok, &v), 0);
    assert_string_equal(v.sub, "ci-1");
    free(tok);
}

static void test_sign_refusals(void **state)
{
    struct fixture *f = *state;
    struct pt_jwt_claims c;
    char *tok = NULL;

    sample_claims(&c);
    strcpy(c.sub, "user:alice"); /* the prefix is not part of the name */
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), PT_E_INTERNAL);
    sample_claims(&c);
    c.sub_kind = 7;
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), PT_E_INTERNAL);
    sample_claims(&c);
    c.refresh = 1;
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), PT_E_INTERNAL);
    sample_claims(&c);
    c.n_access = PT_JWT_ACCESS_MAX + 1;
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), PT_E_INTERNAL);
    sample_claims(&c);
    c.access[0].name[0] = '\0';
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), PT_E_INTERNAL);
    sample_claims(&c);
    memset(c.iss, 'x', sizeof(c.iss));
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), PT_E_INTERNAL);
    assert_null(tok);
}

static void test_tampered(void **state)
{
    struct fixture *f = *state;
    struct pt_jwt_claims c, v;
    char *tok, *d1, *d2, *forged, hdr[128];
    size_t len;

    sample_claims(&c);
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), 0);
    len = strlen(tok);
    d1 = strchr(tok, '.');
    d2 = strchr(d1 + 1, '.');

    /* signature: flip one character in the middle of r and of s */
    char *t = strdup(tok);
    size_t sig_at = (size_t)(d2 - tok) + 1;
    t[sig_at + 10] = t[sig_at + 10] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(f, t, &v), PT_E_UNAUTHORIZED);
    strcpy(t, tok);
    t[len - 20] = t[len - 20] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(f, t, &v), PT_E_UNAUTHORIZED);
    /* signature truncated, extended, missing */
    strcpy(t, tok);
    t[len - 1] = '\0';
    assert_int_equal(verify(f, t, &v), PT_E_UNAUTHORIZED);
    strcpy(t, tok);
    t[sig_at] = '\0';
    assert_int_equal(verify(f, t, &v), PT_E_UNAUTHORIZED);
    free(t);
    t = malloc(len + 5);
    snprintf(t, len + 5, "%sAAAA", tok);
    assert_int_equal(verify(f, t, &v), PT_E_UNAUTHORIZED);
    free(t);

    /* payload: another valid payload under the original header and signature */
    forged = sign_raw(f, "{}", good_payload); /* only its payload part is used */
    char *fd1 = strchr(forged, '.'), *fd2 = strchr(fd1 + 1, '.');
    t = malloc(len + strlen(forged) + 1);
    sprintf(t, "%.*s%.*s%s", (int)(d1 - tok), tok, (int)(fd2 - fd1), fd1, d2);
    assert_int_equal(verify(f, t, &v), PT_E_UNAUTHORIZED);
    free(t);
    free(forged);

    /* header: the same header with typ changed (valid JSON, same kid) */
    header_with(f, "ES256", hdr, sizeof(hdr));
    char *h2 = strstr(hdr, "JWT");
    memcpy(h2, "JWS", 3);
    forged = sign_raw(f, hdr, "{}"); /* only its header part is used */
    t = malloc(len + strlen(forged) + 1);
    sprintf(t, "%.*s%s", (int)(strchr(forged, '.') - forged), forged, d1);
    assert_int_equal(verify(f, t, &v), PT_E_UNAUTHORIZED);
    free(t);
    free(forged);

    /* a's signature checked against b's public key (the kid names b's key) */
    t = sign_raw(f, "{\"alg\":\"ES256\",\"kid\":\"b-as-a\"}", good_payload);
    f->lookups = 0;
    assert_int_equal(verify(f, t, &v), PT_E_UNAUTHORIZED);
    assert_int_equal(f->lookups, 1);
    free(t);
    /* b's token: b's kid is unknown to the lookup */
    assert_int_equal(pt_jwt_sign(f->b, &c, &t), 0);
    assert_int_equal(verify(f, t, &v), PT_E_UNAUTHORIZED);
    free(t);

    /* the untouched token still verifies */
    assert_int_equal(verify(f, tok, &v), 0);
    free(tok);
}

static void test_alg(void **state)
{
    struct fixture *f = *state;
    struct pt_jwt_claims v;
    char hdr[128], *tok, *none;
    static const char *algs[] = {"none", "HS256", "ES384", "RS256", "es256", "ES256 "};
    size_t i;

    for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        header_with(f, algs[i], hdr, sizeof(hdr));
        tok = sign_raw(f, hdr, good_payload);
        assert_int_equal(verify(f, tok, &v), PT_E_UNAUTHORIZED);
        free(tok);
    }
    /* alg none with an empty signature */
    header_with(f, "none", hdr, sizeof(hdr));
    tok = sign_raw(f, hdr, good_payload);
    none = strrchr(tok, '.');
    none[1] = '\0';
    assert_int_equal(verify(f, tok, &v), PT_E_UNAUTHORIZED);
    free(tok);

    /* header shapes: missing alg or kid, duplicate alg, crit, an extra member, not an object */
    static const char *hdrs[] = {
        "{\"kid\":\"@K\"}",
        "{\"alg\":\"ES256\"}",
        "{\"alg\":\"none\",\"alg\":\"ES256\",\"kid\":\"@K\"}",
        "{\"alg\":\"ES256\",\"alg\":\"ES256\",\"kid\":\"@K\"}",
        "{\"alg\":\"ES256\",\"kid\":\"@K\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"ES256\",\"kid\":\"@K\",\"jku\":\"https://evil/\"}",
        "[\"ES256\",\"@K\"]",
        "{\"alg\":\"ES256\",\"kid\":\"@K\"} ",
        "{\"alg\":\"ES256\",\"kid\":\"@K\",\"typ\":\"jwt\"}",
    };
    for (i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        with_kid(hdrs[i], pt_jwt_key_kid(f->a), hdr, sizeof(hdr));
        tok = sign_raw(f, hdr, good_payload);
        /* the trailing-space header is valid JSON: only it verifies */
        assert_int_equal(verify(f, tok, &v), i == 7 ? 0 : PT_E_UNAUTHORIZED);
        free(tok);
    }
}

static void test_times(void **state)
{
    struct fixture *f = *state;
    struct pt_jwt_claims c, v;
    char *tok;

    sample_claims(&c);
    c.exp = NOW - 61; /* expired beyond the leeway */
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), 0);
    assert_int_equal(verify(f, tok, &v), PT_E_UNAUTHORIZED);
    assert_int_equal(pt_jwt_verify(tok, strlen(tok), AUD, NOW - 1, lookup, f, &v), 0);
    free(tok);

    c.exp = NOW - 60; /* within the leeway */
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), 0);
    assert_int_equal(verify(f, tok, &v), 0);
    free(tok);

    sample_claims(&c);
    c.nbf = NOW + 61; /* not yet valid */
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), 0);
    assert_int_equal(verify(f, tok, &v), PT_E_UNAUTHORIZED);
    assert_int_equal(pt_jwt_verify(tok, strlen(tok), AUD, NOW + 1, lookup, f, &v), 0);
    free(tok);

    sample_claims(&c);
    c.iat = NOW + 120; /* issued in the future */
    c.nbf = 0;
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), 0);
    assert_int_equal(verify(f, tok, &v), PT_E_UNAUTHORIZED);
    free(tok);
}

static void test_audience(void **state)
{
    struct fixture *f = *state;
    struct pt_jwt_claims c, v;
    char *tok;

    sample_claims(&c);
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), 0);
    assert_int_equal(pt_jwt_verify(tok, strlen(tok), "other", NOW, lookup, f, &v),
                     PT_E_UNAUTHORIZED);
    assert_int_equal(pt_jwt_verify(tok, strlen(tok), AUD "x", NOW, lookup, f, &v),
                     PT_E_UNAUTHORIZED);
    assert_int_equal(pt_jwt_verify(tok, strlen(tok), "", NOW, lookup, f, &v), PT_E_UNAUTHORIZED);
    assert_int_equal(pt_jwt_verify(tok, strlen(tok), NULL, NOW, lookup, f, &v), PT_E_UNAUTHORIZED);
    free(tok);
}

static void test_claims_refusals(void **state)
{
    struct fixture *f = *state;
    struct pt_jwt_claims v;
    char hdr[128], *tok, payload[4096];
    size_t i, pos;

#define BASE "\"iss\":\"x\",\"aud\":\"" AUD "\",\"exp\":1700000300,\"iat\":1700000000,\"jti\":\"j\""
    static const char *bad[] = {
        "{\"sub\":\"alice\"," BASE "}",                  /* no kind prefix */
        "{\"sub\":\"user:Alice\"," BASE "}",             /* bad name */
        "{\"sub\":\"user:\"," BASE "}",                  /* empty name */
        "{\"sub\":\"group:x\"," BASE "}",                /* unknown kind */
        "{" BASE "}",                                    /* no sub */
        "{\"sub\":\"\",\"sub\":\"user:root\"," BASE "}", /* duplicate */
        "{\"sub\":\"\",\"iss\":\"x\",\"aud\":\"" AUD "\",\"iat\":1700000000,\"jti\":\"j\"}",
        "{\"sub\":\"\",\"iss\":\"x\",\"aud\":\"" AUD "\",\"exp\":1700000300,\"jti\":\"j\"}",
        "{\"sub\":\"\",\"iss\":\"x\",\"aud\":\"" AUD "\",\"exp\":1.7e9,\"iat\":1,\"jti\":\"j\"}",
        "{\"sub\":\"\",\"iss\":\"x\",\"aud\":\"" AUD "\",\"exp\":\"1700000300\",\"iat\":1,"
        "\"jti\":\"j\"}",
        "{\"sub\":\"\"," BASE ",\"typ\":\"access\"}",
        "{\"sub\":\"\"," BASE ",\"typ\":\"refresh\",\"access\":[{\"type\":\"repository\","
        "\"name\":\"a\",\"actions\":[]}]}",
        "{\"sub\":\"\"," BASE ",\"access\":{}}",
        "{\"sub\":\"\"," BASE ",\"access\":[{\"type\":\"repo\",\"name\":\"a\",\"actions\":[]}]}",
        "{\"sub\":\"\"," BASE ",\"access\":[{\"type\":\"repository\",\"name\":\"A\","
        "\"actions\":[]}]}",
        "{\"sub\":\"\"," BASE ",\"access\":[{\"type\":\"registry\",\"name\":\"x\","
        "\"actions\":[\"*\"]}]}",
        "{\"sub\":\"\"," BASE ",\"access\":[{\"type\":\"repository\",\"name\":\"a\","
        "\"actions\":[\"fly\"]}]}",
        "{\"sub\":\"\"," BASE ",\"access\":[{\"type\":\"repository\",\"name\":\"a\"}]}",
        "[\"sub\"]",
        "{\"sub\":\"\"," BASE "",
    };
    header_with(f, "ES256", hdr, sizeof(hdr));
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tok = sign_raw(f, hdr, bad[i]);
        if (verify(f, tok, &v) != PT_E_UNAUTHORIZED)
            fail_msg("payload %zu verified: %s", i, bad[i]);
        assert_int_equal(v.n_access, 0);
        assert_string_equal(v.sub, "");
        free(tok);
    }

    /* 16 access entries pass, 17 do not */
    for (int n = 16; n <= 17; n++) {
        pos = (size_t)snprintf(payload, sizeof(payload), "{\"sub\":\"\"," BASE ",\"access\":[");
        for (i = 0; i < (size_t)n; i++)
            pos += (size_t)snprintf(payload + pos, sizeof(payload) - pos,
                                    "%s{\"type\":\"repository\",\"name\":\"r%zu\","
                                    "\"actions\":[\"pull\",\"delete\"]}",
                                    i ? "," : "", i);
        snprintf(payload + pos, sizeof(payload) - pos, "]}");
        tok = sign_raw(f, hdr, payload);
        assert_int_equal(verify(f, tok, &v), n == 16 ? 0 : PT_E_UNAUTHORIZED);
        if (n == 16) {
            assert_int_equal(v.n_access, 16);
            assert_string_equal(v.access[15].name, "r15");
            assert_int_equal(v.access[15].actions, PT_ACTION_PULL | PT_ACTION_DELETE);
        }
        free(tok);
    }
#undef BASE
}

static void test_shape_and_size(void **state)
{
    struct fixture *f = *state;
    struct pt_jwt_claims c, v;
    static const char *bad[] = {"", ".", "..", "...", "a.b", "a.b.c.d", "a.b.c"};
    char *tok, *big;
    size_t i, len;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(verify(f, bad[i], &v), PT_E_UNAUTHORIZED);

    /* a NUL inside, or a length beyond the text */
    sample_claims(&c);
    assert_int_equal(pt_jwt_sign(f->a, &c, &tok), 0);
    len = strlen(tok);
    assert_int_equal(pt_jwt_verify(tok, len + 1, AUD, NOW, lookup, f, &v), PT_E_UNAUTHORIZED);
    assert_int_equal(pt_jwt_verify(tok, len - 1, AUD, NOW, lookup, f, &v), PT_E_UNAUTHORIZED);
    free(tok);

    /* over PT_JWT_MAX: refused before any key lookup */
    big = malloc(PT_JWT_MAX + 2);
    memset(big, 'A', PT_JWT_MAX + 1);
    big[10] = '.';
    big[20] = '.';
    big[PT_JWT_MAX + 1] = '\0';
    f->lookups = 0;
    assert_int_equal(verify(f, big, &v), PT_E_UNAUTHORIZED);
    assert_int_equal(f->lookups, 0);
    free(big);

    /* a signed payload that makes the token 8193 bytes long */
    char hdr[128];
    char *payload = malloc(7000);
    header_with(f, "ES256", hdr, sizeof(hdr));
    int n = snprintf(payload, 7000,
                     "{\"sub\":\"\",\"iss\":\"x\",\"aud\":\"" AUD
                     "\",\"exp\":1700000300,\"iat\":1700000000,\"jti\":\"j\",\"pad\":\"");
    size_t target; /* payload bytes that give a token of exactly PT_JWT_MAX + 1 */
    for (target = 5000; target < 6900; target++) {
        size_t tl = PT_BASE64URL_LEN(strlen(hdr)) + 1 + PT_BASE64URL_LEN(target) + 1 + 86;
        if (tl == PT_JWT_MAX + 1)
            break;
    }
    assert_true(target < 6900);
    memset(payload + n, 'p', target - (size_t)n - 2);
    memcpy(payload + target - 2, "\"}", 3);
    tok = sign_raw(f, hdr, payload);
    assert_int_equal(strlen(tok), PT_JWT_MAX + 1);
    assert_int_equal(verify(f, tok, &v), PT_E_UNAUTHORIZED);
    free(tok);
    free(payload);
}

static void test_key_file(void **state)
{
    struct fixture *f = *state;
    struct pt_jwt_key *k1, *k2;
    char dir[256], path[512], other[512];
    struct stat st;
    int fd;

    pt_tmpdir_create(dir, sizeof(dir), "pt-jwt-");
    snprintf(path, sizeof(path), "%s/signing.pem", dir);
    assert_int_equal(pt_jwt_key_load_or_create(path, &k1), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(pt_jwt_key_load_or_create(path, &k2), 0);
    assert_string_equal(pt_jwt_key_kid(k1), pt_jwt_key_kid(k2));
    pt_jwt_key_free(k2);

    /* PKCS#8 PEM on disk */
    char buf[512];
    fd = open(path, O_RDONLY);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "-----BEGIN PRIVATE KEY-----"));
    assert_int_equal(pt_jwt_key_from_pem(buf, (size_t)n, &k2), 0);
    assert_string_equal(pt_jwt_key_kid(k1), pt_jwt_key_kid(k2));
    pt_jwt_key_free(k2);

    /* group or others may not read or write it */
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(pt_jwt_key_load_or_create(path, &k2), PT_E_CONFIG);
    assert_int_equal(chmod(path, 0602), 0);
    assert_int_equal(pt_jwt_key_load_or_create(path, &k2), PT_E_CONFIG);
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(pt_jwt_key_load_or_create(path, &k2), 0);
    pt_jwt_key_free(k2);

    /* save replaces atomically and keeps 0600 */
    snprintf(other, sizeof(other), "%s/other.pem", dir);
    assert_int_equal(pt_jwt_key_save(f->b, other), 0);
    assert_int_equal(stat(other, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(pt_jwt_key_load_or_create(other, &k2), 0);
    assert_string_equal(pt_jwt_key_kid(k2), pt_jwt_key_kid(f->b));
    pt_jwt_key_free(k2);

    /* not PEM, not EC P-256, a directory, an encrypted key */
    fd = open(other, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "hello\n", 6), 6);
    close(fd);
    assert_int_equal(pt_jwt_key_load_or_create(other, &k2), PT_E_CONFIG);
    assert_int_equal(pt_jwt_key_load_or_create(dir, &k2), PT_E_CONFIG);
    EVP_PKEY *rsa = EVP_RSA_gen(1024);
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    PEM_write_bio_PrivateKey(bio, rsa, NULL, NULL, 0, NULL, NULL);
    long dl = BIO_get_mem_data(bio, &data);
    assert_int_equal(pt_jwt_key_from_pem(data, (size_t)dl, &k2), PT_E_CONFIG);
    BIO_free(bio);
    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PKCS8PrivateKey(bio, f->raw_a, EVP_aes_128_cbc(), NULL, 0, NULL, "pw");
    dl = BIO_get_mem_data(bio, &data);
    assert_int_equal(pt_jwt_key_from_pem(data, (size_t)dl, &k2), PT_E_CONFIG);
    BIO_free(bio);
    EVP_PKEY_free(rsa);

    /* a missing directory: I/O error, nothing created */
    snprintf(other, sizeof(other), "%s/missing/key.pem", dir);
    assert_int_equal(pt_jwt_key_load_or_create(other, &k2), PT_E_IO);

    pt_jwt_key_free(k1);
    assert_int_equal(pt_tmpdir_remove(dir), 0);
}

static void test_generate_and_jti(void **state)
{
    struct pt_jwt_key *k;
    struct pt_jwt_claims c, v;
    char jti1[64], jti2[64], small[8], *tok;

    (void)state;
    assert_int_equal(pt_jwt_key_generate(&k), 0);
    assert_int_equal(pt_jwt_jti_generate(jti1, sizeof(jti1)), 0);
    assert_int_equal(pt_jwt_jti_generate(jti2, sizeof(jti2)), 0);
    assert_int_equal(strlen(jti1), 22);
    assert_string_not_equal(jti1, jti2);
    assert_int_equal(pt_jwt_jti_generate(small, sizeof(small)), PT_E_INTERNAL);

    /* a generated key verifies its own tokens, and only those with its kid */
    sample_claims(&c);
    assert_int_equal(pt_jwt_sign(k, &c, &tok), 0);
    struct fixture f2 = {.a = k};
    assert_int_equal(pt_jwt_verify(tok, strlen(tok), AUD, NOW, lookup, &f2, &v), 0);
    free(tok);
    pt_jwt_key_free(k);
    pt_jwt_key_free(NULL);
}

/* More signing keys than the parsed-key cache holds, used in turn and from several threads:
 * each token verifies with its own key only. */
#define N_KEYS 11
static struct pt_jwt_key *ring[N_KEYS];

static int ring_lookup(void *arg, const char *kid, unsigned char *der, size_t *len)
{
    int i;

    (void)arg;
    for (i = 0; i < N_KEYS; i++)
        if (strcmp(kid, pt_jwt_key_kid(ring[i])) == 0)
            return pt_jwt_key_public_der(ring[i], der, len);
    return PT_E_NOT_FOUND;
}

static char *ring_tokens[N_KEYS];

static void *verify_ring(void *arg)
{
    struct pt_jwt_claims v;
    long bad = 0;
    int round, i;

    (void)arg;
    for (round = 0; round < 3; round++)
        for (i = 0; i < N_KEYS; i++)
            if (pt_jwt_verify(ring_tokens[i], strlen(ring_tokens[i]), AUD, NOW, ring_lookup, NULL,
                              &v) != 0)
                bad++;
    return (void *)bad;
}

static void test_many_keys(void **state)
{
    struct pt_jwt_claims c, v;
    pthread_t th[3];
    void *bad;
    char *t;
    int i;

    (void)state;
    sample_claims(&c);
    for (i = 0; i < N_KEYS; i++) {
        assert_int_equal(pt_jwt_key_generate(&ring[i]), 0);
        assert_int_equal(pt_jwt_sign(ring[i], &c, &ring_tokens[i]), 0);
    }
    for (i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, verify_ring, NULL), 0);
    assert_null(verify_ring(NULL));
    for (i = 0; i < 3; i++) {
        pthread_join(th[i], &bad);
        assert_null(bad);
    }
    /* a token under key 0's kid signed by key 1 fails even with both keys parsed */
    t = strdup(ring_tokens[1]);
    memcpy(t, ring_tokens[0], (size_t)(strchr(ring_tokens[0], '.') - ring_tokens[0]));
    assert_int_equal(pt_jwt_verify(t, strlen(t), AUD, NOW, ring_lookup, NULL, &v),
                     PT_E_UNAUTHORIZED);
    free(t);
    pt_jwt_pubkey_cache_clear();
    assert_int_equal(
        pt_jwt_verify(ring_tokens[0], strlen(ring_tokens[0]), AUD, NOW, ring_lookup, NULL, &v), 0);
    for (i = 0; i < N_KEYS; i++) {
        free(ring_tokens[i]);
        pt_jwt_key_free(ring[i]);
    }
    pt_jwt_pubkey_cache_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kid),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_sign_refusals),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_alg),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_claims_refusals),
        cmocka_unit_test(test_shape_and_size),
        cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_generate_and_jti),
        cmocka_unit_test(test_many_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
