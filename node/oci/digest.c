/*
 * digest.c - parsing, formatting and computing sha256 and sha512 digests.
 *
 * The parser first checks the full OCI image-spec digest grammar, then narrows to the two
 * registered algorithms Portolan stores. Checking the grammar first is not redundant: it keeps
 * the rule "anything that is not a well-formed sha256 or sha512 digest is DIGEST_INVALID" in
 * one place and documents which inputs are merely unsupported (e.g. "blake3:...") versus
 * malformed. Both map to the same error, as the distribution-spec asks for an unusable digest.
 * The algorithms' names and lengths live in one table (algos[]).
 *
 * No allocation outside the streaming hasher (one EVP_MD_CTX); inputs are length-delimited
 * and bounded by PT_DIGEST_INPUT_MAX.
 */
#include "digest.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "err.h"

/* Indexed by enum pt_digest_algo. */
static const struct algo_info {
    const char *name; /* as it prefixes the digest string */
    size_t hex_len;
} algos[PT_DIGEST_ALGO_COUNT] = {
    [PT_DIGEST_SHA256] = {"sha256", PT_DIGEST_SHA256_HEX_LEN},
    [PT_DIGEST_SHA512] = {"sha512", PT_DIGEST_SHA512_HEX_LEN},
};
#define ALGO_NAME_LEN 6 /* both names */

static const EVP_MD *algo_md(enum pt_digest_algo algo)
{
    return algo == PT_DIGEST_SHA512 ? EVP_sha512() : EVP_sha256();
}

static void hex_of(const unsigned char *raw, size_t n, char *hex)
{
    static const char hexdigits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = hexdigits[raw[i] >> 4];
        hex[2 * i + 1] = hexdigits[raw[i] & 0x0f];
    }
    hex[2 * n] = '\0';
}

static int is_lower_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_encoded_char(unsigned char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '=' || c == '_' || c == '-';
}

static int is_algo_separator(unsigned char c)
{
    return c == '+' || c == '.' || c == '_' || c == '-';
}

/* Length of the algorithm part if s[0..len) matches the grammar, else 0. */
static size_t match_grammar(const unsigned char *s, size_t len)
{
    size_t i = 0;
    size_t algo_len;

    /* algorithm ::= component (separator component)* */
    for (;;) {
        size_t start = i;
        while (i < len && is_lower_alnum(s[i]))
            i++;
        if (i == start)
            return 0;
        if (i < len && is_algo_separator(s[i])) {
            i++;
            continue;
        }
        break;
    }
    if (i >= len || s[i] != ':')
        return 0;
    algo_len = i++;
    /* encoded ::= [a-zA-Z0-9=_-]+ */
    if (i == len)
        return 0;
    for (; i < len; i++) {
        if (!is_encoded_char(s[i]))
            return 0;
    }
    return algo_len;
}

size_t pt_digest_hex_len(enum pt_digest_algo algo)
{
    return algos[algo].hex_len;
}

const char *pt_digest_algo_name(enum pt_digest_algo algo)
{
    return algos[algo].name;
}

int pt_digest_parse(const char *s, size_t len, struct pt_digest *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t algo_len, hex_len, i;
    int a;

    if (s == NULL || len == 0 || len > PT_DIGEST_INPUT_MAX)
        return PT_E_DIGEST_INVALID;
    algo_len = match_grammar(u, len);
    if (algo_len != ALGO_NAME_LEN)
        return PT_E_DIGEST_INVALID;
    for (a = 0; a < PT_DIGEST_ALGO_COUNT; a++) {
        if (memcmp(s, algos[a].name, ALGO_NAME_LEN) == 0)
            break;
    }
    if (a == PT_DIGEST_ALGO_COUNT)
        return PT_E_DIGEST_INVALID;
    hex_len = algos[a].hex_len;
    if (len != ALGO_NAME_LEN + 1 + hex_len)
        return PT_E_DIGEST_INVALID;
    for (i = ALGO_NAME_LEN + 1; i < len; i++) {
        unsigned char c = u[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return PT_E_DIGEST_INVALID;
    }
    out->algo = (enum pt_digest_algo)a;
    memcpy(out->hex, s + ALGO_NAME_LEN + 1, hex_len);
    out->hex[hex_len] = '\0';
    return 0;
}

size_t pt_digest_format(const struct pt_digest *d, char *out)
{
    size_t hex_len = algos[d->algo].hex_len;
    memcpy(out, algos[d->algo].name, ALGO_NAME_LEN);
    out[ALGO_NAME_LEN] = ':';
    memcpy(out + ALGO_NAME_LEN + 1, d->hex, hex_len);
    out[ALGO_NAME_LEN + 1 + hex_len] = '\0';
    return ALGO_NAME_LEN + 1 + hex_len;
}

void pt_digest_from_raw(const unsigned char raw[PT_DIGEST_RAW_LEN], struct pt_digest *out)
{
    out->algo = PT_DIGEST_SHA256;
    hex_of(raw, PT_DIGEST_RAW_LEN, out->hex);
}

void pt_digest_of_algo(const void *buf, size_t len, enum pt_digest_algo algo, struct pt_digest *out)
{
    unsigned char raw[EVP_MAX_MD_SIZE];
    unsigned int raw_len = 0;
    static const unsigned char empty;
    size_t want = algos[algo].hex_len / 2;

    if (buf == NULL)
        buf = &empty; /* len is 0 here; EVP wants a valid pointer all the same */
    /* EVP_Digest can only fail when it cannot allocate its context; the low-level SHA256()
     * and SHA512() keep their state on the stack and cannot fail, so they are the fallback. */
    if (EVP_Digest(buf, len, raw, &raw_len, algo_md(algo), NULL) != 1 || raw_len != want) {
        if (algo == PT_DIGEST_SHA512)
            SHA512(buf, len, raw);
        else
            SHA256(buf, len, raw);
    }
    out->algo = algo;
    hex_of(raw, want, out->hex);
}

void pt_digest_of(const void *buf, size_t len, struct pt_digest *out)
{
    pt_digest_of_algo(buf, len, PT_DIGEST_SHA256, out);
}

int pt_digest_stream_init(struct pt_digest_stream *st, enum pt_digest_algo algo)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return PT_E_NOMEM;
    if (EVP_DigestInit_ex(ctx, algo_md(algo), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return PT_E_NOMEM;
    }
    st->algo = algo;
    st->ctx = ctx;
    return 0;
}

int pt_digest_stream_update(struct pt_digest_stream *st, const void *buf, size_t len)
{
    return EVP_DigestUpdate(st->ctx, buf, len) == 1 ? 0 : PT_E_INTERNAL;
}

int pt_digest_stream_final(struct pt_digest_stream *st, struct pt_digest *out)
{
    unsigned char raw[EVP_MAX_MD_SIZE];
    unsigned int raw_len = 0;
    int ok =
        EVP_DigestFinal_ex(st->ctx, raw, &raw_len) == 1 && raw_len == algos[st->algo].hex_len / 2;
    pt_digest_stream_free(st);
    if (!ok)
        return PT_E_INTERNAL;
    out->algo = st->algo;
    hex_of(raw, raw_len, out->hex);
    return 0;
}

void pt_digest_stream_free(struct pt_digest_stream *st)
{
    EVP_MD_CTX_free(st->ctx);
    st->ctx = NULL;
}

int pt_digest_equal(const struct pt_digest *a, const struct pt_digest *b)
{
    return a->algo == b->algo && memcmp(a->hex, b->hex, algos[a->algo].hex_len) == 0;
}
