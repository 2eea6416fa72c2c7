/*
 * test_audit.c - the audit log (node/audit/): the hash chain of its lines across rotation and
 * restarts, what verify detects (edited, removed, reordered lines), concurrent writers, the
 * file modes, and the absence of any field for a secret.
 *
 * Every test works in a fresh temporary directory (support/tmpdir.h) and reads the files
 * back as bytes, so it checks what an operator would find on disk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "err.h"
#include "support/tmpdir.h"

static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";

struct fx {
    char dir[256];  /* data dir */
    char adir[300]; /* its audit/ */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    pt_tmpdir_create(f->dir, sizeof f->dir, "pt-audit-");
    snprintf(f->adir, sizeof f->adir, "%s/audit", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    assert_int_equal(pt_tmpdir_remove(f->dir), 0);
    free(f);
    return 0;
}

static void event(struct pt_audit *a, const char *action, int i)
{
    char ref[32], rid[32];
    snprintf(ref, sizeof ref, "v%d", i);
    snprintf(rid, sizeof rid, "req-%d", i);
    struct pt_audit_event ev = {.identity = "user:alice",
                                .client = "127.0.0.1",
                                .action = action,
                                .repository = "team/app",
                                .reference = ref,
                                .status = 201,
                                .request_id = rid,
                                .detail = NULL};
    pt_audit_record(a, &ev);
}

/* The whole content of path (owned, NUL-terminated), *len its length. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = n;
    return buf;
}

static void spit(const char *path, const char *s, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, len, f), len);
    fclose(f);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Verify of the whole directory, with the report kept in rep (rep_len bytes). */
static int verify_dir(const struct fx *f, char *rep, size_t rep_len, uint64_t *lines)
{
    FILE *r = fmemopen(rep, rep_len, "w");
    assert_non_null(r);
    int rc = pt_audit_verify(f->adir, r, lines);
    fclose(r);
    return rc;
}

static void test_fresh_log_format_and_modes(void **state)
{
    struct fx *f = *state;
    struct pt_audit *a;
    char path[400];
    struct stat st;

    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 0, 3, &a), 0);
    event(a, "push", 1);
    event(a, "delete", 2);
    pt_audit_close(a);

    assert_int_equal(stat(f->adir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(path, sizeof path, "%s/audit.log", f->adir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    char *s = slurp(path, NULL);
    assert_int_equal(count_lines(s), 2);
    char *nl = strchr(s, '\n');
    json_t *l1 = json_loadb(s, (size_t)(nl - s), 0, NULL);
    assert_non_null(l1);
    assert_string_equal(json_string_value(json_object_get(l1, "prev")), zeros);
    assert_string_equal(json_string_value(json_object_get(l1, "region")), "eu");
    assert_string_equal(json_string_value(json_object_get(l1, "identity")), "user:alice");
    assert_string_equal(json_string_value(json_object_get(l1, "action")), "push");
    assert_string_equal(json_string_value(json_object_get(l1, "reference")), "v1");
    assert_int_equal(json_integer_value(json_object_get(l1, "status")), 201);
    assert_true(json_is_null(json_object_get(l1, "detail")));
    const char *t = json_string_value(json_object_get(l1, "time"));
    assert_non_null(t);
    /* 2026-12-06T20:41:19.123Z */
    assert_int_equal(strlen(t), 24);
    assert_int_equal(t[10], 'T');
    assert_int_equal(t[19], '.');
    assert_int_equal(t[23], 'Z');
    /* The keys come in the documented order, time first and prev last. */
    assert_true(strncmp(s, "{\"time\":", 8) == 0);
    assert_true(strncmp(nl - 75, ",\"prev\":\"", 9) == 0);
    json_decref(l1);
    free(s);

    uint64_t lines = 0;
    char rep[4096];
    assert_int_equal(verify_dir(f, rep, sizeof rep, &lines), 0);
    assert_int_equal(lines, 2);
}

static void test_chain_across_rotation(void **state)
{
    struct fx *f = *state;
    struct pt_audit *a;
    char path[400], rep[8192];
    uint64_t lines = 0;

    /* Each line is around 250 bytes: 1000 bytes hold three or four. */
    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 1000, 3, &a), 0);
    for (int i = 0; i < 40; i++)
        event(a, "push", i);
    pt_audit_close(a);

    /* Rotated files 1..3 and the live one; older ones were removed. */
    for (unsigned n = 1; n <= 3; n++) {
        snprintf(path, sizeof path, "%s/audit.log.%u", f->adir, n);
        assert_int_equal(access(path, F_OK), 0);
    }
    snprintf(path, sizeof path, "%s/audit.log.4", f->adir);
    assert_int_not_equal(access(path, F_OK), 0);

    assert_int_equal(verify_dir(f, rep, sizeof rep, &lines), 0);
    assert_true(lines > 8 && lines < 40);
    assert_non_null(strstr(rep, "the chain starts after earlier lines"));

    /* Verifying the live file alone cannot anchor it, but it is still a chain. */
    snprintf(path, sizeof path, "%s/audit.log", f->adir);
    FILE *r = fmemopen(rep, sizeof rep, "w");
    assert_int_equal(pt_audit_verify(path, r, &lines), 0);
    fclose(r);

    /* Files given out of order break the chain at the first line of the second. */
    char p1[400], p2[400];
    snprintf(p1, sizeof p1, "%s/audit.log.1", f->adir);
    snprintf(p2, sizeof p2, "%s/audit.log.2", f->adir);
    const char *wrong[] = {p1, p2};
    r = fmemopen(rep, sizeof rep, "w");
    assert_int_equal(pt_audit_verify_files(wrong, 2, r, NULL), 1);
    fclose(r);
    char want[500];
    snprintf(want, sizeof want, "%s:1: chain broken", p2);
    assert_non_null(strstr(rep, want));
}

