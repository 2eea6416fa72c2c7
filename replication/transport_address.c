/*
 * transport_address.c - the address syntax of the raft transport.
 *
 * Role: one parser for "host:port" (pt_transport_parse_address, transport.h) that every
 * address the replication layer accepts goes through: the raft address given to raft_init,
 * the bind address, routes, the address a HELLO announces, the peers' addresses (peer.c).
 * It only checks syntax and bounds; names are resolved where they are used (the connect and
 * listen pieces). Also turns a socket address back into text for logs.
 *
 * Design: a character-class check per form ("name:port", "a.b.c.d:port", "[v6%zone]:port"),
 * a mandatory decimal port 1..65535, and the length limits of transport.h, so an address that
 * passes fits every buffer sized from PT_HOST_MAX / PT_CLUSTER_ADDRESS_MAX.
 * Pure functions: no state, any thread.
 */
#include "transport.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "transport_int.h"

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_name_char(char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '.' ||
           ch == '-' || ch == '_';
}

static bool is_v6_char(char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') || ch == ':' ||
           ch == '.';
}

/* "ip:port" or "[ip]:port" of sa, or "?" when it has no printable form. */
void transport_sockaddr_text(const struct sockaddr *sa, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN + 16];
    if (uv_ip_name(sa, ip, sizeof(ip)) != 0) {
        snprintf(buf, size, "?");
    } else if (sa->sa_family == AF_INET6) {
        snprintf(buf, size, "[%s]:%u", ip,
                 (unsigned)ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
    } else {
        snprintf(buf, size, "%s:%u", ip,
                 (unsigned)ntohs(((const struct sockaddr_in *)sa)->sin_port));
    }
}

int pt_transport_parse_address(const char *address, char *host, size_t host_size, unsigned *port)
{
    const char *h, *p;
    size_t len, hlen, plen;
    unsigned long value = 0;

    if (address == NULL || host == NULL || port == NULL)
        return PT_E_CONFIG;
    len = strnlen(address, PT_CLUSTER_ADDRESS_MAX + 1);
    if (len == 0 || len > PT_CLUSTER_ADDRESS_MAX)
        return PT_E_CONFIG;
    if (address[0] == '[') {
        const char *end = memchr(address, ']', len);
        const char *zone;
        if (end == NULL || end[1] != ':')
            return PT_E_CONFIG;
        h = address + 1;
        hlen = (size_t)(end - h);
        p = end + 2;
        zone = memchr(h, '%', hlen);
        for (const char *s = h; s < (zone != NULL ? zone : end); s++) {
            if (!is_v6_char(*s))
                return PT_E_CONFIG;
        }
        if (zone != NULL) {
            if (zone + 1 == end)
                return PT_E_CONFIG;
            for (const char *s = zone + 1; s < end; s++) {
                if (!is_name_char(*s))
                    return PT_E_CONFIG;
            }
        }
        if (memchr(h, ':', hlen) == NULL)
            return PT_E_CONFIG;
    } else {
        const char *colon = strrchr(address, ':');
        if (colon == NULL)
            return PT_E_CONFIG;
        h = address;
        hlen = (size_t)(colon - address);
        p = colon + 1;
        for (size_t i = 0; i < hlen; i++) {
            if (!is_name_char(h[i]))
                return PT_E_CONFIG;
        }
    }
    if (hlen == 0 || hlen > PT_HOST_MAX || hlen >= host_size)
        return PT_E_CONFIG;
    plen = strlen(p);
    if (plen == 0 || plen > 5)
        return PT_E_CONFIG;
    for (size_t i = 0; i < plen; i++) {
        if (!is_digit(p[i]))
            return PT_E_CONFIG;
        value = value * 10 + (unsigned long)(p[i] - '0');
    }
    if (value == 0 || value > 65535)
        return PT_E_CONFIG;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (unsigned)value;
    return 0;
}
