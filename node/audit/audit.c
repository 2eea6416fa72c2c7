/*
 * audit.c - writing the audit log (audit.h): one hash-chained JSON line per event, rotation,
 * and continuing the chain after a restart.
 *
 * Design: one mutex orders everything that touches the chain: the time stamp, the "prev" of
 * the line, the rotation and the write. The line's fields are cut and packed before the lock
 * is taken; under it the time and "prev" are set, the object is dumped into a stack buffer
 * and written with one write() on an O_APPEND descriptor, so a reader sees whole lines and
 * concurrent writers never interleave. fdatasync runs on rotation and close only: an audit
 * line is as durable as the page cache until then (a flush per line would cost a disk flush per
 * request; a crash of the machine may lose the last lines, never reorder them).
 *
 * Invariants: a->prev is the hash of the last line that reached the file (or stderr); a line
 * that failed to write leaves it unchanged. a->size counts the bytes of the live file.
 * A live file left ending without '\n' (a crash in the middle of a write) gets a '\n' on open
 * and the chain continues from the torn bytes, so verify names that line instead of the next
 * event being glued to it.
 *
 * Threads: pt_audit_record from any thread (a->lock); open and close from one.
 */
#include "audit.h"
#include "audit_int.h"

#include "err.h"
#include "fileio.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Bounds of the fields of a line (bytes before JSON escaping). With the keys, the worst
 * escaping (6 bytes a control byte) is caught by the retry in pack_line with SHORT_MAX. */
#define REGION_MAX     64
#define IDENTITY_MAX   160
#define CLIENT_MAX     64
#define ACTION_MAX     64
#define REPOSITORY_MAX 256
#define REFERENCE_MAX  160
#define REQUEST_ID_MAX 64
#define DETAIL_MAX     1024
#define SHORT_MAX      48 /* every field on the second try */

struct pt_audit {
    pthread_mutex_t lock;
    int fd; /* live file, -1 when it could not be (re)opened or with to_stderr */
    int to_stderr;
    uint64_t rotate_bytes;
    unsigned keep;
    uint64_t size;
    char region[REGION_MAX + 1];
    char dir[PATH_MAX];
    char prev[PT_AUDIT_HASH_HEX];
};

/* ---- opening ---------------------------------------------------------------------------- */

/* Sets a->prev to the hash of the last line of the file open on fd (borrowed); *size its
 * length. An empty file leaves a->prev alone. With fix_torn, a torn last line gets its '\n'. */
static int chain_from(struct pt_audit *a, int fd, uint64_t *size, int fix_torn)
{
    char buf[PT_AUDIT_LINE_MAX + 1];
    size_t len;
    int torn, rc = pt_audit_last_line(fd, buf, &len, size, &torn);

    if (rc != 0 || *size == 0)
        return rc;
    pt_audit_hash_hex(buf, len, a->prev);
    if (torn && fix_torn) {
        if (write(fd, "\n", 1) != 1)
            return PT_E_IO;
        (*size)++;
        pt_log(PT_LOG_WARN, "audit log ended in an incomplete line; terminated it", "{s:s}", "dir",
               a->dir);
    }
    return 0;
}

static int open_live(struct pt_audit *a)
{
    char path[PATH_MAX];

    if (pt_audit_path(path, sizeof path, a->dir, 0) != 0)
        return PT_E_CONFIG;
    a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (a->fd < 0)
        return PT_E_IO;
    if (fchmod(a->fd, 0600) != 0) {
        close(a->fd);
        a->fd = -1;
        return PT_E_IO;
    }
    return 0;
}

