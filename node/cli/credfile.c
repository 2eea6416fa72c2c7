/*
 * credfile.c - finding a URL's user and password in a registry client's auth file
 * (credfile.h).
 *
 * Design: the file is parsed whole with jansson (it is bounded by CLI_AUTHFILE_MAX); every
 * key of "auths" is reduced to its host:port (scheme prefix and path dropped) and compared
 * with the URL's; the first match wins. Only the "auth" member is read (base64 of
 * "user:password", split at the first ':'); identity tokens and credential helpers are not
 * spoken. Nothing here prints: a caller names the file, never the secret.
 */
#include "credfile.h"

#include <ctype.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>

long cli_base64_decode(const char *in, size_t len, unsigned char *out, size_t max)
{
    unsigned acc = 0;
    int bits = 0;
    size_t n = 0, pad = 0;

    while (len > 0 && in[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (pad > 0 && (len + pad) % 4 != 0)
        return -1;
    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        unsigned v;

        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else
            return -1;
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == max)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (long)n;
}

int cli_url_authority(const char *url, char *out, size_t size, char *alt, size_t alt_size)
{
    const char *p, *end, *at, *colon;
    const char *dflt;
    size_t n;

    if (size == 0 || alt_size == 0)
        return -1;
    out[0] = alt[0] = '\0';
    if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
        dflt = "80";
    } else if (strncasecmp(url, "https://", 8) == 0) {
        p = url + 8;
        dflt = "443";
    } else {
        return -1;
    }
    end = p + strcspn(p, "/?#");
    at = memchr(p, '@', (size_t)(end - p));
    if (at != NULL)
        p = at + 1;
    n = (size_t)(end - p);
    if (n == 0 || n >= size || n >= CLI_AUTHORITY_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)p[i]);
    out[n] = '\0';
    /* The port follows the last ':' unless it is inside an IPv6 literal's brackets. */
    colon = strrchr(out, ':');
    if (colon != NULL && strchr(colon, ']') != NULL)
        colon = NULL;
    if (colon == NULL) {
        if (n >= alt_size)
            return -1;
        memcpy(alt, out, n + 1);
    } else if (strcmp(colon + 1, dflt) == 0) {
        size_t h = (size_t)(colon - out);
        if (h >= alt_size)
            return -1;
        memcpy(alt, out, h);
        alt[h] = '\0';
    }
    return 0;
}

/* Does auths key k name authority a (or alt)? */
static int key_matches(const char *k, const char *a, const char *alt)
{
    size_t n;

    if (strncasecmp(k, "https://", 8) == 0)
        k += 8;
    else if (strncasecmp(k, "http://", 7) == 0)
        k += 7;
    n = strcspn(k, "/");
    if (n == strlen(a) && strncasecmp(k, a, n) == 0)
        return 1;
    return alt[0] != '\0' && n == strlen(alt) && strncasecmp(k, alt, n) == 0;
}

int cli_authfile_find(const char *data, size_t len, const char *authority, const char *alt,
                      char *user, char *secret, const char **why)
{
    /* base64 of the longest "user:secret" */
    unsigned char raw[CLI_USER_MAX + 1 + CLI_SECRET_MAX];
    json_t *doc, *auths, *entry;
    const char *key;
    int rc = 1;

    secret[0] = user[0] = '\0';
    if (len > CLI_AUTHFILE_MAX) {
        *why = "file larger than 1 MiB";
        return -1;
    }
    doc = json_loadb(data, len, 0, NULL);
    if (!json_is_object(doc)) {
        *why = "not a JSON object";
        json_decref(doc);
        return -1;
    }
    auths = json_object_get(doc, "auths");
    json_object_foreach(auths, key, entry)
    {
        const json_t *a = json_object_get(entry, "auth");
        const char *colon;
        long n;

        if (!key_matches(key, authority, alt))
            continue;
        if (!json_is_string(a)) {
            continue; /* an entry for a credential helper or identity token: not ours */
        }
        n = cli_base64_decode(json_string_value(a), json_string_length(a), raw, sizeof raw);
        colon = n > 0 ? memchr(raw, ':', (size_t)n) : NULL;
        if (colon == NULL || colon == (const char *)raw) {
            *why = "the entry's \"auth\" is not base64 of user:password";
            rc = -1;
            break;
        }
        size_t ulen = (size_t)(colon - (const char *)raw), slen = (size_t)n - ulen - 1;
        if (ulen > CLI_USER_MAX || slen > CLI_SECRET_MAX || memchr(raw, '\0', (size_t)n)) {
            *why = "the entry's user or password is too long or holds a NUL byte";
            rc = -1;
            break;
        }
        memcpy(user, raw, ulen);
        user[ulen] = '\0';
        memcpy(secret, colon + 1, slen);
        secret[slen] = '\0';
        rc = 0;
        break;
    }
    explicit_bzero(raw, sizeof raw);
    json_decref(doc);
    if (rc != 0)
        user[0] = secret[0] = '\0';
    return rc;
}
