/*
 * metrics.c - lock-free request metrics rendered as Prometheus text.
 *
 * Design: every series is a fixed slot in one static table, indexed by route id, method
 * index and status-code index, so recording a request is a handful of relaxed atomic adds
 * with no lookup beyond a short scan of PT_METRICS_CODES and no allocation. Histogram
 * buckets are stored non-cumulatively (one add per request) and summed at render time;
 * the latency sum is kept in integer nanoseconds because C11 has no atomic add on double.
 *
 * Invariants: route names are set by pt_metrics_init before other threads start and are
 * read-only afterwards. Counters only grow (the uploads gauge excepted). A scrape that races
 * with updates may see a request in one series and not yet in another; within one histogram
 * it is consistent because _count and the +Inf bucket are derived from the same bucket reads.
 * Rendering is the only place that allocates.
 */
#include "metrics.h"

#include "buf.h"
#include "diskspace.h"
#include "err.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { M_GET, M_HEAD, M_PUT, M_POST, M_PATCH, M_DELETE, M_OTHER, NMETHODS };

static const char *const method_names[NMETHODS] = {"GET",   "HEAD",   "PUT",  "POST",
                                                   "PATCH", "DELETE", "other"};

static const int codes[] = {PT_METRICS_CODES};
#define NCODES (sizeof codes / sizeof codes[0] + 1) /* last slot: "other" */

/* Upper bounds of the latency buckets, as numbers and as rendered in le labels. */
static const double bucket_bounds[] = {.0005, .001, .0025, .005, .01, .025, .05,
                                       .1,    .25,  .5,    1,    2.5, 5,    10};
