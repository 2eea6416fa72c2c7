/*
 * fuzz_digest.c - libFuzzer driver for node/oci/digest.h.
 *
 * The whole input is offered to pt_digest_parse as a digest string, and the parse result is
 * checked against an independent statement of what digest.h promises to accept: exactly
 * "sha256:" followed by 64 characters of [0-9a-f], or "sha512:" followed by 128, nothing else. On
 * success the formatted digest must reproduce the input byte for byte; on failure the output must
 * be untouched.
 *
 * The same input is then hashed with both algorithms (pt_digest_of_algo, and in two slices
 * through pt_digest_stream, which must agree) and its first 32 bytes, when present, are
 * used as a raw value (pt_digest_from_raw); both results must satisfy the struct's invariant,
 * format to a string that parses back to an equal digest, and (for the raw value) decode back
 * to the original bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "digest.h"
#include "err.h"
#include "fuzz_check.h"

static int is_lower_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int hex_value(unsigned char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

/* The struct invariant from digest.h: 64 (sha256) or 128 (sha512) lowercase hex characters,
 * then a NUL. */
static void check_digest(const struct pt_digest *d)
{
    size_t i, n;

    PT_FUZZ_CHECK(d->algo == PT_DIGEST_SHA256 || d->algo == PT_DIGEST_SHA512);
    n = d->algo == PT_DIGEST_SHA256 ? 64 : 128;
    for (i = 0; i < n; i++)
        PT_FUZZ_CHECK(is_lower_hex((unsigned char)d->hex[i]));
    PT_FUZZ_CHECK(d->hex[n] == '\0');
}

/* What pt_digest_parse must accept, written without the grammar it checks first. */
static int expect_valid(const uint8_t *s, size_t len)
{
    size_t i;

    if (!(len == 7 + 64 && memcmp(s, "sha256:", 7) == 0) &&
        !(len == 7 + 128 && memcmp(s, "sha512:", 7) == 0))
        return 0;
    for (i = 7; i < len; i++) {
        if (!is_lower_hex(s[i]))
            return 0;
    }
    return 1;
}

/* Formatting d and parsing the text back yields d again. */
static void check_round_trip(const struct pt_digest *d)
{
    char text[PT_DIGEST_STR_MAX + 1];
    struct pt_digest back;
    size_t n = 7 + pt_digest_hex_len(d->algo);

    memset(text, 'X', sizeof(text));
    PT_FUZZ_CHECK(pt_digest_format(d, text) == n);
    PT_FUZZ_CHECK(text[n] == '\0');
    PT_FUZZ_CHECK(strlen(text) == n);
    PT_FUZZ_CHECK(pt_digest_parse(text, n, &back) == 0);
    PT_FUZZ_CHECK(pt_digest_equal(d, &back));
    PT_FUZZ_CHECK(memcmp(d->hex, back.hex, pt_digest_hex_len(d->algo)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pt_digest d, untouched;
    int rc;

    memset(&d, 0x5a, sizeof(d));
    untouched = d;
    rc = pt_digest_parse((const char *)data, size, &d);
    PT_FUZZ_CHECK(rc == 0 || rc == PT_E_DIGEST_INVALID);
    if (rc == 0) {
        char text[PT_DIGEST_STR_MAX + 1];

        PT_FUZZ_CHECK(expect_valid(data, size));
        check_digest(&d);
        pt_digest_format(&d, text);
        PT_FUZZ_CHECK(memcmp(text, data, size) == 0);
        PT_FUZZ_CHECK(pt_digest_equal(&d, &d));
    } else {
        PT_FUZZ_CHECK(!expect_valid(data, size));
        PT_FUZZ_CHECK(memcmp(&d, &untouched, sizeof(d)) == 0);
    }

    pt_digest_of(data, size, &d);
    check_digest(&d);
    check_round_trip(&d);
    for (int a = 0; a < PT_DIGEST_ALGO_COUNT; a++) {
        struct pt_digest one, streamed;
        struct pt_digest_stream st;
        pt_digest_of_algo(data, size, (enum pt_digest_algo)a, &one);
        PT_FUZZ_CHECK(one.algo == (enum pt_digest_algo)a);
        check_digest(&one);
        check_round_trip(&one);
        PT_FUZZ_CHECK(pt_digest_stream_init(&st, (enum pt_digest_algo)a) == 0);
        PT_FUZZ_CHECK(pt_digest_stream_update(&st, data, size / 2) == 0);
        PT_FUZZ_CHECK(pt_digest_stream_update(&st, data + size / 2, size - size / 2) == 0);
        PT_FUZZ_CHECK(pt_digest_stream_final(&st, &streamed) == 0);
        PT_FUZZ_CHECK(pt_digest_equal(&one, &streamed));
    }

    if (size >= PT_DIGEST_RAW_LEN) {
        size_t i;

        pt_digest_from_raw(data, &d);
        check_digest(&d);
        check_round_trip(&d);
        for (i = 0; i < PT_DIGEST_RAW_LEN; i++) {
            int v = hex_value((unsigned char)d.hex[2 * i]) * 16 +
                    hex_value((unsigned char)d.hex[2 * i + 1]);
            PT_FUZZ_CHECK(v == data[i]);
        }
    }
    return 0;
}
