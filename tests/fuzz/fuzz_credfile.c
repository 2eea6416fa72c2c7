/*
 * fuzz_credfile.c - libFuzzer driver for node/cli/credfile.h: the registry clients' auth
 * files the admin client reads credentials from.
 *
 * Input layout: the first line (up to the first '\n') is the URL given to --region, the rest
 * is the auth file. The URL goes through cli_url_authority, the file through
 * cli_authfile_find for the URL's host:port; the whole input is also decoded as base64.
 *
 * Checks beyond memory safety: an authority is non-empty, lower case, without '/', and alt is
 * "" or its host part; the lookup returns 0, 1 or -1, and on 0 a non-empty user without ':'
 * and both strings NUL-terminated within their bounds; on anything else the secret is
 * empty and -1 comes with a reason; base64 output never exceeds 3/4 of the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "credfile.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    size_t ulen = nl ? (size_t)(nl - in) : size;
    char url[1024], a[CLI_AUTHORITY_MAX], alt[CLI_AUTHORITY_MAX];
    char user[CLI_USER_MAX + 1], secret[CLI_SECRET_MAX + 1];
    unsigned char raw[4096];
    const char *why = NULL;

    if (ulen >= sizeof url)
        ulen = sizeof url - 1;
    memcpy(url, in, ulen);
    url[ulen] = '\0';
    if (cli_url_authority(url, a, sizeof a, alt, sizeof alt) == 0) {
        size_t n = strlen(a);
        PT_FUZZ_CHECK(n > 0 && n < CLI_AUTHORITY_MAX);
        PT_FUZZ_CHECK(strchr(a, '/') == NULL);
        for (size_t i = 0; i < n; i++)
            PT_FUZZ_CHECK(!(a[i] >= 'A' && a[i] <= 'Z'));
        PT_FUZZ_CHECK(alt[0] == '\0' || strncmp(a, alt, strlen(alt)) == 0);
    } else {
        snprintf(a, sizeof a, "registry.example:5000");
        alt[0] = '\0';
    }
    const char *file = nl ? nl + 1 : in + size;
    size_t flen = (size_t)(in + size - file);
    int rc = cli_authfile_find(file, flen, a, alt, user, secret, &why);
    PT_FUZZ_CHECK(rc == 0 || rc == 1 || rc == -1);
    if (rc == 0) {
        PT_FUZZ_CHECK(memchr(user, '\0', sizeof user) != NULL);
        PT_FUZZ_CHECK(memchr(secret, '\0', sizeof secret) != NULL);
        PT_FUZZ_CHECK(user[0] != '\0' && strchr(user, ':') == NULL);
    } else {
        PT_FUZZ_CHECK(secret[0] == '\0');
        PT_FUZZ_CHECK(rc != -1 || why != NULL);
    }
    long n = cli_base64_decode(in, size < 5000 ? size : 5000, raw, sizeof raw);
    PT_FUZZ_CHECK(n >= -1);
    PT_FUZZ_CHECK(n < 0 || (size_t)n <= (size < 5000 ? size : 5000) * 3 / 4);
    return 0;
}
