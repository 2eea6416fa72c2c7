/*
 * auditlog.c - `portolan audit verify [--data-dir DIR | FILE...]` and `portolan audit tail
 * [--data-dir DIR] [-n N] [--follow]`: the region's audit log read from local files (format
 * and chain in audit/audit.h). No HTTP, no credentials: whoever can read the files can read
 * the log.
 *
 * tail finds the start of the last N lines by reading backwards in BLOCK bytes, so memory
 * stays bounded whatever N and the line lengths are, and prints from there to the end with
 * control bytes (but the newline and tab) shown as '?'. --follow then polls every
 * FOLLOW_POLL_MS: more bytes are printed as they come; a new audit.log (rotation, seen as a
 * different inode) is read from its start after the rest of the old one.
 */
#include "cli.h"
#include "cli_int.h"

#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_DATA_DIR "./portolan-data" /* as portolan serve's --data-dir */
#define BLOCK            65536
#define FOLLOW_POLL_MS   500

static int verify(const struct cli_opts *o, FILE *out, FILE *err)
{
    char dir[PATH_MAX];
    uint64_t lines = 0;
    int rc;

    if (o->n_files > 0) {
        rc = pt_audit_verify_files(o->files, o->n_files, out, &lines);
    } else {
        snprintf(dir, sizeof dir, "%s/audit", o->data_dir ? o->data_dir : DEFAULT_DATA_DIR);
        rc = pt_audit_verify(dir, out, &lines);
    }
    if (rc == 0)
        return PT_CLI_OK;
    fprintf(err, "portolan %s: %s\n", cli_cmd_titles[o->cmd],
            rc == 1 ? "the audit chain is broken (see above)" : "cannot read the audit log");
    return PT_CLI_FAILED;
}

/* Copies fd's bytes from its position to its end to out, control bytes shown as '?'.
 * Returns 0, or -1 when fd cannot be read or out written. */
static int copy_clean(int fd, FILE *out)
{
    char buf[BLOCK];
    ssize_t r;

    while ((r = read(fd, buf, sizeof buf)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        for (ssize_t i = 0; i < r; i++) {
            unsigned char c = (unsigned char)buf[i];
            if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
                buf[i] = '?';
        }
        if (fwrite(buf, 1, (size_t)r, out) != (size_t)r)
            return -1;
    }
    return fflush(out) == 0 ? 0 : -1;
}

/* The offset where the last n lines of fd (size bytes) start. */
static off_t last_lines_start(int fd, off_t size, unsigned long n)
{
    char buf[BLOCK];
    off_t pos = size;
    unsigned long seen = 0;
    bool first = true;

    if (n == 0)
        return size;
    while (pos > 0) {
        size_t want = pos < BLOCK ? (size_t)pos : BLOCK;
        ssize_t r = pread(fd, buf, want, pos - (off_t)want);
        if (r != (ssize_t)want)
            return 0;
        for (size_t i = want; i-- > 0;) {
            /* The file's final '\n' ends the last line; it does not start one. */
            if (first && i == want - 1 && pos == size && buf[i] == '\n')
                continue;
            if (buf[i] == '\n' && ++seen == n)
                return pos - (off_t)want + (off_t)i + 1;
        }
        first = false;
        pos -= (off_t)want;
    }
    return 0;
}

static int tail(const struct cli_opts *o, FILE *out, FILE *err)
{
    const char *title = cli_cmd_titles[o->cmd];
    char path[PATH_MAX];
    struct stat st, now;
    int fd;

    snprintf(path, sizeof path, "%s/audit/audit.log", o->data_dir ? o->data_dir : DEFAULT_DATA_DIR);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(err, "portolan %s: %s: %s\n", title, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return PT_CLI_FAILED;
    }
    if (lseek(fd, last_lines_start(fd, st.st_size, o->lines), SEEK_SET) < 0 ||
        copy_clean(fd, out) != 0)
        goto failed;
    while (o->follow) {
        struct timespec ts = {0, FOLLOW_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
        if (copy_clean(fd, out) != 0)
            goto failed;
        if (stat(path, &now) != 0 || (now.st_ino == st.st_ino && now.st_dev == st.st_dev))
            continue;
        /* Rotated: the rest of the old file was printed above; go on with the new one. */
        int nfd = open(path, O_RDONLY | O_CLOEXEC);
        if (nfd < 0 || fstat(nfd, &st) != 0) {
            if (nfd >= 0)
                close(nfd);
            continue;
        }
        close(fd);
        fd = nfd;
        if (copy_clean(fd, out) != 0)
            goto failed;
    }
    close(fd);
    return PT_CLI_OK;
failed:
    fprintf(err, "portolan %s: %s: cannot read it or write the output\n", title, path);
    close(fd);
    return PT_CLI_FAILED;
}

int cli_audit_run(const struct cli_opts *o, FILE *out, FILE *err)
{
    return o->cmd == CMD_AUDIT_VERIFY ? verify(o, out, err) : tail(o, out, err);
}