static const char *const bucket_labels[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                            "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                            "1",      "2.5",   "5",      "10"};
#define NBUCKETS (sizeof bucket_bounds / sizeof bucket_bounds[0])
_Static_assert(sizeof bucket_labels / sizeof bucket_labels[0] == NBUCKETS, "bucket labels");

/* Latencies above this many seconds are recorded as this (keeps nanoseconds in range). */
#define SECONDS_CLAMP 1e9

static struct {
    const char *const *names; /* borrowed, static */
    size_t nroutes;
    double start_time; /* seconds since the epoch */
    atomic_uint_fast64_t requests[PT_METRICS_MAX_ROUTES][NMETHODS][NCODES];
    atomic_uint_fast64_t buckets[PT_METRICS_MAX_ROUTES][NBUCKETS + 1]; /* last: above 10 s */
    atomic_uint_fast64_t sum_ns[PT_METRICS_MAX_ROUTES];
    atomic_uint_fast64_t bytes_in[PT_METRICS_MAX_ROUTES];
    atomic_uint_fast64_t bytes_out[PT_METRICS_MAX_ROUTES];
    atomic_int_fast64_t uploads;
    atomic_uint_fast64_t up_buckets[PT_METRICS_UP_N][NBUCKETS + 1];
    atomic_uint_fast64_t up_sum_ns[PT_METRICS_UP_N];
    atomic_int ready;
    atomic_int replication_on; /* set once blob replication published a sample */
    atomic_uint_fast64_t repl[PT_METRICS_REPL_N];
    atomic_uint_fast64_t gc_last_ms, gc_duration_ms, gc_blobs, gc_bytes;
    atomic_uint_fast64_t throttled[2], quota_refused; /* throttled: [0] writes, [1] reads */
    atomic_uint_fast64_t retention_last_ms, retention_tags, retention_manifests;
    atomic_uint_fast64_t auth[PT_METRICS_AUTH_N];
    atomic_uint_fast64_t peer_refused[PT_METRICS_PEER_N];
    atomic_int_fast64_t relayed[PT_METRICS_RELAY_N];
    atomic_uint_fast64_t raft_reads[PT_METRICS_READ_N];
    atomic_uint_fast64_t snap_n[PT_METRICS_SNAP_N], snap_bytes[PT_METRICS_SNAP_N],
        snap_ms[PT_METRICS_SNAP_N];
} m;

static void add(atomic_uint_fast64_t *a, uint64_t v)
{
    atomic_fetch_add_explicit(a, v, memory_order_relaxed);
}

static uint64_t get(atomic_uint_fast64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

/* Start time from /proc (boot time + start ticks); falls back to now. */
static double process_start_time(void)
{
    char buf[1024];
    unsigned long long btime = 0, ticks = 0;
    long hz = sysconf(_SC_CLK_TCK);
    bool have_btime = false;
    FILE *f;
    size_t n;
    char *p;

    f = fopen("/proc/stat", "re");
    if (f != NULL) {
        while (fgets(buf, sizeof buf, f) != NULL) {
            if (sscanf(buf, "btime %llu", &btime) == 1) {
                have_btime = true;
                break;
            }
        }
        fclose(f);
    }
    f = fopen("/proc/self/stat", "re");
    if (f == NULL || !have_btime || hz <= 0)
        goto fallback;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    f = NULL;
    buf[n] = '\0';
    /* The command name is in parentheses and may hold spaces: fields restart after ')'.
     * Field 3 (state) is the first after it; starttime is field 22. */
    p = strrchr(buf, ')');
    if (p == NULL)
        goto fallback;
    p++;
    for (int field = 3; field < 22; field++) {
        p += strspn(p, " ");
        p += strcspn(p, " ");
    }
    if (sscanf(p, " %llu", &ticks) != 1)
        goto fallback;
    return (double)btime + (double)ticks / (double)hz;

fallback:
    if (f != NULL)
        fclose(f);
    return (double)time(NULL);
}

void pt_metrics_init(const char *const *route_names, size_t nroutes)
{
    if (nroutes > PT_METRICS_MAX_ROUTES)
        nroutes = PT_METRICS_MAX_ROUTES;
    for (size_t r = 0; r < PT_METRICS_MAX_ROUTES; r++) {
        for (size_t i = 0; i < NMETHODS; i++) {
            for (size_t c = 0; c < NCODES; c++)
                atomic_store_explicit(&m.requests[r][i][c], 0, memory_order_relaxed);
        }
        for (size_t b = 0; b <= NBUCKETS; b++)
            atomic_store_explicit(&m.buckets[r][b], 0, memory_order_relaxed);
        atomic_store_explicit(&m.sum_ns[r], 0, memory_order_relaxed);
        atomic_store_explicit(&m.bytes_in[r], 0, memory_order_relaxed);
        atomic_store_explicit(&m.bytes_out[r], 0, memory_order_relaxed);
    }
    atomic_store_explicit(&m.uploads, 0, memory_order_relaxed);
    atomic_store_explicit(&m.ready, 0, memory_order_relaxed);
    for (size_t i = 0; i < PT_METRICS_AUTH_N; i++)
        atomic_store_explicit(&m.auth[i], 0, memory_order_relaxed);
    for (size_t p = 0; p < PT_METRICS_UP_N; p++) {
        for (size_t b = 0; b <= NBUCKETS; b++)
            atomic_store_explicit(&m.up_buckets[p][b], 0, memory_order_relaxed);
        atomic_store_explicit(&m.up_sum_ns[p], 0, memory_order_relaxed);
    }
    m.names = route_names;
    m.nroutes = route_names != NULL ? nroutes : 0;
    m.start_time = process_start_time();
}

static unsigned method_index(const char *s, size_t len)
{
    if (s == NULL)
        return M_OTHER;
    for (unsigned i = 0; i < M_OTHER; i++) {
        if (strlen(method_names[i]) == len && memcmp(method_names[i], s, len) == 0)
            return i;
    }
    return M_OTHER;
}

const char *pt_metrics_method(const char *method, size_t len)
{
    return method_names[method_index(method, len)];
}

static unsigned code_index(int status)
{
    for (unsigned i = 0; i < NCODES - 1; i++) {
        if (codes[i] == status)
            return i;
    }
    return NCODES - 1;
}

void pt_metrics_request(unsigned route, const char *method, int status, double seconds,
                        uint64_t bytes_in, uint64_t bytes_out)
{
    unsigned b;

    if (route >= m.nroutes)
        return;
    if (!(seconds > 0)) /* negative and NaN */
        seconds = 0;
    if (seconds > SECONDS_CLAMP)
        seconds = SECONDS_CLAMP;
    for (b = 0; b < NBUCKETS && seconds > bucket_bounds[b]; b++)
        ;
    add(&m.requests[route][method_index(method, method ? strlen(method) : 0)][code_index(status)],
        1);
    add(&m.buckets[route][b], 1);
    add(&m.sum_ns[route], (uint64_t)llround(seconds * 1e9));
    add(&m.bytes_in[route], bytes_in);
    add(&m.bytes_out[route], bytes_out);
}

static const char *const upload_phase_names[PT_METRICS_UP_N] = {
    [PT_METRICS_UP_RECEIVE] = "receive", [PT_METRICS_UP_COPY] = "copy",
    [PT_METRICS_UP_WRITE] = "write",     [PT_METRICS_UP_HASH] = "hash",
    [PT_METRICS_UP_FSYNC] = "fsync",     [PT_METRICS_UP_RECORD] = "record",
    [PT_METRICS_UP_COMMIT] = "commit",   [PT_METRICS_UP_RESPONSE] = "response",
    [PT_METRICS_UP_TOTAL] = "total",
};

void pt_metrics_upload_phase(int phase, double seconds)
{
    unsigned b;

    if (phase < 0 || phase >= PT_METRICS_UP_N)
        return;
    if (!(seconds > 0))
        seconds = 0;
    if (seconds > SECONDS_CLAMP)
        seconds = SECONDS_CLAMP;
    for (b = 0; b < NBUCKETS && seconds > bucket_bounds[b]; b++)
        ;
    add(&m.up_buckets[phase][b], 1);
    add(&m.up_sum_ns[phase], (uint64_t)llround(seconds * 1e9));
}

void pt_metrics_uploads_in_progress(int delta)
{
    atomic_fetch_add_explicit(&m.uploads, delta, memory_order_relaxed);
}

void pt_metrics_ready(int ready)
{
    atomic_store_explicit(&m.ready, ready != 0, memory_order_relaxed);
}

/* ---- rendering ------------------------------------------------------------------------- */

/* The text is written into a struct pt_buf (buf.h); reserve keeps room for the NUL. */

__attribute__((format(printf, 2, 3))) static void appendf(struct pt_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!pt_buf_reserve(b, 256))
        return;
    va_start(ap, fmt);
    n = vsnprintf((char *)b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->nomem = true;
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        if (!pt_buf_reserve(b, (size_t)n))
            return;
        va_start(ap, fmt);
        vsnprintf((char *)b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* Appends s as a label value: backslash, double quote and newline escaped (format 0.0.4). */
static void append_label(struct pt_buf *b, const char *s)
{
    size_t n = strlen(s);

    if (!pt_buf_reserve(b, 2 * n))
        return;
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = *s;
        } else if (*s == '\n') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = 'n';
        } else {
            b->p[b->len++] = *s;
        }
    }
    b->p[b->len] = '\0';
}

static void family(struct pt_buf *b, const char *name, const char *type, const char *help)
{
    appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Writes `name{route="...",` ... the caller finishes the labels. */
static void series_route(struct pt_buf *b, const char *name, size_t r)
{
    appendf(b, "%s{route=\"", name);
    append_label(b, m.names[r] ? m.names[r] : "");
    appendf(b, "\"");
}

static void render_requests(struct pt_buf *b)
{
    static const char *const name = "portolan_http_requests_total";

    family(b, name, "counter", "Finished HTTP requests by route, method and status code.");
    for (size_t r = 0; r < m.nroutes; r++) {
        for (size_t i = 0; i < NMETHODS; i++) {
            for (size_t c = 0; c < NCODES; c++) {
                uint64_t v = get(&m.requests[r][i][c]);
                if (v == 0)
                    continue;
                series_route(b, name, r);
                if (c == NCODES - 1)
                    appendf(b, ",method=\"%s\",code=\"other\"} %llu\n", method_names[i],
                            (unsigned long long)v);
                else
                    appendf(b, ",method=\"%s\",code=\"%d\"} %llu\n", method_names[i], codes[c],
                            (unsigned long long)v);
            }
        }
    }
}

static void render_durations(struct pt_buf *b)
{
    static const char *const name = "portolan_http_request_duration_seconds";
    char series[64];

    family(b, name, "histogram", "Time from request to finished response, by route.");
    for (size_t r = 0; r < m.nroutes; r++) {
        uint64_t cum = 0, ns = get(&m.sum_ns[r]);

        snprintf(series, sizeof series, "%s_bucket", name);
        for (size_t i = 0; i <= NBUCKETS; i++) {
            cum += get(&m.buckets[r][i]);
            series_route(b, series, r);
            appendf(b, ",le=\"%s\"} %llu\n", i < NBUCKETS ? bucket_labels[i] : "+Inf",
                    (unsigned long long)cum);
        }
        snprintf(series, sizeof series, "%s_sum", name);
        series_route(b, series, r);
        appendf(b, "} %llu.%09llu\n", (unsigned long long)(ns / 1000000000u),
                (unsigned long long)(ns % 1000000000u));
        snprintf(series, sizeof series, "%s_count", name);
        series_route(b, series, r);
        appendf(b, "} %llu\n", (unsigned long long)cum);
    }
}

static void render_route_counter(struct pt_buf *b, const char *name, const char *help,
                                 atomic_uint_fast64_t *v)
{
    family(b, name, "counter", help);
    for (size_t r = 0; r < m.nroutes; r++) {
        series_route(b, name, r);
        appendf(b, "} %llu\n", (unsigned long long)get(&v[r]));
    }
}

/* Resident set size in bytes from /proc/self/statm; -1 if unavailable. */
static long long resident_bytes(void)
{
    unsigned long long size, resident;
    long page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "re");
    int n;

    if (f == NULL)
        return -1;
    n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2 || page <= 0)
        return -1;
    return (long long)(resident * (unsigned long long)page);
}

