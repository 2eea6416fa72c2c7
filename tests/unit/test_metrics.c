/*
 * test_metrics.c - request metrics and their Prometheus text rendering.
 *
 * Each test renders the exposition text and parses it back: every sample line must be
 * well-formed and belong to a family announced by # HELP and # TYPE lines before it; the
 * values asserted are read from the parsed samples, not matched as raw text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "metrics.h"

#define MAX_SAMPLES  4096
#define MAX_FAMILIES 64

struct sample {
    char series[256]; /* name{labels} exactly as rendered */
    double value;
};

struct family {
    char name[128];
    char type[16];
    bool help;
};

struct exposition {
    char *text;
    size_t len;
    struct sample samples[MAX_SAMPLES];
    size_t nsamples;
    struct family families[MAX_FAMILIES];
    size_t nfamilies;
};

static struct family *find_family(struct exposition *e, const char *name, size_t len)
{
    for (size_t i = 0; i < e->nfamilies; i++) {
        if (strlen(e->families[i].name) == len && memcmp(e->families[i].name, name, len) == 0)
            return &e->families[i];
    }
    return NULL;
}

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* Checks the {label="value",...} block starting at p; returns the char after '}'. */
static const char *check_labels(const char *p, const char *line)
{
    assert_int_equal(*p++, '{');
    while (*p != '}') {
        if (!name_char(*p, true))
            fail_msg("bad label name in: %s", line);
        while (name_char(*p, false))
            p++;
        if (p[0] != '=' || p[1] != '"')
            fail_msg("bad label in: %s", line);
        p += 2;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n')
                fail_msg("unterminated label value in: %s", line);
            if (*p == '\\') {
                if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                    fail_msg("bad escape in: %s", line);
                p++;
            }
            p++;
        }
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            fail_msg("bad label separator in: %s", line);
    }
    return p + 1;
}

/* Renders and parses; fails the test on any malformed line. */
static void render(struct exposition *e)
{
    char *save = NULL;
    char *line;

    memset(e, 0, sizeof *e);
    assert_int_equal(pt_metrics_render(&e->text, &e->len), 0);
    assert_non_null(e->text);
    assert_int_equal(strlen(e->text), e->len);
    assert_true(e->len > 0 && e->text[e->len - 1] == '\n');

    char *copy = strdup(e->text);
    assert_non_null(copy);
    for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[128], rest[128];
        if (strncmp(line, "# HELP ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%127s %127[^\n]", name, rest), 2);
            struct family *f = find_family(e, name, strlen(name));
            if (f == NULL) {
                assert_true(e->nfamilies < MAX_FAMILIES);
                f = &e->families[e->nfamilies++];
                snprintf(f->name, sizeof f->name, "%s", name);
            }
            assert_false(f->help);
            f->help = true;
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char type[16];
            assert_int_equal(sscanf(line + 7, "%127s %15s", name, type), 2);
            struct family *f = find_family(e, name, strlen(name));
            if (f == NULL || !f->help)
                fail_msg("TYPE before HELP: %s", line);
            assert_string_equal(f->type, "");
            assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                        strcmp(type, "histogram") == 0);
            snprintf(f->type, sizeof f->type, "%s", type);
            continue;
        }
        assert_int_not_equal(line[0], '#');

        /* name{labels} value */
        const char *p = line;
        if (!name_char(*p, true))
            fail_msg("bad metric name: %s", line);
        while (name_char(*p, false))
            p++;
        size_t namelen = (size_t)(p - line);
        if (*p == '{')
            p = check_labels(p, line);
        if (*p != ' ')
            fail_msg("no value separator: %s", line);
        size_t serieslen = (size_t)(p - line);

        char *end;
        double v = strtod(p + 1, &end);
        if (*end != '\0' || end == p + 1)
            fail_msg("bad value: %s", line);

        /* The sample must belong to an announced family; histogram series carry suffixes. */
        struct family *f = find_family(e, line, namelen);
        if (f == NULL) {
            static const char *const sfx[] = {"_bucket", "_sum", "_count"};
            for (size_t i = 0; i < 3 && f == NULL; i++) {
                size_t sl = strlen(sfx[i]);
                if (namelen > sl && memcmp(line + namelen - sl, sfx[i], sl) == 0) {
                    f = find_family(e, line, namelen - sl);
                    if (f != NULL)
                        assert_string_equal(f->type, "histogram");
                }
            }
        }
        if (f == NULL || f->type[0] == '\0')
            fail_msg("sample without HELP/TYPE: %s", line);

        assert_true(e->nsamples < MAX_SAMPLES);
        assert_true(serieslen < sizeof e->samples[0].series);
        struct sample *s = &e->samples[e->nsamples++];
        memcpy(s->series, line, serieslen);
        s->series[serieslen] = '\0';
        s->value = v;
    }
    free(copy);
}

