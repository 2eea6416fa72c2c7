/*
 * test_log.c - the log module (node/base/log.c) whose level the configuration sets: level
 * names, filtering by level, and the records it writes, one JSON object a line with the fixed
 * fields first, a note when the fields cannot be packed, and a short record in place of an
 * oversized one. What is logged is captured through a pipe put in place of the log's fd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

struct capture {
    int fds[2];
    int saved_fd;
};

static void capture_start(struct capture *cap)
{
    assert_int_equal(pipe2(cap->fds, O_NONBLOCK), 0);
    cap->saved_fd = pt_log_set_fd(cap->fds[1]);
}

/* Reads what was logged; returns the number of bytes put into buf (NUL-terminated). */
static size_t capture_read(struct capture *cap, char *buf, size_t len)
{
    ssize_t n = read(cap->fds[0], buf, len - 1);

    if (n < 0)
        n = 0;
    buf[n] = '\0';
    return (size_t)n;
}

static void capture_stop(struct capture *cap)
{
    pt_log_set_fd(cap->saved_fd);
    close(cap->fds[0]);
    close(cap->fds[1]);
}

static void test_log_levels(void **state)
{
    (void)state;
    assert_int_equal(pt_log_level_parse("debug"), PT_LOG_DEBUG);
    assert_int_equal(pt_log_level_parse("info"), PT_LOG_INFO);
    assert_int_equal(pt_log_level_parse("warn"), PT_LOG_WARN);
    assert_int_equal(pt_log_level_parse("error"), PT_LOG_ERROR);
    assert_int_equal(pt_log_level_parse("warning"), -1);
    assert_int_equal(pt_log_level_parse("Info"), -1);
    assert_int_equal(pt_log_level_parse(""), -1);
    assert_int_equal(pt_log_level_parse(NULL), -1);
    assert_string_equal(pt_log_level_name(PT_LOG_WARN), "warn");
    assert_string_equal(pt_log_level_name(42), "unknown");

    pt_log_set_level(PT_LOG_WARN);
    assert_false(pt_log_enabled(PT_LOG_INFO));
    assert_true(pt_log_enabled(PT_LOG_WARN));
    assert_true(pt_log_enabled(PT_LOG_ERROR));
    pt_log_set_level(17); /* ignored */
    assert_false(pt_log_enabled(PT_LOG_DEBUG));
    assert_true(pt_log_enabled(PT_LOG_WARN));
    pt_log_set_level(PT_LOG_INFO);
}

static void test_log_output(void **state)
{
    struct capture cap;
    char buf[8192];
    json_error_t jerr;
    json_t *rec;
    size_t n;

    (void)state;
    pt_log_set_level(PT_LOG_INFO);
    capture_start(&cap);

    pt_log(PT_LOG_DEBUG, "hidden", NULL);
    assert_int_equal(capture_read(&cap, buf, sizeof buf), 0);

    pt_log(PT_LOG_INFO, "request", "{s:s,s:i,s:s}", "path", "/v2/", "status", 200, "msg",
           "clobber");
    n = capture_read(&cap, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(buf[n - 1], '\n');
    assert_null(memchr(buf, '\n', n - 1)); /* one line */
    /* Fixed fields come first. */
    assert_memory_equal(buf, "{\"ts\":\"", 7);
    rec = json_loads(buf, 0, &jerr);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(rec, "msg")), "request");
    assert_string_equal(json_string_value(json_object_get(rec, "path")), "/v2/");
    assert_int_equal(json_integer_value(json_object_get(rec, "status")), 200);
    const char *ts = json_string_value(json_object_get(rec, "ts"));
    assert_non_null(ts);
    /* 2006-01-02T15:04:05.000Z */
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[4], '-');
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[19], '.');
    assert_int_equal(ts[23], 'Z');
    json_decref(rec);

    /* A format that cannot be packed still logs, with the reason. */
    pt_log(PT_LOG_ERROR, "bad fields", "{s:s}", "path", (const char *)NULL);
    capture_read(&cap, buf, sizeof buf);
    rec = json_loads(buf, 0, &jerr);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "level")), "error");
    assert_non_null(json_object_get(rec, "log_error"));
    json_decref(rec);

    pt_log(PT_LOG_WARN, "not an object", "[i]", 1);
    capture_read(&cap, buf, sizeof buf);
    rec = json_loads(buf, 0, &jerr);
    assert_non_null(rec);
    assert_non_null(json_object_get(rec, "log_error"));
    json_decref(rec);

    /* Oversized records are replaced by a short one that still parses. */
    char *big = malloc(3 * PT_LOG_LINE_MAX);
    assert_non_null(big);
    memset(big, 'x', 3 * PT_LOG_LINE_MAX - 1);
    big[3 * PT_LOG_LINE_MAX - 1] = '\0';
    pt_log(PT_LOG_WARN, big, "{s:s}", "field", big);
    n = capture_read(&cap, buf, sizeof buf);
    assert_true(n > 0 && n <= PT_LOG_LINE_MAX);
    rec = json_loads(buf, 0, &jerr);
    assert_non_null(rec);
    assert_true(json_integer_value(json_object_get(rec, "log_truncated")) > PT_LOG_LINE_MAX);
    assert_int_equal(strlen(json_string_value(json_object_get(rec, "msg"))), 1024);
    assert_null(json_object_get(rec, "field"));
    json_decref(rec);
    free(big);

    capture_stop(&cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_log_output),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
