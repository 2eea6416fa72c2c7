/*
 * addr.h - the one host:port grammar, and the checks of a peer address and a client URL built
 * on it.
 *
 *   host:port   an IPv4 literal, an RFC 1123 hostname (at most PT_HOST_MAX bytes) or a
 *               bracketed IPv6 literal, then ':' and a port 1..65535
 *   peer        host:port at most PT_CLUSTER_ADDRESS_MAX bytes, not 0.0.0.0 or [::]
 *   url         http:// or https:// then host[:port], at most PT_CLUSTER_URL_MAX bytes,
 *               nothing after the authority (no path, query, fragment or user information)
 *
 * Strings are borrowed; nothing is kept. Pure functions: any thread.
 */
#ifndef PT_ADDR_H
#define PT_ADDR_H

#include <stddef.h>

/*
 * Parses s as host:port. host (borrowed, hostlen bytes; may be NULL) receives the host
 * without brackets, NUL-terminated; port (may be NULL) the port. Returns 0, or PT_E_CONFIG
 * with a static reason in *why (why may be NULL) when s is malformed or the host does not fit.
 */
int pt_addr_parse(const char *s, char *host, size_t hostlen, unsigned *port, const char **why);

/* 1 if host (without brackets) is 0.0.0.0 or ::, the addresses that mean "every interface". */
int pt_addr_is_wildcard(const char *host);

/* 1 if host (without brackets) is a loopback address: an IPv4 literal in 127.0.0.0/8, ::1, or
 * "localhost". Names other than "localhost" are not resolved: they count as not loopback. */
int pt_addr_is_loopback(const char *host);

/* Checks s as a peer address and as a client URL (above). Each returns 0, or PT_E_CONFIG with
 * a static reason in *why (why may be NULL). */
int pt_addr_check_peer(const char *s, const char **why);
int pt_addr_check_url(const char *s, const char **why);

#endif