static void test_rotation_keep_zero(void **state)
{
    struct fx *f = *state;
    struct pt_audit *a;
    char path[400], rep[4096];

    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 600, 0, &a), 0);
    for (int i = 0; i < 10; i++)
        event(a, "push", i);
    pt_audit_close(a);
    snprintf(path, sizeof path, "%s/audit.log.1", f->adir);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(verify_dir(f, rep, sizeof rep, NULL), 0);
}

static void test_restart_continues_chain(void **state)
{
    struct fx *f = *state;
    struct pt_audit *a;
    char h1[PT_AUDIT_HASH_HEX], h2[PT_AUDIT_HASH_HEX], path[400], rep[4096];
    uint64_t lines = 0;

    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 0, 3, &a), 0);
    event(a, "push", 1);
    event(a, "push", 2);
    pt_audit_last_hash(a, h1);
    pt_audit_close(a);

    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 0, 3, &a), 0);
    pt_audit_last_hash(a, h2);
    assert_string_equal(h1, h2);
    event(a, "login", 3);
    pt_audit_close(a);

    snprintf(path, sizeof path, "%s/audit.log", f->adir);
    char *s = slurp(path, NULL);
    assert_int_equal(count_lines(s), 3);
    char want[80];
    snprintf(want, sizeof want, "\"prev\":\"%s\"", h1);
    assert_non_null(strstr(s, want));
    free(s);
    assert_int_equal(verify_dir(f, rep, sizeof rep, &lines), 0);
    assert_int_equal(lines, 3);
}

static void test_restart_after_rotation_with_empty_live_file(void **state)
{
    struct fx *f = *state;
    struct pt_audit *a;
    char h1[PT_AUDIT_HASH_HEX], path[400], path1[400], rep[4096];

    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 0, 3, &a), 0);
    event(a, "push", 1);
    event(a, "push", 2);
    pt_audit_last_hash(a, h1);
    pt_audit_close(a);
    /* As if rotated just before a stop. */
    snprintf(path, sizeof path, "%s/audit.log", f->adir);
    snprintf(path1, sizeof path1, "%s/audit.log.1", f->adir);
    assert_int_equal(rename(path, path1), 0);
    spit(path, "", 0);

    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 0, 3, &a), 0);
    event(a, "push", 3);
    pt_audit_close(a);
    char *s = slurp(path, NULL);
    assert_non_null(strstr(s, h1));
    free(s);
    assert_int_equal(verify_dir(f, rep, sizeof rep, NULL), 0);
}

static void test_torn_last_line_is_terminated(void **state)
{
    struct fx *f = *state;
    struct pt_audit *a;
    char path[400], rep[4096];

    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 0, 3, &a), 0);
    event(a, "push", 1);
    pt_audit_close(a);
    snprintf(path, sizeof path, "%s/audit.log", f->adir);
    FILE *w = fopen(path, "ab");
    fputs("{\"time\":\"2026-", w);
    fclose(w);

    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 0, 3, &a), 0);
    event(a, "push", 2);
    pt_audit_close(a);
    char *s = slurp(path, NULL);
    assert_int_equal(count_lines(s), 3);
    free(s);
    /* The torn line is named; the event after it is a line of its own. */
    assert_int_equal(verify_dir(f, rep, sizeof rep, NULL), 1);
    assert_non_null(strstr(rep, "audit.log:2: not an audit line"));
}

