/*
 * query.h - reading parameters from a URL query string.
 *
 * The query is the part after '?', without the '?', as application/x-www-form-urlencoded
 * pairs "key=value" joined by '&'. Keys and values are percent-decoded and '+' reads as a
 * space. Lookups are linear scans: queries on registry routes carry a handful of parameters
 * (n, last, digest, mount, from, artifactType), and the whole query is bounded by
 * PT_QUERY_MAX.
 */
#ifndef PT_QUERY_H
#define PT_QUERY_H

#include <stddef.h>

#define PT_QUERY_MAX      8192 /* longest query string read; longer ones are refused */
#define PT_QUERY_N_DIGITS 10   /* longest pagination count, in decimal digits */

/*
 * Find the idx-th occurrence (0-based) of key (NUL-terminated, compared with each decoded key)
 * in q[0..qlen) and decode its value into out (capacity cap, NUL included). A pair without '='
 * has an empty value. Returns the value's length (>= 0), or:
 *   PT_E_NOT_FOUND  no such occurrence (pairs whose key is badly encoded never match);
 *   PT_E_TOO_LARGE  qlen > PT_QUERY_MAX, the value does not fit in cap, it has a bad '%'
 *                   escape, or it decodes to a NUL byte (out is then unspecified).
 * q, key and out are borrowed; q need not be NUL-terminated.
 */
int pt_query_get(const char *q, size_t qlen, const char *key, size_t idx, char *out, size_t cap);

/*
 * Pagination parameters (distribution-spec, sections "Listing Tags" and catalog listing):
 *   n:    absent -> *n = dflt; otherwise a decimal integer of 1..PT_QUERY_N_DIGITS digits, no
 *         sign or spaces; values above max are clamped to max.
 *   last: decoded into last (capacity last_cap >= 1, NUL included); absent -> last[0] = 0.
 * The first occurrence of each key is used. Returns 0, or PT_E_PAGINATION_NUMBER_INVALID for
 * an n that is not such a number, and for a last that does not decode or fit in last_cap.
 * q, n and last are borrowed.
 */
int pt_query_pagination(const char *q, size_t qlen, size_t dflt, size_t max, size_t *n, char *last,
                        size_t last_cap);

#endif