int pt_audit_open(const char *data_dir, const char *region, int to_stderr, uint64_t rotate_bytes,
                  unsigned keep_files, struct pt_audit **out)
{
    struct pt_audit *a;
    uint64_t size = 0;
    int rc;

    if (region == NULL || keep_files > PT_AUDIT_KEEP_MAX ||
        (!to_stderr && (data_dir == NULL || data_dir[0] == '\0')))
        return PT_E_CONFIG;
    a = calloc(1, sizeof *a);
    if (a == NULL)
        return PT_E_NOMEM;
    a->fd = -1;
    a->to_stderr = to_stderr;
    a->rotate_bytes = rotate_bytes;
    a->keep = keep_files;
    snprintf(a->region, sizeof a->region, "%.*s", REGION_MAX, region);
    memset(a->prev, '0', PT_AUDIT_HASH_HEX - 1);
    a->prev[PT_AUDIT_HASH_HEX - 1] = '\0';
    if (pthread_mutex_init(&a->lock, NULL) != 0) {
        free(a);
        return PT_E_NOMEM;
    }
    if (to_stderr) {
        *out = a;
        return 0;
    }
    int w = snprintf(a->dir, sizeof a->dir, "%s/audit", data_dir);
    if (w < 0 || (size_t)w >= sizeof a->dir - 32) {
        rc = PT_E_CONFIG;
        goto err;
    }
    if ((mkdir(a->dir, 0700) != 0 && errno != EEXIST) || chmod(a->dir, 0700) != 0) {
        rc = PT_E_IO;
        goto err;
    }
    rc = open_live(a);
    if (rc != 0)
        goto err;
    rc = chain_from(a, a->fd, &size, 1);
    if (rc == 0 && size == 0) {
        /* Rotated just before a stop: the chain continues from audit.log.1. */
        char path[PATH_MAX];
        uint64_t old = 0;
        int fd = pt_audit_path(path, sizeof path, a->dir, 1) == 0
                     ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
                     : -1;
        if (fd >= 0) {
            rc = chain_from(a, fd, &old, 0);
            close(fd);
        }
    }
    if (rc != 0)
        goto err_after_open;
    a->size = size;
    *out = a;
    return 0;
err_after_open:
    close(a->fd);
err:
    pt_log(PT_LOG_ERROR, "cannot open the audit log", "{s:s,s:s}", "dir", a->dir, "error",
           pt_err_message(rc));
    pthread_mutex_destroy(&a->lock);
    free(a);
    return rc;
}

