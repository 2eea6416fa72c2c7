/*
 * log.h - structured logging: one JSON object per line.
 *
 * Every line carries "ts" (RFC 3339, UTC, milliseconds), "level" and "msg", followed by the
 * caller's fields. Fields are given as a jansson json_pack format and its arguments, e.g.
 *
 *     pt_log(PT_LOG_INFO, "request", "{s:s,s:i}", "path", path, "status", 200);
 *
 * Any thread may log; each line reaches the output with a single write(2), so lines from
 * different threads never interleave. Lines are capped at PT_LOG_LINE_MAX bytes: a longer
 * record is replaced by one holding only ts, level, a truncated msg and "log_truncated".
 */
#ifndef PT_LOG_H
#define PT_LOG_H

enum { PT_LOG_DEBUG, PT_LOG_INFO, PT_LOG_WARN, PT_LOG_ERROR };

/* Longest line written, newline included: PIPE_BUF, so pipe writes stay atomic. */
#define PT_LOG_LINE_MAX 4096

/* Sets the minimum level written (default PT_LOG_INFO); out-of-range values are ignored. */
void pt_log_set_level(int level);
/* 1 if a record at level would be written, else 0. Cheap: use it to skip building fields. */
int pt_log_enabled(int level);
/*
 * Writes one record if level is enabled. msg is borrowed. fields_fmt (borrowed, may be NULL)
 * is a json_pack format that must build an object; its arguments follow, with json_pack's
 * ownership rules ("o" steals a reference, "O" does not). Caller fields named ts, level or
 * msg are dropped. A format that fails to pack (bad format, NULL "s" string) still logs
 * the record, with the reason in a "log_error" field.
 */
void pt_log(int level, const char *msg, const char *fields_fmt, ...);
/* Parses "debug", "info", "warn" or "error"; returns the PT_LOG_* value or -1 if invalid. */
int pt_log_level_parse(const char *s);
/* Name of a PT_LOG_* level ("debug", ...); static storage, "unknown" if out of range. */
const char *pt_log_level_name(int level);
/* Redirects output to fd (default 2, stderr); the fd is borrowed. Returns the previous fd. */
int pt_log_set_fd(int fd);

#endif
