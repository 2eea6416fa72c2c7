/*
 * table.c - what the admin client prints to the terminal: strings a server sent, cleaned of
 * anything but printable ASCII; table cells (counts, byte counts, ages); tables of columns as
 * wide as their widest entry; JSON documents.
 *
 * Invariant: a string that came from a server and is not checked by the cluster file's rules
 * goes through cli_clean before it is printed, so a region cannot send escape sequences to
 * the operator's terminal. Cells are filled by the commands; a table here only lays them out.
 */
#include "cli_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *cli_clean(char *dst, size_t dstlen, const char *s, size_t max)
{
    size_t n = 0;

    if (dstlen == 0)
        return dst;
    for (; s != NULL && s[n] != '\0' && n < max && n + 1 < dstlen; n++) {
        unsigned char ch = (unsigned char)s[n];
        dst[n] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    dst[n] = '\0';
    return dst;
}

const char *cli_num_cell(char *cell, size_t len, long long v)
{
    if (v < 0)
        snprintf(cell, len, "-");
    else
        snprintf(cell, len, "%lld", v);
    return cell;
}

const char *cli_bytes_cell(char *cell, size_t len, long long v)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double d = (double)v;
    size_t u = 0;

    if (v < 0) {
        snprintf(cell, len, "-");
        return cell;
    }
    if (v < 1024) {
        snprintf(cell, len, "%lldB", v);
        return cell;
    }
    d /= 1024;
    while (d >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        d /= 1024;
        u++;
    }
    snprintf(cell, len, "%.1f%s", d, units[u]);
    return cell;
}

const char *cli_age_cell(char *cell, size_t len, const json_t *v)
{
    double s = json_is_number(v) ? json_number_value(v) : -1;

    if (!(s > 0) || s > 1e9)
        snprintf(cell, len, "-");
    else if (s < 60)
        snprintf(cell, len, "%.1fs", s);
    else if (s < 3600)
        snprintf(cell, len, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(cell, len, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    return cell;
}

void cli_print_rows(FILE *out, const char *const *hdr, size_t ncol, const char *cells,
                    size_t cell_max, size_t n)
{
    size_t width[CLI_TABLE_COLUMNS_MAX] = {0};

    if (ncol > CLI_TABLE_COLUMNS_MAX)
        return; /* no caller has that many */
    for (size_t c = 0; c < ncol; c++)
        width[c] = strlen(hdr[c]);
    for (size_t i = 0; i < n; i++) {
        for (size_t c = 0; c < ncol; c++) {
            size_t w = strlen(cells + (i * ncol + c) * cell_max);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t i = 0; i <= n; i++) {
        for (size_t c = 0; c < ncol; c++)
            fprintf(out, "%-*s%s", c + 1 < ncol ? (int)width[c] : 0,
                    i == 0 ? hdr[c] : cells + ((i - 1) * ncol + c) * cell_max,
                    c + 1 < ncol ? "  " : "\n");
    }
}

void cli_print_json(FILE *out, json_t *doc)
{
    char *s = NULL;

    if (doc != NULL)
        s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    fprintf(out, "%s\n", s ? s : "{}");
    free(s);
}

const char *cli_grants_cell(char *buf, size_t len, const json_t *grants)
{
    size_t used = 0, i;
    const json_t *g;
    char pat[CLI_PATTERN_MAX + 1], act[64];

    if (len == 0)
        return buf;
    buf[0] = '\0';
    json_array_foreach(grants, i, g)
    {
        const json_t *acts = json_object_get(g, "actions"), *a;
        size_t j, alen = 0;
        int w;

        act[0] = '\0';
        json_array_foreach(acts, j, a)
        {
            const char *name = json_string_value(a);
            char c[16];
            if (name == NULL)
                continue;
            w = snprintf(act + alen, sizeof act - alen, "%s%s", alen ? "," : "",
                         cli_clean(c, sizeof c, name, 8));
            if (w < 0 || (size_t)w >= sizeof act - alen)
                break;
            alen += (size_t)w;
        }
        w = snprintf(buf + used, len - used, "%s%s:%s", used ? " " : "",
                     cli_clean(pat, sizeof pat, cli_json_str(g, "pattern", CLI_PATTERN_MAX),
                               CLI_PATTERN_MAX),
                     act);
        if (w < 0 || (size_t)w >= len - used) {
            buf[used] = '\0';
            break;
        }
        used += (size_t)w;
    }
    if (used == 0)
        snprintf(buf, len, "-");
    return buf;
}

const char *cli_time_cell(char *cell, size_t len, const json_t *v, const char *never_text)
{
    if (json_is_string(v) && json_string_length(v) > 0) {
        /* RFC 3339: shown as sent, cleaned, with the 'T' as a space. */
        char t[64];
        cli_clean(t, sizeof t, json_string_value(v), 40);
        char *tp = strchr(t, 'T');
        if (tp != NULL)
            *tp = ' ';
        snprintf(cell, len, "%s", t);
    } else if (json_is_integer(v) && json_integer_value(v) > 0) {
        long long n = (long long)json_integer_value(v);
        time_t s = (time_t)(n > 100000000000LL ? n / 1000 : n); /* ms or s */
        struct tm tm;
        if (gmtime_r(&s, &tm) == NULL || strftime(cell, len, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
            snprintf(cell, len, "-");
    } else {
        snprintf(cell, len, "%s", never_text);
    }
    return cell;
}
