/*
 * audit_verify.c - reading the audit log back (audit.h): listing its files oldest first and
 * checking the hash chain across them.
 *
 * Design: the files are read one line at a time into a fixed buffer (a line longer than
 * PT_AUDIT_LINE_MAX is a break, never an allocation); each line must be a JSON object with a
 * "prev" of 64 lowercase hex digits equal to the SHA-256 of the line before it, the files
 * chained in the order given. The first line of the first file starts the chain: 64 zeros
 * (a fresh log) or any hash (older files were rotated away), which the report says.
 *
 * Threads: none of its own; any thread, on files another process may be appending to (a
 * line being written at the end may show as incomplete).
 */
#include "audit.h"
#include "audit_int.h"

#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- listing ------------------------------------------------------------------------- */

/* n of "audit.log.<n>" (1..PT_AUDIT_KEEP_MAX, no leading zero), else 0. */
static unsigned rotated_number(const char *name)
{
    size_t k = strlen(PT_AUDIT_FILE);
    unsigned long v = 0;
    const char *p;

    if (strncmp(name, PT_AUDIT_FILE ".", k + 1) != 0)
        return 0;
    p = name + k + 1;
    if (*p < '1' || *p > '9')
        return 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > PT_AUDIT_KEEP_MAX)
            return 0;
    }
    return *p == '\0' ? (unsigned)v : 0;
}

static int by_number_desc(const void *x, const void *y)
{
    unsigned a = *(const unsigned *)x, b = *(const unsigned *)y;
    return a < b ? 1 : a > b ? -1 : 0;
}

void pt_audit_paths_free(char **paths, size_t n)
{
    for (size_t i = 0; paths != NULL && i < n; i++)
        free(paths[i]);
    free(paths);
}

int pt_audit_list(const char *dir, char ***paths, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    unsigned *nums = NULL;
    size_t count = 0, cap = 0, k = 0;
    bool live = false;
    char **out = NULL;
    char p[PATH_MAX];
    int rc = PT_E_NOMEM;

    if (d == NULL)
        return PT_E_IO;
    while ((e = readdir(d)) != NULL) {
        unsigned v = rotated_number(e->d_name);
        if (strcmp(e->d_name, PT_AUDIT_FILE) == 0)
            live = true;
        if (v == 0)
            continue;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            unsigned *m = realloc(nums, ncap * sizeof *nums);
            if (m == NULL)
                goto out;
            nums = m;
            cap = ncap;
        }
        nums[count++] = v;
    }
    if (count == 0 && !live) {
        rc = PT_E_IO;
        goto out;
    }
    if (count > 0)
        qsort(nums, count, sizeof *nums, by_number_desc);
    out = calloc(count + 1, sizeof *out);
    if (out == NULL)
        goto out;
    for (size_t i = 0; i <= count; i++) {
        if (i == count && !live)
            break;
        if (pt_audit_path(p, sizeof p, dir, i < count ? nums[i] : 0) != 0) {
            rc = PT_E_CONFIG;
            goto out;
        }
        out[k] = strdup(p);
        if (out[k] == NULL)
            goto out;
        k++;
    }
    *paths = out;
    *n = k;
    out = NULL;
    rc = 0;
out:
    pt_audit_paths_free(out, k);
    free(nums);
    closedir(d);
    return rc;
}

/* ---- verifying --------------------------------------------------------------------------- */

/* Reads one line of f into buf (PT_AUDIT_LINE_MAX bytes) without its '\n'. Returns 1 with *len,
 * 0 at the end of the file, -1 for a line too long (skipped to its end), -2 for a last line
 * without '\n' (*len set), -3 for a read error. */
static int read_line(FILE *f, char *buf, size_t *len)
{
    size_t n = 0;
    int c;
    bool long_line = false;

    while ((c = getc(f)) != EOF && c != '\n') {
        if (n < PT_AUDIT_LINE_MAX)
            buf[n++] = (char)c;
        else
            long_line = true;
    }
    *len = n;
    if (ferror(f))
        return -3;
    if (c == EOF && n == 0 && !long_line)
        return 0;
    if (long_line)
        return -1;
    return c == EOF ? -2 : 1;
}

static bool is_hash_hex(const char *s)
{
    if (s == NULL || strlen(s) != PT_AUDIT_HASH_HEX - 1)
        return false;
    for (const char *p = s; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    }
    return true;
}