long long pt_metrics_rss_anon(void)
{
    char line[128];
    long long kib = -1;
    FILE *f = fopen("/proc/self/status", "re");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "RssAnon: %lld kB", &kib) == 1)
            break;
    fclose(f);
    return kib >= 0 ? kib * 1024 : -1;
}

void pt_metrics_replication(const uint64_t values[PT_METRICS_REPL_N])
{
    for (int i = 0; i < PT_METRICS_REPL_N; i++)
        atomic_store_explicit(&m.repl[i], values[i], memory_order_relaxed);
    atomic_store_explicit(&m.replication_on, 1, memory_order_relaxed);
}

static void render_replication(struct pt_buf *b)
{
    static const struct {
        const char *name, *type, *help;
    } series[PT_METRICS_REPL_N] = {
        [PT_METRICS_REPL_RECEIVED] = {"portolan_replication_bytes_received_total", "counter",
                                      "Blob bytes received from other regions."},
        [PT_METRICS_REPL_SENT] = {"portolan_replication_bytes_sent_total", "counter",
                                  "Blob bytes sent to other regions."},
        [PT_METRICS_REPL_FETCHED] = {"portolan_replication_blobs_fetched_total", "counter",
                                     "Blobs fetched from other regions and verified."},
        [PT_METRICS_REPL_VERIFY_FAILURES] = {"portolan_replication_verify_failures_total",
                                             "counter",
                                             "Fetched blobs discarded because their digest did "
                                             "not verify."},
        [PT_METRICS_REPL_QUEUE] = {"portolan_replication_queue_blobs", "gauge",
                                   "Blobs this region lacks and has not started fetching."},
        [PT_METRICS_REPL_BEHIND_BLOBS] = {"portolan_replication_behind_blobs", "gauge",
                                          "Blobs other regions hold and this region lacks."},
        [PT_METRICS_REPL_BEHIND_BYTES] = {"portolan_replication_behind_bytes", "gauge",
                                          "Bytes of blobs this region still lacks."},
        [PT_METRICS_REPL_OLDEST_MS] = {"portolan_replication_oldest_missing_seconds", "gauge",
                                       "Age of the oldest blob this region lacks."},
    };
    if (!atomic_load_explicit(&m.replication_on, memory_order_relaxed))
        return;
    for (int i = 0; i < PT_METRICS_REPL_N; i++) {
        uint64_t v = atomic_load_explicit(&m.repl[i], memory_order_relaxed);
        family(b, series[i].name, series[i].type, series[i].help);
        if (i == PT_METRICS_REPL_OLDEST_MS)
            appendf(b, "%s %.3f\n", series[i].name, (double)v / 1000.0);
        else
            appendf(b, "%s %llu\n", series[i].name, (unsigned long long)v);
    }
}

