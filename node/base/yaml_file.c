/*
 * yaml_file.c - shared helpers of the YAML file readers (see yaml_file.h).
 *
 * The read is bounded twice: by fstat before reading, and by reading into max + 1 bytes so a
 * file that grows past the limit while it is read is refused too.
 */
#include "yaml_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "err.h"

__attribute__((format(printf, 3, 4))) static int fail(char *errbuf, size_t errlen, const char *fmt,
                                                      ...)
{
    if (errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return PT_E_CONFIG;
}

int pt_yaml_read_file(const char *path, size_t max, char **out, size_t *outlen, char *errbuf,
                      size_t errlen)
{
    struct stat st;
    size_t len = 0;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(errbuf, errlen, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(errbuf, errlen, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return fail(errbuf, errlen, "%s: larger than %zu bytes", path, max);
    }
    char *buf = malloc(max + 1);
    if (buf == NULL) {
        close(fd);
        return fail(errbuf, errlen, "%s: out of memory", path);
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, max + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = fail(errbuf, errlen, "%s: read: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            rc = fail(errbuf, errlen, "%s: larger than %zu bytes", path, max);
            break;
        }
    }
    close(fd);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

const char *pt_yaml_event_what(yaml_event_type_t t)
{
    switch (t) {
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_ALIAS_EVENT:
        return "an alias";
    case YAML_SCALAR_EVENT:
        return "a single value";
    default:
        return "unexpected YAML";
    }
}

const char *pt_yaml_scalar_text(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    if (strlen(v) != ev->data.scalar.length)
        return NULL;
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
         strcmp(v, "NULL") == 0))
        return "";
    return v;
}

int pt_yaml_walk(const char *text, size_t len, const char *name, pt_yaml_event_cb cb, void *arg,
                 char *errbuf, size_t errlen)
{
    enum { STREAM, DOCUMENT, INSIDE, AFTER } at = STREAM; /* where in the stream */
    yaml_parser_t parser;
    int rc;

    if (!yaml_parser_initialize(&parser))
        return fail(errbuf, errlen, "%s: out of memory", name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (;;) {
        yaml_event_t ev;
        bool end = false;

        if (!yaml_parser_parse(&parser, &ev)) {
            rc = fail(errbuf, errlen, "%s:%lu: YAML syntax error: %s", name,
                      (unsigned long)parser.problem_mark.line + 1,
                      parser.problem ? parser.problem : "unknown");
            break;
        }
        unsigned long line = (unsigned long)ev.start_mark.line + 1;
        rc = 0;
        if (at == INSIDE && ev.type == YAML_DOCUMENT_END_EVENT)
            at = AFTER;
        else if (at == INSIDE)
            rc = cb(arg, &ev);
        else if (at == STREAM && ev.type == YAML_STREAM_START_EVENT)
            at = DOCUMENT;
        else if (at == DOCUMENT && ev.type == YAML_DOCUMENT_START_EVENT)
            at = INSIDE;
        else if ((at == DOCUMENT || at == AFTER) && ev.type == YAML_STREAM_END_EVENT)
            end = true;
        else if (at == AFTER && ev.type == YAML_DOCUMENT_START_EVENT)
            rc = fail(errbuf, errlen, "%s:%lu: only one YAML document is allowed", name, line);
        else
            rc = fail(errbuf, errlen, "%s:%lu: unexpected YAML structure", name, line);
        yaml_event_delete(&ev);
        if (rc != 0 || end)
            break;
    }
    yaml_parser_delete(&parser);
    return rc;
}