static void release(struct exposition *e)
{
    free(e->text);
    e->text = NULL;
}

/* Value of the series (exact name{labels}); NAN if absent. Series must be unique. */
static double value(struct exposition *e, const char *series)
{
    double v = NAN;
    int seen = 0;

    for (size_t i = 0; i < e->nsamples; i++) {
        if (strcmp(e->samples[i].series, series) == 0) {
            v = e->samples[i].value;
            seen++;
        }
    }
    assert_true(seen <= 1);
    return v;
}

static size_t count_prefix(struct exposition *e, const char *prefix)
{
    size_t n = 0;

    for (size_t i = 0; i < e->nsamples; i++)
        n += strncmp(e->samples[i].series, prefix, strlen(prefix)) == 0;
    return n;
}

static const char *type_of(struct exposition *e, const char *name)
{
    struct family *f = find_family(e, name, strlen(name));
    return f ? f->type : "";
}

static const char *const routes[] = {"base", "blob", "manifest"};

static int setup(void **state)
{
    struct exposition *e = malloc(sizeof *e);

    if (e == NULL)
        return -1;
    pt_metrics_init(routes, 3);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct exposition *e = *state;

    release(e);
    free(e);
    return 0;
}

#define REQ "portolan_http_requests_total"
#define DUR "portolan_http_request_duration_seconds"

static void test_render_empty(void **state)
{
    struct exposition *e = *state;

    render(e);
    assert_string_equal(type_of(e, REQ), "counter");
    assert_string_equal(type_of(e, DUR), "histogram");
    assert_string_equal(type_of(e, "portolan_http_request_bytes_total"), "counter");
    assert_string_equal(type_of(e, "portolan_http_response_bytes_total"), "counter");
    assert_string_equal(type_of(e, "portolan_uploads_in_progress"), "gauge");
    assert_string_equal(type_of(e, "process_resident_memory_bytes"), "gauge");
    assert_string_equal(type_of(e, "process_start_time_seconds"), "gauge");

    /* No request seen: no request counters, but every route has an empty histogram. */
    assert_int_equal(count_prefix(e, REQ "{"), 0);
    assert_int_equal(count_prefix(e, DUR "_bucket{"), 3 * 15);
    assert_true(value(e, DUR "_count{route=\"manifest\"}") == 0);
    assert_true(value(e, DUR "_bucket{route=\"base\",le=\"+Inf\"}") == 0);
    assert_true(value(e, DUR "_sum{route=\"blob\"}") == 0);
    assert_true(value(e, "portolan_http_request_bytes_total{route=\"blob\"}") == 0);
    assert_true(value(e, "portolan_uploads_in_progress") == 0);
    assert_true(value(e, "process_resident_memory_bytes") > 1024 * 1024);

    double start = value(e, "process_start_time_seconds");
    double now = (double)time(NULL);
    assert_true(start > now - 3600 && start <= now + 1);
}

