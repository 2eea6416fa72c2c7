/*
 * range.h - byte ranges in upload (Content-Range) and download (Range) requests.
 *
 * Both parsers take the header value as h2o hands it over (length-delimited, surrounding
 * whitespace already trimmed), accept decimal digits only, and never overflow: a number that
 * does not fit in uint64_t is rejected (Content-Range) or saturated (Range, where a huge
 * first-pos is simply unsatisfiable and a huge last-pos or suffix covers the whole blob).
 * Header values longer than PT_RANGE_HEADER_MAX are refused.
 */
#ifndef PT_RANGE_H
#define PT_RANGE_H

#include <stddef.h>
#include <stdint.h>

#define PT_RANGE_HEADER_MAX 256

/*
 * PATCH Content-Range (distribution-spec, "Pushing a blob in chunks": "<start>-<end>",
 * inclusive). Also accepted: "bytes <start>-<end>/<total>" (RFC 9110 form, where total must
 * exceed end, or be an asterisk for unknown) and "bytes=<start>-<end>". Requires end >= start.
 * Returns 0 with *start and *end set, or PT_E_RANGE_INVALID (outputs untouched). s, start, end
 * borrowed.
 */
int pt_content_range_parse(const char *s, size_t len, uint64_t *start, uint64_t *end);

/*
 * GET Range (RFC 9110 section 14.2) against a blob of `size` bytes. One range only:
 * "bytes=a-b", "bytes=a-", "bytes=-n" (unit compared case-insensitively); b is clamped to
 * size - 1 and a suffix longer than the blob selects all of it. Returns:
 *   0                   with [*start, *end] inclusive;
 *   PT_E_RANGE_INVALID  unsatisfiable: a >= size, n == 0, or size == 0 (send 416);
 *   1                   not understood: other unit, bad syntax, b < a, several ranges, or
 *                       longer than PT_RANGE_HEADER_MAX (ignore the header, send 200).
 * s, start, end borrowed; outputs are written only when 0 is returned.
 */
int pt_range_parse(const char *s, size_t len, uint64_t size, uint64_t *start, uint64_t *end);

#endif