void pt_metrics_gc_pass(int64_t end_ms, uint64_t duration_ms)
{
    atomic_store_explicit(&m.gc_last_ms, end_ms > 0 ? (uint64_t)end_ms : 0, memory_order_relaxed);
    atomic_store_explicit(&m.gc_duration_ms, duration_ms, memory_order_relaxed);
}

void pt_metrics_gc_reclaimed(uint64_t blobs, uint64_t bytes)
{
    add(&m.gc_blobs, blobs);
    add(&m.gc_bytes, bytes);
}

static void render_gc(struct pt_buf *b)
{
    uint64_t v = atomic_load_explicit(&m.gc_last_ms, memory_order_relaxed);
    family(b, "portolan_gc_last_run_timestamp_seconds", "gauge",
           "End of the last garbage collection pass run by this region (0: none yet).");
    appendf(b, "portolan_gc_last_run_timestamp_seconds %.3f\n", (double)v / 1000.0);
    v = atomic_load_explicit(&m.gc_duration_ms, memory_order_relaxed);
    family(b, "portolan_gc_duration_seconds", "gauge",
           "Duration of the last garbage collection pass run by this region.");
    appendf(b, "portolan_gc_duration_seconds %.3f\n", (double)v / 1000.0);
    v = atomic_load_explicit(&m.gc_blobs, memory_order_relaxed);
    family(b, "portolan_gc_blobs_collected_total", "counter",
           "Blob files this region deleted after a collection.");
    appendf(b, "portolan_gc_blobs_collected_total %llu\n", (unsigned long long)v);
    v = atomic_load_explicit(&m.gc_bytes, memory_order_relaxed);
    family(b, "portolan_gc_bytes_reclaimed_total", "counter",
           "Bytes of the blob files this region deleted after a collection.");
    appendf(b, "portolan_gc_bytes_reclaimed_total %llu\n", (unsigned long long)v);
}

