/*
 * addr.c - the one host:port grammar (serve's --listen and --raft-listen, a region's address in
 * the cluster file, the authority of a region's URL).
 *
 * A host is an IPv4 literal, an RFC 1123 hostname or a bracketed IPv6 literal; the port is
 * 1..65535. Pure functions: any thread.
 */
#include "addr.h"

#include "err.h"
#include "bounds.h"
#include "units.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* RFC 1123 hostname: dot-separated labels of [A-Za-z0-9-], no label starting or ending in
 * '-', and a last label that is not all digits (that would be a mistyped IPv4 address). */
static bool valid_hostname(const char *h, size_t len)
{
    size_t label = 0;
    bool all_digits = true;

    if (len == 0 || len > PT_HOST_MAX)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char ch = i < len ? h[i] : '.';
        if (ch == '.') {
            if (label == 0 || h[i - 1] == '-')
                return false;
            if (i == len && all_digits)
                return false;
            label = 0;
            all_digits = true;
            continue;
        }
        bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
        bool digit = ch >= '0' && ch <= '9';
        if (!alpha && !digit && ch != '-')
            return false;
        if (ch == '-' && label == 0)
            return false;
        if (!digit)
            all_digits = false;
        if (++label > PT_HOST_LABEL_MAX)
            return false;
    }
    return true;
}

/*
 * Splits host:port. Returns NULL on success (host copied without brackets when host is
 * non-NULL), else a static reason.
 */
static const char *split(const char *s, char *host, size_t hostlen, unsigned *port)
{
    const char *h, *colon, *end;
    size_t hlen;
    uint64_t p;
    char tmp[PT_HOST_MAX + 1];

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL)
            return "missing ']' after IPv6 address";
        h = s + 1;
        hlen = (size_t)(close - h);
        if (close[1] != ':')
            return "expected ':PORT' after ']'";
        colon = close + 1;
        if (hlen == 0 || hlen >= INET6_ADDRSTRLEN)
            return "invalid IPv6 address";
        memcpy(tmp, h, hlen);
        tmp[hlen] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            return "invalid IPv6 address";
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return "expected HOST:PORT";
        h = s;
        hlen = (size_t)(colon - s);
        if (memchr(h, ':', hlen) != NULL)
            return "IPv6 addresses must be written in brackets, e.g. [::1]:5000";
        if (hlen == 0)
            return "missing host (use 0.0.0.0 or [::] for all addresses)";
        if (hlen > PT_HOST_MAX)
            return "host name too long";
        memcpy(tmp, h, hlen);
        tmp[hlen] = '\0';
        struct in_addr a4;
        if (inet_pton(AF_INET, tmp, &a4) != 1 && !valid_hostname(h, hlen))
            return "invalid host (expected an IPv4 address, a hostname or [IPv6])";
    }
    if (pt_units_parse_digits(colon + 1, &end, &p) != 0 || *end != '\0' || end - (colon + 1) > 5)
        return "port must be a number";
    if (p < 1 || p > 65535)
        return "port out of range 1..65535";
    if (host != NULL) {
        if (hlen >= hostlen)
            return "host does not fit";
        memcpy(host, h, hlen);
        host[hlen] = '\0';
    }
    if (port != NULL)
        *port = (unsigned)p;
    return NULL;
}

int pt_addr_parse(const char *s, char *host, size_t hostlen, unsigned *port, const char **why)
{
    const char *reason;

    if (s == NULL)
        reason = "missing address";
    else if (host != NULL && hostlen == 0)
        reason = "host does not fit";
    else
        reason = split(s, host, hostlen, port);
    if (why != NULL)
        *why = reason;
    return reason == NULL ? 0 : PT_E_CONFIG;
}

int pt_addr_is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

int pt_addr_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (strcmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

static int reason(const char **why, const char *text)
{
    if (why != NULL)
        *why = text;
    return text == NULL ? 0 : PT_E_CONFIG;
}

int pt_addr_check_peer(const char *s, const char **why)
{
    char host[PT_CLUSTER_ADDRESS_MAX + 1];
    const char *bad;

    if (s == NULL || s[0] == '\0')
        return reason(why, "must not be empty");
    if (strnlen(s, PT_CLUSTER_ADDRESS_MAX + 1) > PT_CLUSTER_ADDRESS_MAX)
        return reason(why, "longer than 261 bytes");
    if (pt_addr_parse(s, host, sizeof host, NULL, &bad) != 0)
        return reason(why, bad);
    if (pt_addr_is_wildcard(host))
        return reason(why, "must be an address peers can connect to, not 0.0.0.0 or [::]");
    return 0;
}

int pt_addr_check_url(const char *s, const char **why)
{
    char hostport[PT_CLUSTER_URL_MAX + 8];
    const char *auth, *bad;
    size_t n, alen;
    bool has_port;

    if (s == NULL || s[0] == '\0')
        return reason(why, "must not be empty");
    n = strnlen(s, PT_CLUSTER_URL_MAX + 1);
    if (n > PT_CLUSTER_URL_MAX)
        return reason(why, "longer than 511 bytes");
    if (strncasecmp(s, "http://", 7) == 0)
        auth = s + 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        auth = s + 8;
    else
        return reason(why, "must start with http:// or https://");
    alen = strcspn(auth, "/?#@");
    if (auth[alen] == '@')
        return reason(why, "must not carry user information");
    if (auth[alen] != '\0')
        return reason(why, "must be scheme://host[:port] with no path, query or fragment");
    if (alen == 0)
        return reason(why, "missing host");
    if (auth[0] == '[') {
        const char *close = memchr(auth, ']', alen);
        has_port = close != NULL && close + 1 < auth + alen;
    } else {
        has_port = memchr(auth, ':', alen) != NULL;
    }
    /* Without a port the host is checked as host:1, by the one host:port parser. */
    snprintf(hostport, sizeof hostport, "%.*s%s", (int)alen, auth, has_port ? "" : ":1");
    if (pt_addr_parse(hostport, NULL, 0, NULL, &bad) != 0)
        return reason(why, bad);
    return 0;
}
