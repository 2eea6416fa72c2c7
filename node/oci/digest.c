/*
 * digest.c - parsing, formatting and computing sha256 digests.
 *
 * The parser first checks the full OCI image-spec digest grammar, then narrows to the one
 * algorithm Portolan stores. Checking the grammar first is not redundant: it keeps the rule
 * "anything that is not a well-formed sha256 digest is DIGEST_INVALID" in one place and
 * documents which inputs are merely unsupported (e.g. "sha512:...") versus malformed. Both
 * map to the same error, as the distribution-spec asks for an unusable digest.
 *
 * No allocation; inputs are length-delimited and bounded by PT_DIGEST_INPUT_MAX.
 */
#include "digest.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "err.h"

static const char sha256_prefix[] = "sha256:";
#define SHA256_PREFIX_LEN (sizeof(sha256_prefix) - 1)

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

int pt_digest_parse(const char *s, size_t len, struct pt_digest *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t algo_len;
    size_t i;

    if (s == NULL || len == 0 || len > PT_DIGEST_INPUT_MAX)
        return PT_E_DIGEST_INVALID;
    algo_len = match_grammar(u, len);
    if (algo_len == 0)
        return PT_E_DIGEST_INVALID;
    if (algo_len != SHA256_PREFIX_LEN - 1 || memcmp(s, sha256_prefix, SHA256_PREFIX_LEN) != 0)
        return PT_E_DIGEST_INVALID;
    if (len != SHA256_PREFIX_LEN + PT_DIGEST_HEX_LEN)
        return PT_E_DIGEST_INVALID;
    for (i = SHA256_PREFIX_LEN; i < len; i++) {
        unsigned char c = u[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return PT_E_DIGEST_INVALID;
    }
    memcpy(out->hex, s + SHA256_PREFIX_LEN, PT_DIGEST_HEX_LEN);
    out->hex[PT_DIGEST_HEX_LEN] = '\0';
    return 0;
}

void pt_digest_format(const struct pt_digest *d, char *out)
{
    memcpy(out, sha256_prefix, SHA256_PREFIX_LEN);
    memcpy(out + SHA256_PREFIX_LEN, d->hex, PT_DIGEST_HEX_LEN);
    out[PT_DIGEST_STR_LEN] = '\0';
}

void pt_digest_from_raw(const unsigned char raw[PT_DIGEST_RAW_LEN], struct pt_digest *out)
{
    static const char hexdigits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < PT_DIGEST_RAW_LEN; i++) {
        out->hex[2 * i] = hexdigits[raw[i] >> 4];
        out->hex[2 * i + 1] = hexdigits[raw[i] & 0x0f];
    }
    out->hex[PT_DIGEST_HEX_LEN] = '\0';
}

void pt_digest_of(const void *buf, size_t len, struct pt_digest *out)
{
    unsigned char raw[EVP_MAX_MD_SIZE];
    unsigned int raw_len = 0;
    static const unsigned char empty;

    if (buf == NULL)
        buf = &empty; /* len is 0 here; EVP wants a valid pointer all the same */
    /* EVP_Digest can only fail when it cannot allocate its context; the low-level SHA256()
     * keeps its state on the stack and cannot fail, so it is the fallback. */
    if (EVP_Digest(buf, len, raw, &raw_len, EVP_sha256(), NULL) != 1 ||
        raw_len != PT_DIGEST_RAW_LEN)
        SHA256(buf, len, raw);
    pt_digest_from_raw(raw, out);
}

int pt_digest_equal(const struct pt_digest *a, const struct pt_digest *b)
{
    return memcmp(a->hex, b->hex, PT_DIGEST_HEX_LEN) == 0;
}