void pt_metrics_throttled(int read)
{
    add(&m.throttled[read ? 1 : 0], 1);
}

void pt_metrics_quota_refused(void)
{
    add(&m.quota_refused, 1);
}

static void render_limits(struct pt_buf *b)
{
    family(b, "portolan_throttled_requests_total", "counter",
           "Requests refused with 429 by request throttling, by kind.");
    for (int i = 1; i >= 0; i--)
        appendf(b, "portolan_throttled_requests_total{kind=\"%s\"} %llu\n", i ? "read" : "write",
                (unsigned long long)atomic_load_explicit(&m.throttled[i], memory_order_relaxed));
    family(b, "portolan_quota_refusals_total", "counter",
           "Uploads and manifests refused by a storage quota (403 DENIED) in this region.");
    appendf(b, "portolan_quota_refusals_total %llu\n",
            (unsigned long long)atomic_load_explicit(&m.quota_refused, memory_order_relaxed));
}

void pt_metrics_retention_run(int64_t end_ms, uint64_t tags, uint64_t manifests)
{
    atomic_store_explicit(&m.retention_last_ms, end_ms > 0 ? (uint64_t)end_ms : 0,
                          memory_order_relaxed);
    add(&m.retention_tags, tags);
    add(&m.retention_manifests, manifests);
}