/* Writes 6 lines and returns the file's content (owned), split into line starts. */
static char *six_lines(struct fx *f, char *path, size_t plen, char **starts, size_t *total)
{
    struct pt_audit *a;

    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 0, 3, &a), 0);
    for (int i = 0; i < 6; i++)
        event(a, "push", i);
    pt_audit_close(a);
    snprintf(path, plen, "%s/audit.log", f->adir);
    char *s = slurp(path, total);
    char *p = s;
    for (int i = 0; i < 6; i++) {
        starts[i] = p;
        p = strchr(p, '\n') + 1;
    }
    return s;
}

static void test_edit_detected(void **state)
{
    struct fx *f = *state;
    char path[400], rep[4096], *st[6];
    size_t total;
    char *s = six_lines(f, path, sizeof path, st, &total);

    /* Line 3 names another repository: line 4 no longer chains to it. */
    char *r = strstr(st[2], "team/app");
    memcpy(r, "team/apq", 8);
    spit(path, s, total);
    assert_int_equal(verify_dir(f, rep, sizeof rep, NULL), 1);
    assert_non_null(strstr(rep, "audit.log:4: chain broken"));
    free(s);
}

static void test_remove_detected(void **state)
{
    struct fx *f = *state;
    char path[400], rep[4096], *st[6];
    size_t total;
    char *s = six_lines(f, path, sizeof path, st, &total);

    /* Without line 2: line 3 becomes line 2 and does not chain to line 1. */
    size_t l2 = (size_t)(st[2] - st[1]);
    memmove(st[1], st[2], total - (size_t)(st[2] - s));
    spit(path, s, total - l2);
    assert_int_equal(verify_dir(f, rep, sizeof rep, NULL), 1);
    assert_non_null(strstr(rep, "audit.log:2: chain broken"));
    free(s);
}

static void test_reorder_detected(void **state)
{
    struct fx *f = *state;
    char path[400], rep[4096], *st[6];
    size_t total;
    char *s = six_lines(f, path, sizeof path, st, &total);

    /* Lines 4 and 5 swapped. */
    size_t l4 = (size_t)(st[4] - st[3]), l5 = (size_t)(st[5] - st[4]);
    char *tmp = malloc(l4 + l5);
    memcpy(tmp, st[4], l5);
    memcpy(tmp + l5, st[3], l4);
    memcpy(st[3], tmp, l4 + l5);
    free(tmp);
    spit(path, s, total);
    assert_int_equal(verify_dir(f, rep, sizeof rep, NULL), 1);
    assert_non_null(strstr(rep, "audit.log:4: chain broken"));
    free(s);
}

static void test_garbage_and_long_lines(void **state)
{
    struct fx *f = *state;
    char path[400], rep[4096];

    assert_int_equal(mkdir(f->adir, 0700), 0);
    snprintf(path, sizeof path, "%s/audit.log", f->adir);
    spit(path, "not json\n", 9);
    assert_int_equal(verify_dir(f, rep, sizeof rep, NULL), 1);
    assert_non_null(strstr(rep, "audit.log:1: not an audit line"));

    char *big = malloc(PT_AUDIT_LINE_MAX * 2 + 2);
    memset(big, 'x', PT_AUDIT_LINE_MAX * 2);
    big[PT_AUDIT_LINE_MAX * 2] = '\n';
    spit(path, big, PT_AUDIT_LINE_MAX * 2 + 1);
    assert_int_equal(verify_dir(f, rep, sizeof rep, NULL), 1);
    assert_non_null(strstr(rep, "longer than"));

    /* A last line longer than the bounded read: the log refuses to open, never guesses. */
    struct pt_audit *a = NULL;
    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 0, 3, &a), PT_E_CORRUPT);
    free(big);
}

