/*
 * diskspace.c - statvfs-based free-space watcher (see diskspace.h).
 *
 * Design: the watched paths are copied once at init; each sample calls statvfs on each of
 * them (one not created yet is measured on its nearest existing ancestor, the filesystem it
 * will live on) and keeps, for the tightest one (smallest free minus reserve), its free bytes
 * and reserve in relaxed atomics. When statvfs fails on every path the node is treated as
 * low: a filesystem it cannot inspect is not one it should write to. Changes of the low flag
 * are logged once per transition.
 *
 * Invariants: paths and the reserve are written only by pt_disk_init; everything written
 * later is an atomic.
 */
#include "diskspace.h"

#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "err.h"
#include "log.h"
#include "units.h"

#define AUTO_BYTES        (2 * PT_GIB)
#define AUTO_PERCENT_X100 500u
#define PERCENT_X100_MAX  5000u

static struct {
    char paths[PT_DISK_PATHS][PT_DISK_PATH_MAX];
    size_t n;
    struct pt_disk_reserve reserve;
    atomic_bool low;
    atomic_uint_fast64_t free_bytes;
    atomic_uint_fast64_t reserve_bytes;
    atomic_uint_fast64_t refusals;
    atomic_uint_fast64_t simulated_use;
} w;

int pt_disk_reserve_parse(const char *s, struct pt_disk_reserve *out)
{
    size_t n = strlen(s);
    if (n == 0 || strcmp(s, "auto") == 0) {
        *out = (struct pt_disk_reserve){.automatic = true};
        return 0;
    }
    if (s[n - 1] != '%') {
        uint64_t bytes;
        if (pt_units_parse_size(s, &bytes) != 0)
            return PT_E_CONFIG;
        *out = (struct pt_disk_reserve){.bytes = bytes};
        return 0;
    }
    /* percentage: digits, optionally '.' and one or two digits, then '%' */
    const char *end;
    uint64_t whole, frac = 0;
    if (pt_units_parse_digits(s, &end, &whole) != 0 || whole > 100)
        return PT_E_CONFIG;
    if (*end == '.') {
        const char *p = end + 1;
        if (p[0] < '0' || p[0] > '9')
            return PT_E_CONFIG;
        frac = (uint64_t)(p[0] - '0') * 10;
        end = p + 1;
        if (end[0] >= '0' && end[0] <= '9') {
            frac += (uint64_t)(end[0] - '0');
            end++;
        }
    }
    if (end[0] != '%' || end[1] != '\0')
        return PT_E_CONFIG;
    uint64_t x100 = whole * 100 + frac;
    if (x100 == 0 || x100 > PERCENT_X100_MAX)
        return PT_E_CONFIG;
    *out = (struct pt_disk_reserve){.percent_x100 = (unsigned)x100};
    return 0;
}

uint64_t pt_disk_reserve_bytes(const struct pt_disk_reserve *r, uint64_t total)
{
    if (r->automatic) {
        uint64_t pct = total / 10000 * AUTO_PERCENT_X100;
        return pct < AUTO_BYTES ? pct : AUTO_BYTES;
    }
    if (r->percent_x100 != 0)
        return total / 10000 * r->percent_x100;
    return r->bytes;
}

/* statvfs of path or, while it does not exist yet, of its nearest existing ancestor (the
 * filesystem it will be created on). */
static int statvfs_up(const char *path, struct statvfs *st)
{
    if (statvfs(path, st) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    char up[PT_DISK_PATH_MAX];
    size_t n = strlen(path);
    memcpy(up, path, n + 1);
    while (n > 1) {
        while (n > 1 && up[n - 1] != '/')
            n--;
        while (n > 1 && up[n - 1] == '/')
            n--;
        up[n] = '\0';
        if (strcmp(up, ".") == 0 || n == 0)
            break;
        if (statvfs(up, st) == 0)
            return 0;
        if (errno != ENOENT)
            return -1;
    }
    return statvfs(up[0] == '/' ? "/" : ".", st);
}

/* Takes one sample of every watched filesystem, publishes the tightest one and whether it is
 * below its reserve; returns whether it is below its reserve plus need. */
static bool sample(uint64_t need)
{
    bool any = false, low = false;
    uint64_t best_free = 0, best_reserve = 0;
    __int128 best_margin = 0;
    uint64_t sim = atomic_load_explicit(&w.simulated_use, memory_order_relaxed);

    for (size_t i = 0; i < w.n; i++) {
        struct statvfs st;
        if (statvfs_up(w.paths[i], &st) != 0)
            continue;
        uint64_t total = (uint64_t)st.f_blocks * st.f_frsize;
        uint64_t avail = (uint64_t)st.f_bavail * st.f_frsize;
        avail = avail > sim ? avail - sim : 0;
        uint64_t reserve = pt_disk_reserve_bytes(&w.reserve, total);
        __int128 margin = (__int128)avail - reserve - need;
        if (!any || margin < best_margin) {
            best_margin = margin;
            best_free = avail;
            best_reserve = reserve;
        }
        any = true;
    }
    if (!any) {
        low = w.n > 0; /* watched, but none of the filesystems could be inspected */
    } else {
        low = best_margin < 0;
        atomic_store_explicit(&w.free_bytes, best_free, memory_order_relaxed);
        atomic_store_explicit(&w.reserve_bytes, best_reserve, memory_order_relaxed);
    }
    /* the published flag says whether the disk is below the reserve, whatever need was */
    bool below = !any ? low : best_margin + need < 0;
    bool was = atomic_exchange_explicit(&w.low, below, memory_order_relaxed);
    if (was != below)
        pt_log(below ? PT_LOG_WARN : PT_LOG_INFO,
               below ? "free disk space below the reserve: writes are refused"
                     : "free disk space above the reserve again: writes resume",
               "{s:I,s:I}", "free_bytes", (json_int_t)best_free, "reserve_bytes",
               (json_int_t)best_reserve);
    return low;
}

void pt_disk_init(const char *const *paths, size_t n, const struct pt_disk_reserve *r)
{
    if (n > PT_DISK_PATHS)
        n = PT_DISK_PATHS;
    w.n = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(paths[i]);
        if (len == 0 || len >= PT_DISK_PATH_MAX)
            continue;
        memcpy(w.paths[w.n++], paths[i], len + 1);
    }
    w.reserve = *r;
    sample(0);
}

bool pt_disk_low(uint64_t need)
{
    if (w.n == 0)
        return false;
    return sample(need);
}

void pt_disk_refused(void)
{
    atomic_fetch_add_explicit(&w.refusals, 1, memory_order_relaxed);
}

void pt_disk_sample(struct pt_disk_state *out)
{
    if (w.n > 0)
        sample(0);
    out->watching = w.n > 0;
    out->low = atomic_load_explicit(&w.low, memory_order_relaxed);
    out->free_bytes = atomic_load_explicit(&w.free_bytes, memory_order_relaxed);
    out->reserve_bytes = atomic_load_explicit(&w.reserve_bytes, memory_order_relaxed);
    out->refusals = atomic_load_explicit(&w.refusals, memory_order_relaxed);
}

void pt_disk_set_simulated_use(uint64_t bytes)
{
    atomic_store_explicit(&w.simulated_use, bytes, memory_order_relaxed);
}