void pt_audit_close(struct pt_audit *a)
{
    if (a == NULL)
        return;
    if (a->fd >= 0) {
        fdatasync(a->fd);
        close(a->fd);
    }
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void pt_audit_last_hash(struct pt_audit *a, char out[PT_AUDIT_HASH_HEX])
{
    pthread_mutex_lock(&a->lock);
    memcpy(out, a->prev, PT_AUDIT_HASH_HEX);
    pthread_mutex_unlock(&a->lock);
}

/* ---- one line --------------------------------------------------------------------------- */

/* s cut to max bytes as a JSON string (null for NULL): a cut inside a UTF-8 sequence backs
 * off to its start; any other invalid UTF-8 turns every non-ASCII byte into '?'. */
static json_t *str_value(const char *s, size_t max)
{
    size_t n;
    json_t *v;
    char tmp[DETAIL_MAX];

    if (s == NULL)
        return json_null();
    n = strnlen(s, max);
    v = json_stringn(s, n);
    if (v != NULL)
        return v;
    while (n > 0 && ((unsigned char)s[n - 1] & 0xC0) == 0x80)
        n--;
    if (n > 0 && (unsigned char)s[n - 1] >= 0xC0)
        n--;
    v = json_stringn(s, n);
    if (v != NULL)
        return v;
    n = strnlen(s, max < sizeof tmp ? max : sizeof tmp);
    for (size_t i = 0; i < n; i++)
        tmp[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    return json_stringn(tmp, n);
}

/* The line's object without time and prev (set under the lock, in their places); every
 * field cut to its bound, or to short_max when short_max is not 0. */
static json_t *pack_line(const struct pt_audit *a, const struct pt_audit_event *ev,
                         size_t short_max)
{
#define LIM(m) (short_max ? short_max : (m))
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    if (json_object_set_new(o, "time", json_null()) != 0 ||
        json_object_set_new(o, "region", str_value(a->region, LIM(REGION_MAX))) != 0 ||
        json_object_set_new(o, "identity", str_value(ev->identity, LIM(IDENTITY_MAX))) != 0 ||
        json_object_set_new(o, "client", str_value(ev->client, LIM(CLIENT_MAX))) != 0 ||
        json_object_set_new(o, "action", str_value(ev->action, LIM(ACTION_MAX))) != 0 ||
        json_object_set_new(o, "repository", str_value(ev->repository, LIM(REPOSITORY_MAX))) != 0 ||
        json_object_set_new(o, "reference", str_value(ev->reference, LIM(REFERENCE_MAX))) != 0 ||
        json_object_set_new(o, "status", json_integer(ev->status)) != 0 ||
        json_object_set_new(o, "request_id", str_value(ev->request_id, LIM(REQUEST_ID_MAX))) != 0 ||
        json_object_set_new(o, "detail", str_value(ev->detail, LIM(DETAIL_MAX))) != 0 ||
        (a->to_stderr && json_object_set_new(o, "audit", json_true()) != 0) ||
        json_object_set_new(o, "prev", json_null()) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
#undef LIM
}

static void now_rfc3339(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Moves audit.log to audit.log.1 (older ones up one, the one past keep removed) and opens a
 * fresh audit.log. Under a->lock. */
static int rotate(struct pt_audit *a)
{
    char from[PATH_MAX], to[PATH_MAX];

    if (a->fd >= 0) {
        fdatasync(a->fd);
        close(a->fd);
        a->fd = -1;
    }
    if (pt_audit_path(from, sizeof from, a->dir, 0) != 0)
        return PT_E_CONFIG;
    if (a->keep == 0) {
        if (unlink(from) != 0 && errno != ENOENT)
            return PT_E_IO;
    } else {
        if (pt_audit_path(to, sizeof to, a->dir, a->keep) != 0 ||
            (unlink(to) != 0 && errno != ENOENT))
            return PT_E_IO;
        for (unsigned i = a->keep - 1; i >= 1; i--) {
            if (pt_audit_path(from, sizeof from, a->dir, i) != 0 ||
                pt_audit_path(to, sizeof to, a->dir, i + 1) != 0)
                return PT_E_CONFIG;
            if (rename(from, to) != 0 && errno != ENOENT)
                return PT_E_IO;
        }
        if (pt_audit_path(from, sizeof from, a->dir, 0) != 0 ||
            pt_audit_path(to, sizeof to, a->dir, 1) != 0 || rename(from, to) != 0)
            return PT_E_IO;
    }
    int dfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    a->size = 0;
    return open_live(a);
}

void pt_audit_record(struct pt_audit *a, const struct pt_audit_event *ev)
{
    char line[PT_AUDIT_LINE_MAX + 64], when[40], ebuf[128];
    json_t *o = pack_line(a, ev, 0), *o_short = NULL;
    size_t n = 0;
    const char *why = NULL;
    int rc = 0;

    if (o == NULL) {
        pt_log(PT_LOG_ERROR, "audit line not written", "{s:s}", "error", "out of memory");
        return;
    }
    pthread_mutex_lock(&a->lock);
    now_rfc3339(when, sizeof when);
    for (int attempt = 0; attempt < 2; attempt++) {
        json_t *cur = attempt == 0 ? o : o_short;
        if (cur == NULL)
            break;
        json_object_set_new(cur, "time", json_string(when));
        json_object_set_new(cur, "prev", json_string(a->prev));
        n = json_dumpb(cur, line, sizeof line, JSON_COMPACT);
        if (n > 0 && n < PT_AUDIT_LINE_MAX)
            break;
        n = 0;
        if (attempt == 0)
            o_short = pack_line(a, ev, SHORT_MAX);
    }
    if (n == 0) {
        why = "line does not fit";
        goto out;
    }
    line[n] = '\n';
    if (a->to_stderr) {
        if (pt_write_all(STDERR_FILENO, line, n + 1) != 0)
            why = strerror_r(errno, ebuf, sizeof ebuf);
        else
            pt_audit_hash_hex(line, n, a->prev);
        goto out;
    }
    if (a->fd >= 0 && a->rotate_bytes > 0 && a->size > 0 && a->size + n + 1 > a->rotate_bytes)
        rc = rotate(a);
    if (a->fd < 0 && rc == 0)
        rc = open_live(a);
    if (rc != 0) {
        why = "cannot rotate or open audit.log";
        goto out;
    }
    if (pt_write_all(a->fd, line, n + 1) != 0) {
        why = strerror_r(errno, ebuf, sizeof ebuf);
        goto out;
    }
    a->size += n + 1;
    pt_audit_hash_hex(line, n, a->prev);
out:
    pthread_mutex_unlock(&a->lock);
    if (why != NULL)
        pt_log(PT_LOG_ERROR, "audit line not written", "{s:s,s:s}", "dir", a->dir, "error", why);
    json_decref(o);
    json_decref(o_short);
}