static void render_retention(struct pt_buf *b)
{
    uint64_t v = atomic_load_explicit(&m.retention_last_ms, memory_order_relaxed);
    family(b, "portolan_retention_last_run_timestamp_seconds", "gauge",
           "End of the last retention run of this region (0: none yet).");
    appendf(b, "portolan_retention_last_run_timestamp_seconds %.3f\n", (double)v / 1000.0);
    v = atomic_load_explicit(&m.retention_tags, memory_order_relaxed);
    family(b, "portolan_retention_tags_deleted_total", "counter",
           "Tags the retention runs of this region deleted.");
    appendf(b, "portolan_retention_tags_deleted_total %llu\n", (unsigned long long)v);
    v = atomic_load_explicit(&m.retention_manifests, memory_order_relaxed);
    family(b, "portolan_retention_manifests_deleted_total", "counter",
           "Manifests the retention runs of this region deleted.");
    appendf(b, "portolan_retention_manifests_deleted_total %llu\n", (unsigned long long)v);
}

void pt_metrics_auth(int which)
{
    if (which >= 0 && which < PT_METRICS_AUTH_N)
        add(&m.auth[which], 1);
}

static void render_auth(struct pt_buf *b)
{
    static const struct {
        const char *family, *label;
    } series[PT_METRICS_AUTH_N] = {
        [PT_METRICS_AUTH_ALLOWED] = {"portolan_auth_decisions_total", "allowed"},
        [PT_METRICS_AUTH_DENIED] = {"portolan_auth_decisions_total", "denied"},
        [PT_METRICS_AUTH_UNAUTHORIZED] = {"portolan_auth_decisions_total", "unauthorized"},
        [PT_METRICS_AUTH_LOGIN_OK] = {"portolan_auth_logins_total", "ok"},
        [PT_METRICS_AUTH_LOGIN_FAILED] = {"portolan_auth_logins_total", "failed"},
        [PT_METRICS_AUTH_LOGIN_LIMITED] = {"portolan_auth_logins_total", "limited"},
        [PT_METRICS_AUTH_CACHE_HIT] = {"portolan_auth_token_cache_total", "hit"},
        [PT_METRICS_AUTH_CACHE_MISS] = {"portolan_auth_token_cache_total", "miss"},
    };
    static const char *const help[] = {
        "Access decisions of the gate, by result.",
        "Logins (Basic credentials and /token), by result.",
        "Bearer token lookups in the verified-token cache, by result.",
    };
    static const char *const label_name[] = {"result", "result", "result"};
    const char *last = "";
    int fam = -1;
    for (int i = 0; i < PT_METRICS_AUTH_N; i++) {
        if (strcmp(series[i].family, last) != 0) {
            fam++;
            family(b, series[i].family, "counter", help[fam]);
            last = series[i].family;
        }
        appendf(b, "%s{%s=\"%s\"} %llu\n", series[i].family, label_name[fam], series[i].label,
                (unsigned long long)get(&m.auth[i]));
    }
}

/* The free-space reserve (diskspace.h), sampled at scrape time; absent when not watching. */
static void render_disk(struct pt_buf *b)
{
    struct pt_disk_state d;
    pt_disk_sample(&d);
    if (!d.watching)
        return;
    family(b, "portolan_disk_free_bytes", "gauge",
           "Free bytes on the tightest filesystem of the data directory.");
    appendf(b, "portolan_disk_free_bytes %llu\n", (unsigned long long)d.free_bytes);
    family(b, "portolan_disk_reserve_bytes", "gauge",
           "Free space kept in reserve there; writes are refused below it.");
    appendf(b, "portolan_disk_reserve_bytes %llu\n", (unsigned long long)d.reserve_bytes);
    family(b, "portolan_disk_low", "gauge", "1 while free space is below the reserve.");
    appendf(b, "portolan_disk_low %d\n", d.low ? 1 : 0);
    family(b, "portolan_disk_refusals_total", "counter",
           "Writes refused because free space was below the reserve.");
    appendf(b, "portolan_disk_refusals_total %llu\n", (unsigned long long)d.refusals);
}

void pt_metrics_peer_refused(int reason)
{
    if (reason >= 0 && reason < PT_METRICS_PEER_N)
        add(&m.peer_refused[reason], 1);
}

void pt_metrics_raft_read(int path)
{
    if (path >= 0 && path < PT_METRICS_READ_N)
        add(&m.raft_reads[path], 1);
}