/* The state of one walk along the chain. */
struct walk {
    FILE *report;
    char expect[PT_AUDIT_HASH_HEX]; /* hash of the previous line; "" before the first */
    uint64_t lines;
};

#define REPORT(w, ...)                                                                             \
    do {                                                                                           \
        if ((w)->report != NULL)                                                                   \
            fprintf((w)->report, __VA_ARGS__);                                                     \
    } while (0)

/* Checks one line; 0 when it continues the chain, 1 (reported) when it breaks it. */
static int check_line(struct walk *w, const char *path, uint64_t no, const char *line, size_t len)
{
    static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";
    json_t *doc = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    const char *prev = json_string_value(json_object_get(doc, "prev"));
    int rc = 0;

    if (!json_is_object(doc) || !is_hash_hex(prev) ||
        !json_is_string(json_object_get(doc, "time"))) {
        REPORT(w, "%s:%" PRIu64 ": not an audit line (a JSON object with time and prev)\n", path,
               no);
        rc = 1;
    } else if (w->expect[0] == '\0') {
        if (strcmp(prev, zeros) != 0)
            REPORT(w,
                   "%s:%" PRIu64 ": the chain starts after earlier lines that are not present "
                   "(rotated away, or removed): prev %s\n",
                   path, no, prev);
    } else if (strcmp(prev, w->expect) != 0) {
        REPORT(w,
               "%s:%" PRIu64 ": chain broken: prev does not match the line before it (that line "
               "was edited, or lines were removed, inserted or reordered here)\n",
               path, no);
        rc = 1;
    }
    json_decref(doc);
    if (rc == 0)
        pt_audit_hash_hex(line, len, w->expect);
    return rc;
}

int pt_audit_verify_files(const char *const *paths, size_t n, FILE *report, uint64_t *lines)
{
    struct walk w = {.report = report};
    char *buf = malloc(PT_AUDIT_LINE_MAX);
    int rc = 0;

    if (buf == NULL)
        return PT_E_NOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        FILE *f = fopen(paths[i], "re");
        uint64_t no = 0;
        size_t len;
        int r;

        if (f == NULL) {
            REPORT(&w, "%s: cannot open: %s\n", paths[i], strerror(errno));
            rc = PT_E_IO;
            break;
        }
        while (rc == 0 && (r = read_line(f, buf, &len)) != 0) {
            no++;
            if (r == -1) {
                REPORT(&w, "%s:%" PRIu64 ": line longer than %d bytes\n", paths[i], no,
                       PT_AUDIT_LINE_MAX);
                rc = 1;
            } else if (r == -2) {
                REPORT(&w, "%s:%" PRIu64 ": incomplete last line (no newline)\n", paths[i], no);
                rc = 1;
            } else if (r == -3) {
                REPORT(&w, "%s: read error\n", paths[i]);
                rc = PT_E_IO;
            } else {
                rc = check_line(&w, paths[i], no, buf, len);
            }
            if (rc == 0)
                w.lines++;
        }
        fclose(f);
        if (rc == 0)
            REPORT(&w, "%s: %" PRIu64 " lines, chain intact\n", paths[i], no);
    }
    free(buf);
    if (rc == 0)
        REPORT(&w, "ok: %" PRIu64 " lines in %zu files\n", w.lines, n);
    if (lines != NULL)
        *lines = w.lines;
    return rc;
}

int pt_audit_verify(const char *dir_or_file, FILE *report, uint64_t *lines)
{
    struct stat st;
    char **paths = NULL;
    size_t n = 0;
    int rc;

    if (stat(dir_or_file, &st) != 0) {
        if (report != NULL)
            fprintf(report, "%s: %s\n", dir_or_file, strerror(errno));
        return PT_E_IO;
    }
    if (!S_ISDIR(st.st_mode))
        return pt_audit_verify_files(&dir_or_file, 1, report, lines);
    rc = pt_audit_list(dir_or_file, &paths, &n);
    if (rc != 0) {
        if (report != NULL)
            fprintf(report, "%s: no %s in this directory\n", dir_or_file, PT_AUDIT_FILE);
        return rc;
    }
    rc = pt_audit_verify_files((const char *const *)paths, n, report, lines);
    pt_audit_paths_free(paths, n);
    return rc;
}