static void test_long_and_odd_fields_fit_one_line(void **state)
{
    struct fx *f = *state;
    struct pt_audit *a;
    char path[400], rep[4096];
    char *huge = malloc(100000), ctl[3000];

    memset(huge, 'a', 99999);
    huge[99999] = '\0';
    memset(ctl, 0x01, sizeof ctl - 1); /* each escapes to 6 bytes */
    ctl[sizeof ctl - 1] = '\0';
    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 0, 3, &a), 0);
    struct pt_audit_event ev = {.identity = huge,
                                .client = ctl,
                                .action = "\xff\xfe bad utf-8",
                                .repository = ctl,
                                .reference = ctl,
                                .request_id = ctl,
                                .detail = ctl,
                                .status = 403};
    pt_audit_record(a, &ev);
    pt_audit_close(a);
    free(huge);
    snprintf(path, sizeof path, "%s/audit.log", f->adir);
    size_t len;
    char *s = slurp(path, &len);
    assert_int_equal(count_lines(s), 1);
    assert_true(len <= PT_AUDIT_LINE_MAX);
    assert_non_null(strstr(s, "\"action\":\"?? bad utf-8\""));
    free(s);
    assert_int_equal(verify_dir(f, rep, sizeof rep, NULL), 0);
}

struct writer {
    struct pt_audit *a;
    int id;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < 200; i++)
        event(w->a, w->id % 2 ? "push" : "delete", w->id * 1000 + i);
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    struct fx *f = *state;
    struct pt_audit *a;
    pthread_t th[4];
    struct writer ws[4];
    char rep[8192];
    uint64_t lines = 0;

    /* Rotation included: 4 x 200 lines of about 260 bytes through 20 KB files. */
    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 20000, 100, &a), 0);
    for (int i = 0; i < 4; i++) {
        ws[i] = (struct writer){a, i};
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &ws[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    pt_audit_close(a);
    assert_int_equal(verify_dir(f, rep, sizeof rep, &lines), 0);
    assert_int_equal(lines, 800);
    assert_non_null(strstr(rep, "ok: 800 lines"));
}

static void test_stderr_lines(void **state)
{
    struct fx *f = *state;
    struct pt_audit *a;
    char path[400], rep[4096];
    int saved = dup(STDERR_FILENO);

    snprintf(path, sizeof path, "%s/stderr.txt", f->dir);
    FILE *cap = fopen(path, "w");
    assert_non_null(cap);
    dup2(fileno(cap), STDERR_FILENO);
    assert_int_equal(pt_audit_open(NULL, "eu", 1, 0, 0, &a), 0);
    event(a, "push", 1);
    event(a, "push", 2);
    pt_audit_close(a);
    dup2(saved, STDERR_FILENO);
    close(saved);
    fclose(cap);

    /* Nothing on disk under the data dir; the lines chain on stderr. */
    assert_int_not_equal(access(f->adir, F_OK), 0);
    char *s = slurp(path, NULL);
    assert_int_equal(count_lines(s), 2);
    assert_non_null(strstr(s, "\"audit\":true"));
    free(s);
    FILE *r = fmemopen(rep, sizeof rep, "w");
    assert_int_equal(pt_audit_verify(path, r, NULL), 0);
    fclose(r);
}

/* The event has exactly these fields: nothing where a password, token secret or JWT could
 * go. A new field must be added here on purpose. */
static void test_no_secret_field(void **state)
{
    (void)state;
    struct pt_audit_event ev = {
        .identity = "token:ci",
        .client = "10.0.0.1",
        .action = "login",
        .repository = NULL,
        .reference = NULL,
        .status = 401,
        .request_id = "r",
        .detail = "bad credentials",
    };
    assert_int_equal(sizeof ev, 7 * sizeof(const char *) + sizeof(void *));
    assert_string_equal(ev.identity, "token:ci");
}

static void test_open_refusals(void **state)
{
    struct fx *f = *state;
    struct pt_audit *a = NULL;
    char file[400];

    assert_int_equal(pt_audit_open(NULL, "eu", 0, 0, 0, &a), PT_E_CONFIG);
    assert_int_equal(pt_audit_open(f->dir, NULL, 0, 0, 0, &a), PT_E_CONFIG);
    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 0, 10001, &a), PT_E_CONFIG);
    /* audit/ exists as a file. */
    snprintf(file, sizeof file, "%s/audit", f->dir);
    spit(file, "x", 1);
    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 0, 0, &a), PT_E_IO);
    assert_null(a);
    assert_int_equal(pt_audit_verify(file, NULL, NULL), 1);
    unlink(file);
    assert_int_equal(mkdir(file, 0755), 0);
    assert_int_equal(pt_audit_verify(file, NULL, NULL), PT_E_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_log_format_and_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_across_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_keep_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_continues_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_after_rotation_with_empty_live_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_torn_last_line_is_terminated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edit_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reorder_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_and_long_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_and_odd_fields_fit_one_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stderr_lines, setup, teardown),
        cmocka_unit_test(test_no_secret_field),
        cmocka_unit_test_setup_teardown(test_open_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
