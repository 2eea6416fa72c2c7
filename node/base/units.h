/*
 * units.h - sizes, durations and booleans as the operator writes them.
 *
 *   sizes      plain bytes or an integer with a KiB, MiB, GiB or TiB suffix ("64GiB")
 *   durations  plain seconds or an integer with an s, m or h suffix ("90", "30m", "24h")
 *   booleans   true/false, yes/no, on/off (any case)
 *
 * s is borrowed and must match the whole syntax (no surrounding space); results are written
 * only on success. Pure functions: any thread.
 */
#ifndef PT_UNITS_H
#define PT_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* The units, in bytes and in milliseconds. */
#define PT_KIB     (UINT64_C(1) << 10)
#define PT_MIB     (UINT64_C(1) << 20)
#define PT_GIB     (UINT64_C(1) << 30)
#define PT_TIB     (UINT64_C(1) << 40)
#define PT_SEC_MS  UINT64_C(1000)
#define PT_MIN_MS  (60 * PT_SEC_MS)
#define PT_HOUR_MS (60 * PT_MIN_MS)
#define PT_DAY_MS  (24 * PT_HOUR_MS)

/* Parses the leading decimal digits of s (at least one) into *v without overflow; *end
 * points past them. Returns 0, or -1 when s starts with no digit or the number overflows. */
int pt_units_parse_digits(const char *s, const char **end, uint64_t *v);

/* Each returns 0 or PT_E_CONFIG (bad syntax or overflow). */
int pt_units_parse_size(const char *s, uint64_t *bytes);
int pt_units_parse_duration(const char *s, uint64_t *ms);
int pt_units_parse_bool(const char *s, int *out);

/* Writes v into buf (borrowed, len bytes) with the largest unit that divides it exactly
 * ("4MiB", "1000"; "24h", "90s", "1500ms") and returns buf. */
const char *pt_units_format_size(uint64_t v, char *buf, size_t len);
const char *pt_units_format_duration(uint64_t ms, char *buf, size_t len);

#endif
