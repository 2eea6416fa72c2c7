/*
 * units.c - the one syntax of sizes, durations and booleans, shared by the serve settings, the
 * cluster file, the admin API input and the command-line client.
 *
 * Design: a number is plain decimal digits with an optional unit suffix from a fixed list,
 * checked for overflow digit by digit; nothing here allocates or keeps state, so every
 * function may be called from any thread.
 */
#include "units.h"

#include "err.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int pt_units_parse_digits(const char *s, const char **end, uint64_t *v)
{
    uint64_t n = 0;
    const char *p = s;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            return -1;
        n = n * 10 + d;
    }
    *end = p;
    *v = n;
    return 0;
}

static int parse_scaled(const char *s, const char *const *units, const uint64_t *scales,
                        size_t nunits, uint64_t *out)
{
    const char *end;
    uint64_t n;

    if (s == NULL || pt_units_parse_digits(s, &end, &n) != 0)
        return PT_E_CONFIG;
    for (size_t i = 0; i < nunits; i++) {
        if (strcmp(end, units[i]) != 0)
            continue;
        if (scales[i] != 0 && n > UINT64_MAX / scales[i])
            return PT_E_CONFIG;
        *out = n * scales[i];
        return 0;
    }
    return PT_E_CONFIG;
}

int pt_units_parse_size(const char *s, uint64_t *bytes)
{
    static const char *const units[] = {"", "KiB", "MiB", "GiB", "TiB"};
    static const uint64_t scales[] = {1, PT_KIB, PT_MIB, PT_GIB, PT_TIB};

    return parse_scaled(s, units, scales, 5, bytes);
}

int pt_units_parse_duration(const char *s, uint64_t *ms)
{
    static const char *const units[] = {"", "s", "m", "h"};
    static const uint64_t scales[] = {PT_SEC_MS, PT_SEC_MS, PT_MIN_MS, PT_HOUR_MS};

    return parse_scaled(s, units, scales, 4, ms);
}

int pt_units_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};

    if (s == NULL)
        return PT_E_CONFIG;
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return PT_E_CONFIG;
}

const char *pt_units_format_size(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    static const uint64_t scales[] = {PT_TIB, PT_GIB, PT_MIB, PT_KIB};

    for (size_t i = 0; i < 4; i++) {
        if (v != 0 && v % scales[i] == 0) {
            snprintf(buf, len, "%llu%s", (unsigned long long)(v / scales[i]), units[i]);
            return buf;
        }
    }
    snprintf(buf, len, "%llu", (unsigned long long)v);
    return buf;
}

const char *pt_units_format_duration(uint64_t ms, char *buf, size_t len)
{
    if (ms != 0 && ms % PT_HOUR_MS == 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(ms / PT_HOUR_MS));
    else if (ms != 0 && ms % PT_MIN_MS == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(ms / PT_MIN_MS));
    else if (ms % PT_SEC_MS == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / PT_SEC_MS));
    else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
    return buf;
}