void pt_metrics_snapshot(int kind, uint64_t bytes, uint64_t ms)
{
    if (kind < 0 || kind >= PT_METRICS_SNAP_N)
        return;
    add(&m.snap_n[kind], 1);
    add(&m.snap_bytes[kind], bytes);
    add(&m.snap_ms[kind], ms);
}

void pt_metrics_relayed(int side, int delta)
{
    if (side >= 0 && side < PT_METRICS_RELAY_N)
        atomic_fetch_add_explicit(&m.relayed[side], delta, memory_order_relaxed);
}

static void render_peer(struct pt_buf *b)
{
    static const char *const reasons[PT_METRICS_PEER_N] = {
        [PT_METRICS_PEER_RAFT_MESSAGE] = "raft_message",
        [PT_METRICS_PEER_FRAME] = "peer_frame",
        [PT_METRICS_PEER_HANDSHAKE_LIMIT] = "handshake_limit",
        [PT_METRICS_PEER_RELAY] = "relay",
    };
    family(b, "portolan_peer_refused_total", "counter",
           "Peer-port connections closed or turned away, by reason.");
    for (int i = 0; i < PT_METRICS_PEER_N; i++)
        appendf(b, "portolan_peer_refused_total{reason=\"%s\"} %llu\n", reasons[i],
                (unsigned long long)get(&m.peer_refused[i]));
    family(b, "portolan_peer_relayed_connections", "gauge",
           "Peer-port connections tunneled through a relay: served for others, or this node's.");
    appendf(b, "portolan_peer_relayed_connections{side=\"served\"} %lld\n",
            (long long)atomic_load(&m.relayed[PT_METRICS_RELAY_SERVED]));
    appendf(b, "portolan_peer_relayed_connections{side=\"through\"} %lld\n",
            (long long)atomic_load(&m.relayed[PT_METRICS_RELAY_THROUGH]));
}

static void render_raft_reads(struct pt_buf *b)
{
    static const char *const paths[PT_METRICS_READ_N] = {
        [PT_METRICS_READ_LEASE] = "lease",
        [PT_METRICS_READ_INDEX] = "read_index",
        [PT_METRICS_READ_FORWARDED] = "forwarded",
    };
    family(b, "portolan_raft_reads_total", "counter",
           "Linearizable reads: served from the leader's lease, by a barrier at the leader "
           "(read-index fallback), or forwarded by a follower (one per batch).");
    for (int i = 0; i < PT_METRICS_READ_N; i++)
        appendf(b, "portolan_raft_reads_total{path=\"%s\"} %llu\n", paths[i],
                (unsigned long long)get(&m.raft_reads[i]));
}

static void render_upload_phases(struct pt_buf *b)
{
    static const char *const name = "portolan_upload_phase_seconds";

    family(b, name, "histogram", "Time of blob upload requests, by phase.");
    for (int p = 0; p < PT_METRICS_UP_N; p++) {
        uint64_t cum = 0, ns = get(&m.up_sum_ns[p]);

        for (size_t i = 0; i <= NBUCKETS; i++) {
            cum += get(&m.up_buckets[p][i]);
            appendf(b, "%s_bucket{phase=\"%s\",le=\"%s\"} %llu\n", name, upload_phase_names[p],
                    i < NBUCKETS ? bucket_labels[i] : "+Inf", (unsigned long long)cum);
        }
        appendf(b, "%s_sum{phase=\"%s\"} %llu.%09llu\n", name, upload_phase_names[p],
                (unsigned long long)(ns / 1000000000u), (unsigned long long)(ns % 1000000000u));
        appendf(b, "%s_count{phase=\"%s\"} %llu\n", name, upload_phase_names[p],
                (unsigned long long)cum);
    }
}

