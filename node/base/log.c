/*
 * log.c - structured JSON-lines logging.
 *
 * Design: a record is built as a jansson object (ts, level, msg first, then the caller's
 * fields, which jansson keeps in insertion order), serialised with json_dumpb into a buffer
 * on the caller's stack and written with one write(2). No lock is taken: the line cap
 * (PT_LOG_LINE_MAX) equals PIPE_BUF, so a line written to a pipe (journald, a container
 * runtime) is never interleaved with another thread's, and regular files and terminals
 * take a whole buffer per write. The cap also bounds the stack buffer and what one record
 * can cost. A record that does not fit is replaced by a short one that says how long it
 * would have been.
 *
 * Invariants: the level and the fd are atomics read with relaxed ordering (a level change
 * becomes visible to other threads eventually, which is all logging needs); pt_log never
 * fails visibly and never allocates outside jansson.
 */
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Static_assert(PT_LOG_LINE_MAX <= PIPE_BUF, "a log line must be one atomic pipe write");

/* Longest msg kept in a truncated record, in bytes. */
#define MSG_TRUNC_MAX 1024

static atomic_int min_level = PT_LOG_INFO;
static atomic_int out_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void pt_log_set_level(int level)
{
    if (level >= PT_LOG_DEBUG && level <= PT_LOG_ERROR)
        atomic_store_explicit(&min_level, level, memory_order_relaxed);
}

int pt_log_enabled(int level)
{
    return level >= atomic_load_explicit(&min_level, memory_order_relaxed) && level <= PT_LOG_ERROR;
}

int pt_log_level_parse(const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = PT_LOG_DEBUG; i <= PT_LOG_ERROR; i++) {
        if (strcmp(s, level_names[i]) == 0)
            return i;
    }
    return -1;
}

const char *pt_log_level_name(int level)
{
    if (level < PT_LOG_DEBUG || level > PT_LOG_ERROR)
        return "unknown";
    return level_names[level];
}

int pt_log_set_fd(int fd)
{
    return atomic_exchange_explicit(&out_fd, fd, memory_order_relaxed);
}

/* Formats the current UTC time as 2006-01-02T15:04:05.000Z into buf (at least 32 bytes). */
static void format_ts(char *buf, size_t len)
{
    struct timespec now;
    struct tm tm;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03uZ", (unsigned)(now.tv_nsec / 1000000L) % 1000u);
}

/* A JSON string for msg; msg must be valid UTF-8 or it is replaced by a fixed text. */
static json_t *msg_string(const char *msg, size_t maxlen)
{
    size_t n = strlen(msg);
    json_t *s;

    if (n > maxlen) {
        n = maxlen;
        /* Back off to the start of a UTF-8 sequence so the cut leaves valid text. */
        while (n > 0 && ((unsigned char)msg[n] & 0xC0) == 0x80)
            n--;
    }
    s = json_stringn(msg, n);
    if (s == NULL)
        s = json_string("(message is not valid UTF-8)");
    return s;
}

static void write_line(const char *buf, size_t len)
{
    int fd = atomic_load_explicit(&out_fd, memory_order_relaxed);

    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* Adds ts, level and msg to a fresh object; NULL if out of memory. */
static json_t *base_record(const char *ts, int level, const char *msg, size_t msgmax)
{
    json_t *rec = json_object();

    if (rec == NULL)
        return NULL;
    if (json_object_set_new(rec, "ts", json_string(ts)) != 0 ||
        json_object_set_new(rec, "level", json_string(pt_log_level_name(level))) != 0 ||
        json_object_set_new(rec, "msg", msg_string(msg ? msg : "", msgmax)) != 0) {
        json_decref(rec);
        return NULL;
    }
    return rec;
}

void pt_log(int level, const char *msg, const char *fields_fmt, ...)
{
    char line[PT_LOG_LINE_MAX];
    char ts[32];
    json_t *rec;
    size_t n;

    if (!pt_log_enabled(level))
        return;
    format_ts(ts, sizeof ts);
    rec = base_record(ts, level, msg, PT_LOG_LINE_MAX);
    if (rec == NULL)
        return;

    if (fields_fmt != NULL) {
        json_error_t jerr;
        json_t *fields;
        va_list ap;

        va_start(ap, fields_fmt);
        fields = json_vpack_ex(&jerr, 0, fields_fmt, ap);
        va_end(ap);
        if (fields == NULL) {
            json_object_set_new(rec, "log_error", json_string(jerr.text));
        } else if (!json_is_object(fields)) {
            json_object_set_new(rec, "log_error", json_string("log fields are not an object"));
        } else {
            json_object_update_missing(rec, fields);
        }
        json_decref(fields);
    }

    /* One byte is kept for the newline. */
    n = json_dumpb(rec, line, sizeof line - 1, JSON_COMPACT);
    json_decref(rec);
    if (n == 0 || n > sizeof line - 1) {
        size_t full = n;

        rec = base_record(ts, level, msg, MSG_TRUNC_MAX);
        if (rec == NULL)
            return;
        json_object_set_new(rec, "log_truncated", json_integer((json_int_t)full));
        n = json_dumpb(rec, line, sizeof line - 1, JSON_COMPACT);
        json_decref(rec);
        if (n == 0 || n > sizeof line - 1)
            return;
    }
    line[n++] = '\n';
    write_line(line, n);
}