static void test_request_counts(void **state)
{
    struct exposition *e = *state;

    pt_metrics_request(1, "GET", 200, 0.0001, 0, 1000);
    pt_metrics_request(1, "GET", 200, 0.003, 0, 2000);
    pt_metrics_request(1, "HEAD", 404, 0.001, 0, 0);
    pt_metrics_request(1, "PUT", 201, 0.7, 5000, 0);
    pt_metrics_request(2, "PATCH", 202, 20, 300, 0);
    pt_metrics_request(2, "DELETE", 418, -1, 0, 0); /* code outside the table */
    pt_metrics_request(2, "BREW", 500, NAN, 0, 0);  /* unknown method */
    pt_metrics_request(2, NULL, 503, 0, 0, 0);
    pt_metrics_request(0, "POST", 999, 0.05, 1, 2);
    pt_metrics_request(3, "GET", 200, 1, 7, 7);  /* route beyond nroutes: ignored */
    pt_metrics_request(99, "GET", 200, 1, 7, 7); /* ignored */

    render(e);
    assert_int_equal(count_prefix(e, REQ "{"), 8);
    assert_true(value(e, REQ "{route=\"blob\",method=\"GET\",code=\"200\"}") == 2);
    assert_true(value(e, REQ "{route=\"blob\",method=\"HEAD\",code=\"404\"}") == 1);
    assert_true(value(e, REQ "{route=\"blob\",method=\"PUT\",code=\"201\"}") == 1);
    assert_true(value(e, REQ "{route=\"manifest\",method=\"PATCH\",code=\"202\"}") == 1);
    assert_true(value(e, REQ "{route=\"manifest\",method=\"DELETE\",code=\"other\"}") == 1);
    assert_true(value(e, REQ "{route=\"manifest\",method=\"other\",code=\"500\"}") == 1);
    assert_true(value(e, REQ "{route=\"manifest\",method=\"other\",code=\"503\"}") == 1);
    assert_true(value(e, REQ "{route=\"base\",method=\"POST\",code=\"other\"}") == 1);
    assert_true(isnan(value(e, REQ "{route=\"blob\",method=\"GET\",code=\"404\"}")));

    /* blob: 0.0001, 0.001 (on a bound: counted in it), 0.003, 0.7 */
    assert_true(value(e, DUR "_bucket{route=\"blob\",le=\"0.0005\"}") == 1);
    assert_true(value(e, DUR "_bucket{route=\"blob\",le=\"0.001\"}") == 2);
    assert_true(value(e, DUR "_bucket{route=\"blob\",le=\"0.0025\"}") == 2);
    assert_true(value(e, DUR "_bucket{route=\"blob\",le=\"0.005\"}") == 3);
    assert_true(value(e, DUR "_bucket{route=\"blob\",le=\"0.5\"}") == 3);
    assert_true(value(e, DUR "_bucket{route=\"blob\",le=\"1\"}") == 4);
    assert_true(value(e, DUR "_bucket{route=\"blob\",le=\"10\"}") == 4);
    assert_true(value(e, DUR "_bucket{route=\"blob\",le=\"+Inf\"}") == 4);
    assert_true(value(e, DUR "_count{route=\"blob\"}") == 4);
    assert_true(fabs(value(e, DUR "_sum{route=\"blob\"}") - 0.7041) < 1e-9);
    /* manifest: 20 s (only +Inf), and -1, NaN, 0 all count as 0 s. */
    assert_true(value(e, DUR "_bucket{route=\"manifest\",le=\"0.0005\"}") == 3);
    assert_true(value(e, DUR "_bucket{route=\"manifest\",le=\"10\"}") == 3);
    assert_true(value(e, DUR "_bucket{route=\"manifest\",le=\"+Inf\"}") == 4);
    assert_true(value(e, DUR "_sum{route=\"manifest\"}") == 20);
    assert_true(value(e, DUR "_count{route=\"base\"}") == 1);

    /* Buckets are cumulative, in the given order. */
    static const char *const les[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                      "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                      "1",      "2.5",   "5",      "10",    "+Inf"};
    double prev = 0;
    for (size_t i = 0; i < 15; i++) {
        char series[128];
        snprintf(series, sizeof series, DUR "_bucket{route=\"blob\",le=\"%s\"}", les[i]);
        double v = value(e, series);
        assert_false(isnan(v));
        assert_true(v >= prev);
        prev = v;
    }

    assert_true(value(e, "portolan_http_request_bytes_total{route=\"blob\"}") == 5000);
    assert_true(value(e, "portolan_http_response_bytes_total{route=\"blob\"}") == 3000);
    assert_true(value(e, "portolan_http_request_bytes_total{route=\"manifest\"}") == 300);
    assert_true(value(e, "portolan_http_request_bytes_total{route=\"base\"}") == 1);
    assert_true(value(e, "portolan_http_response_bytes_total{route=\"base\"}") == 2);
    release(e);

    /* init starts over. */
    pt_metrics_init(routes, 3);
    render(e);
    assert_int_equal(count_prefix(e, REQ "{"), 0);
    assert_true(value(e, DUR "_count{route=\"blob\"}") == 0);
}

static void test_uploads_gauge(void **state)
{
    struct exposition *e = *state;

    pt_metrics_uploads_in_progress(1);
    pt_metrics_uploads_in_progress(1);
    pt_metrics_uploads_in_progress(1);
    pt_metrics_uploads_in_progress(-1);
    render(e);
    assert_true(value(e, "portolan_uploads_in_progress") == 2);
}

static void test_upload_phases(void **state)
{
    struct exposition *e = *state;
#define UP "portolan_upload_phase_seconds"

    pt_metrics_upload_phase(PT_METRICS_UP_WRITE, 0.25);
    pt_metrics_upload_phase(PT_METRICS_UP_WRITE, 2.0);
    pt_metrics_upload_phase(PT_METRICS_UP_FSYNC, -1); /* counts as 0 */
    pt_metrics_upload_phase(PT_METRICS_UP_N, 1.0);    /* no such phase: ignored */
    pt_metrics_upload_phase(-1, 1.0);                 /* ignored */
    render(e);
    assert_string_equal(type_of(e, UP), "histogram");
    assert_int_equal(count_prefix(e, UP "_bucket{"), PT_METRICS_UP_N * 15);
    assert_true(value(e, UP "_count{phase=\"write\"}") == 2);
    assert_true(fabs(value(e, UP "_sum{phase=\"write\"}") - 2.25) < 1e-9);
    assert_true(value(e, UP "_bucket{phase=\"write\",le=\"0.25\"}") == 1);
    assert_true(value(e, UP "_bucket{phase=\"write\",le=\"+Inf\"}") == 2);
    assert_true(value(e, UP "_count{phase=\"fsync\"}") == 1);
    assert_true(value(e, UP "_sum{phase=\"fsync\"}") == 0);
    assert_true(value(e, UP "_count{phase=\"receive\"}") == 0);
    assert_true(value(e, UP "_count{phase=\"total\"}") == 0);
#undef UP
}

static void test_ready_gauge(void **state)
{
    struct exposition *e = *state;

    render(e);
    assert_string_equal(type_of(e, "portolan_ready"), "gauge");
    assert_true(value(e, "portolan_ready") == 0);
    release(e);
    pt_metrics_ready(7); /* any non-zero is ready: exported as 1 */
    render(e);
    assert_true(value(e, "portolan_ready") == 1);
    release(e);
    pt_metrics_ready(0);
    render(e);
    assert_true(value(e, "portolan_ready") == 0);
}

/* Access-control counters: one family per kind, every result listed from the start. */
static void test_auth_counters(void **state)
{
    struct exposition *e = *state;

    render(e);
    assert_string_equal(type_of(e, "portolan_auth_decisions_total"), "counter");
    assert_string_equal(type_of(e, "portolan_auth_logins_total"), "counter");
    assert_string_equal(type_of(e, "portolan_auth_token_cache_total"), "counter");
    assert_true(value(e, "portolan_auth_decisions_total{result=\"denied\"}") == 0);
    release(e);
    pt_metrics_auth(PT_METRICS_AUTH_ALLOWED);
    pt_metrics_auth(PT_METRICS_AUTH_ALLOWED);
    pt_metrics_auth(PT_METRICS_AUTH_DENIED);
    pt_metrics_auth(PT_METRICS_AUTH_LOGIN_LIMITED);
    pt_metrics_auth(PT_METRICS_AUTH_CACHE_MISS);
    pt_metrics_auth(PT_METRICS_AUTH_N); /* out of range: ignored */
    pt_metrics_auth(-1);
    render(e);
    assert_true(value(e, "portolan_auth_decisions_total{result=\"allowed\"}") == 2);
    assert_true(value(e, "portolan_auth_decisions_total{result=\"denied\"}") == 1);
    assert_true(value(e, "portolan_auth_decisions_total{result=\"unauthorized\"}") == 0);
    assert_true(value(e, "portolan_auth_logins_total{result=\"limited\"}") == 1);
    assert_true(value(e, "portolan_auth_logins_total{result=\"ok\"}") == 0);
    assert_true(value(e, "portolan_auth_token_cache_total{result=\"miss\"}") == 1);
    assert_true(value(e, "portolan_auth_token_cache_total{result=\"hit\"}") == 0);
}

static void test_snapshot_counters(void **state)
{
    struct exposition *e = *state;

    render(e);
    assert_string_equal(type_of(e, "portolan_raft_snapshots_total"), "counter");
    assert_string_equal(type_of(e, "portolan_raft_snapshot_fetches_total"), "counter");
    assert_true(value(e, "portolan_raft_snapshots_total") == 0);
    assert_true(value(e, "portolan_raft_snapshot_fetches_total{outcome=\"ok\"}") == 0);
    release(e);
    pt_metrics_snapshot(PT_METRICS_SNAP_WRITTEN, 1000, 1500);
    pt_metrics_snapshot(PT_METRICS_SNAP_WRITTEN, 24, 500);
    pt_metrics_snapshot(PT_METRICS_SNAP_RESTORED, 1024, 250);
    pt_metrics_snapshot(PT_METRICS_SNAP_FETCHED, 1024, 10);
    pt_metrics_snapshot(PT_METRICS_SNAP_FETCH_FAILED, 0, 0);
    pt_metrics_snapshot(PT_METRICS_SNAP_SERVED, 512, 0);
    pt_metrics_snapshot(PT_METRICS_SNAP_SERVED, 512, 0);
    pt_metrics_snapshot(PT_METRICS_SNAP_SERVE_REFUSED, 0, 0);
    pt_metrics_snapshot(PT_METRICS_SNAP_N, 1, 1); /* out of range: ignored */
    pt_metrics_snapshot(-1, 1, 1);
    render(e);
    assert_true(value(e, "portolan_raft_snapshots_total") == 2);
    assert_true(value(e, "portolan_raft_snapshot_bytes_total") == 1024);
    assert_true(value(e, "portolan_raft_snapshot_seconds_total") == 2);
    assert_true(value(e, "portolan_raft_snapshot_restores_total") == 1);
    assert_true(value(e, "portolan_raft_snapshot_restore_bytes_total") == 1024);
    assert_true(value(e, "portolan_raft_snapshot_restore_seconds_total") == 0.25);
    assert_true(value(e, "portolan_raft_snapshot_fetches_total{outcome=\"ok\"}") == 1);
    assert_true(value(e, "portolan_raft_snapshot_fetches_total{outcome=\"failed\"}") == 1);
    assert_true(value(e, "portolan_raft_snapshot_fetch_bytes_total") == 1024);
    assert_true(value(e, "portolan_raft_snapshot_served_bytes_total") == 1024);
    assert_true(value(e, "portolan_raft_snapshot_serve_refused_total") == 1);
}

static void test_method_names(void **state)
{
    (void)state;
    assert_string_equal(pt_metrics_method("GET", 3), "GET");
    assert_string_equal(pt_metrics_method("GETX", 3), "GET");
    assert_string_equal(pt_metrics_method("DELETE", 6), "DELETE");
    assert_string_equal(pt_metrics_method("PATCH", 5), "PATCH");
    assert_string_equal(pt_metrics_method("get", 3), "other");
    assert_string_equal(pt_metrics_method("GE", 2), "other");
    assert_string_equal(pt_metrics_method("OPTIONS", 7), "other");
    assert_string_equal(pt_metrics_method(NULL, 0), "other");
}

static void test_label_escaping_and_route_limit(void **state)
{
    static const char *const odd[] = {"a\"b", "c\\d", "e\nf"};
    static const char *const many[20] = {"r0",  "r1",  "r2",  "r3",  "r4",  "r5",  "r6",
                                         "r7",  "r8",  "r9",  "r10", "r11", "r12", "r13",
                                         "r14", "r15", "r16", "r17", "r18", "r19"};
    struct exposition *e = *state;

    pt_metrics_init(odd, 3);
    pt_metrics_request(0, "GET", 200, 0, 0, 0);
    pt_metrics_request(2, "GET", 200, 0, 0, 0);
    render(e);
    assert_true(value(e, REQ "{route=\"a\\\"b\",method=\"GET\",code=\"200\"}") == 1);
    assert_true(value(e, REQ "{route=\"e\\nf\",method=\"GET\",code=\"200\"}") == 1);
    assert_true(value(e, DUR "_count{route=\"c\\\\d\"}") == 0);
    release(e);

    pt_metrics_init(many, 20);
    pt_metrics_request(15, "GET", 200, 0, 0, 0);
    pt_metrics_request(16, "GET", 200, 0, 0, 0); /* beyond PT_METRICS_MAX_ROUTES */
    render(e);
    assert_int_equal(count_prefix(e, DUR "_count{"), PT_METRICS_MAX_ROUTES);
    assert_true(value(e, REQ "{route=\"r15\",method=\"GET\",code=\"200\"}") == 1);
    assert_true(isnan(value(e, REQ "{route=\"r16\",method=\"GET\",code=\"200\"}")));
    release(e);

    pt_metrics_init(NULL, 0);
    pt_metrics_request(0, "GET", 200, 0, 0, 0);
    render(e);
    assert_int_equal(count_prefix(e, REQ "{"), 0);
    assert_int_equal(count_prefix(e, DUR), 0);
}

#define THREADS    4
#define PER_THREAD 20000

static void *hammer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;

    for (unsigned i = 0; i < PER_THREAD; i++) {
        pt_metrics_request(i % 3, (i & 1) ? "GET" : "PUT", 200, 0.002, 1, 2);
        pt_metrics_uploads_in_progress(id % 2 ? 1 : -1);
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    struct exposition *e = *state;
    pthread_t t[THREADS];
    double total = 0;

    for (unsigned i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, (void *)(uintptr_t)i), 0);
    for (unsigned i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);

    render(e);
    for (size_t r = 0; r < 3; r++) {
        char series[128];
        snprintf(series, sizeof series, DUR "_count{route=\"%s\"}", routes[r]);
        total += value(e, series);
    }
    assert_true(total == THREADS * PER_THREAD);
    double get = 0, put = 0;
    for (size_t r = 0; r < 3; r++) {
        char series[128];
        snprintf(series, sizeof series, REQ "{route=\"%s\",method=\"GET\",code=\"200\"}",
                 routes[r]);
        get += value(e, series);
        snprintf(series, sizeof series, REQ "{route=\"%s\",method=\"PUT\",code=\"200\"}",
                 routes[r]);
        put += value(e, series);
    }
    assert_true(get == THREADS * PER_THREAD / 2);
    assert_true(put == THREADS * PER_THREAD / 2);
    assert_true(value(e, DUR "_bucket{route=\"base\",le=\"0.001\"}") == 0);
    assert_true(value(e, DUR "_bucket{route=\"base\",le=\"0.0025\"}") ==
                value(e, DUR "_count{route=\"base\"}"));
    double in = 0;
    for (size_t r = 0; r < 3; r++) {
        char series[128];
        snprintf(series, sizeof series, "portolan_http_request_bytes_total{route=\"%s\"}",
                 routes[r]);
        in += value(e, series);
    }
    assert_true(in == THREADS * PER_THREAD);
    /* Half the threads add, half subtract. */
    assert_true(value(e, "portolan_uploads_in_progress") == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_render_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uploads_gauge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_gauge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_phases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_counters, setup, teardown),
        cmocka_unit_test(test_method_names),
        cmocka_unit_test_setup_teardown(test_label_escaping_and_route_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_updates, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