static void snap_counter(struct pt_buf *b, const char *name, const char *help, uint64_t v)
{
    family(b, name, "counter", help);
    appendf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void snap_seconds(struct pt_buf *b, const char *name, const char *help, uint64_t ms)
{
    family(b, name, "counter", help);
    appendf(b, "%s %.3f\n", name, (double)ms / 1000.0);
}

static void render_snapshots(struct pt_buf *b)
{
    snap_counter(b, "portolan_raft_snapshots_total", "Raft snapshot files written.",
                 get(&m.snap_n[PT_METRICS_SNAP_WRITTEN]));
    snap_counter(b, "portolan_raft_snapshot_bytes_total", "Bytes of raft snapshot files written.",
                 get(&m.snap_bytes[PT_METRICS_SNAP_WRITTEN]));
    snap_seconds(b, "portolan_raft_snapshot_seconds_total",
                 "Time spent writing raft snapshot files (thread pool).",
                 get(&m.snap_ms[PT_METRICS_SNAP_WRITTEN]));
    snap_counter(b, "portolan_raft_snapshot_restores_total",
                 "Stores restored from a raft snapshot file.",
                 get(&m.snap_n[PT_METRICS_SNAP_RESTORED]));
    snap_counter(b, "portolan_raft_snapshot_restore_bytes_total",
                 "Bytes of raft snapshot files restored.",
                 get(&m.snap_bytes[PT_METRICS_SNAP_RESTORED]));
    snap_seconds(b, "portolan_raft_snapshot_restore_seconds_total",
                 "Time spent restoring raft snapshot files.",
                 get(&m.snap_ms[PT_METRICS_SNAP_RESTORED]));
    family(b, "portolan_raft_snapshot_fetches_total", "counter",
           "Raft snapshot files fetched from the region that sent them, by outcome.");
    appendf(b, "portolan_raft_snapshot_fetches_total{outcome=\"ok\"} %llu\n",
            (unsigned long long)get(&m.snap_n[PT_METRICS_SNAP_FETCHED]));
    appendf(b, "portolan_raft_snapshot_fetches_total{outcome=\"failed\"} %llu\n",
            (unsigned long long)get(&m.snap_n[PT_METRICS_SNAP_FETCH_FAILED]));
    snap_counter(b, "portolan_raft_snapshot_fetch_bytes_total",
                 "Bytes of raft snapshot files fetched.",
                 get(&m.snap_bytes[PT_METRICS_SNAP_FETCHED]));
    snap_counter(b, "portolan_raft_snapshot_served_bytes_total",
                 "Bytes of raft snapshot files served to other regions.",
                 get(&m.snap_bytes[PT_METRICS_SNAP_SERVED]));
    snap_counter(b, "portolan_raft_snapshot_serve_refused_total",
                 "Requests for pieces of raft snapshot files refused.",
                 get(&m.snap_n[PT_METRICS_SNAP_SERVE_REFUSED]));
}

int pt_metrics_render(char **out, size_t *len)
{
    struct pt_buf b = {0};
    long long rss;

    render_requests(&b);
    render_durations(&b);
    render_route_counter(&b, "portolan_http_request_bytes_total",
                         "Request body bytes received, by route.", m.bytes_in);
    render_route_counter(&b, "portolan_http_response_bytes_total",
                         "Response body bytes sent, by route.", m.bytes_out);
    family(&b, "portolan_uploads_in_progress", "gauge", "Blob upload sessions in progress.");
    appendf(&b, "portolan_uploads_in_progress %lld\n",
            (long long)atomic_load_explicit(&m.uploads, memory_order_relaxed));
    family(&b, "portolan_ready", "gauge",
           "1 when the region serves current data (GET /readyz answers 200), else 0.");
    appendf(&b, "portolan_ready %d\n", atomic_load_explicit(&m.ready, memory_order_relaxed));
    render_upload_phases(&b);
    render_replication(&b);
    render_gc(&b);
    render_limits(&b);
    render_retention(&b);
    render_auth(&b);
    render_disk(&b);
    render_peer(&b);
    render_raft_reads(&b);
    render_snapshots(&b);
    rss = resident_bytes();
    if (rss >= 0) {
        family(&b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        appendf(&b, "process_resident_memory_bytes %lld\n", rss);
    }
    family(&b, "process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.");
    appendf(&b, "process_start_time_seconds %.3f\n", m.start_time);

    if (b.nomem || b.p == NULL) {
        free(b.p);
        return PT_E_NOMEM;
    }
    *out = (char *)b.p;
    *len = b.len;
    return 0;
}
