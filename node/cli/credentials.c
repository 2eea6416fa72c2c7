/*
 * credentials.c - which user and password the admin client's requests carry, and reading
 * secrets from standard input or the terminal.
 *
 * Design: cli_cred_resolve runs once per command, before any request, and takes the first
 * source that has credentials: --user with --password-stdin (or a prompt), the environment
 * (PORTOLAN_USER, PORTOLAN_PASSWORD), then the auth files registry clients write, looked up
 * by the --region URL's host:port (credfile.c). The result goes with every request of the
 * command as HTTP Basic (client.c); libcurl does not send it on a redirect to another host.
 * The cluster shares one user directory, so the same credentials serve every region a
 * command asks.
 *
 * Invariants: a secret is never printed, logged or put in a message; a message names the user
 * and where it came from. Auth files are read only up to CLI_AUTHFILE_MAX bytes; buffers that
 * held a secret are zeroed when the command ends (cli.c) or the buffer goes out of scope.
 */
#include "cli.h"
#include "cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

static FILE *input_stream;

void pt_cli_set_input(FILE *in)
{
    input_stream = in;
}

FILE *cli_input(void)
{
    return input_stream != NULL ? input_stream : stdin;
}

int cli_read_secret_line(FILE *in, char *buf, size_t size, const char **why)
{
    size_t n = 0;
    int c;

    while ((c = getc(in)) != EOF && c != '\n') {
        if (n + 1 >= size) {
            explicit_bzero(buf, size);
            while ((c = getc(in)) != EOF && c != '\n')
                ;
            *why = "longer than 1024 bytes";
            return -1;
        }
        buf[n++] = (char)c;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    if (c == EOF && n == 0) {
        *why = "nothing on standard input";
        return -1;
    }
    return 0;
}

/* Reads one line from the terminal fd without echo. */
static int tty_line(int fd, const char *prompt, char *buf, size_t size, const char **why)
{
    struct termios old, quiet;
    size_t n = 0;
    char c;
    ssize_t r;
    int rc = 0;

    if (write(fd, prompt, strlen(prompt)) < 0 || tcgetattr(fd, &old) != 0) {
        *why = "no terminal to ask for a password";
        return -1;
    }
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
        *why = "cannot turn off the terminal's echo";
        return -1;
    }
    while ((r = read(fd, &c, 1)) == 1 && c != '\n') {
        if (n + 1 >= size) {
            *why = "longer than 1024 bytes";
            rc = -1;
            continue;
        }
        buf[n++] = c;
    }
    if (r != 1 && n == 0) {
        *why = "nothing typed";
        rc = -1;
    }
    buf[n] = '\0';
    tcsetattr(fd, TCSAFLUSH, &old);
    if (rc != 0)
        explicit_bzero(buf, size);
    return rc;
}

int cli_prompt_secret(const char *prompt, bool confirm, char *buf, size_t size, const char **why)
{
    char again[CLI_SECRET_MAX + 1];
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    int rc = -1;

    if (fd < 0) {
        *why = "no terminal to ask for a password (use --password-stdin)";
        return -1;
    }
    if (tty_line(fd, prompt, buf, size, why) != 0)
        goto out;
    if (buf[0] == '\0') {
        *why = "empty password";
        goto out;
    }
    if (confirm) {
        if (tty_line(fd, "again: ", again, sizeof again, why) != 0)
            goto out;
        if (strcmp(again, buf) != 0) {
            *why = "the passwords differ";
            goto out;
        }
    }
    rc = 0;
out:
    explicit_bzero(again, sizeof again);
    if (rc != 0)
        explicit_bzero(buf, size);
    close(fd);
    return rc;
}

/* Reads path (borrowed) whole, at most CLI_AUTHFILE_MAX bytes, into *data (owned). Returns
 * 0, 1 when the file does not exist, -1 with *why. */
static int read_small_file(const char *path, char **data, size_t *len, const char **why)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *p;
    size_t n = 0;

    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 1;
        *why = "cannot be read";
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *why = "not a regular file";
        return -1;
    }
    if (st.st_size > CLI_AUTHFILE_MAX) {
        close(fd);
        *why = "larger than 1 MiB";
        return -1;
    }
    p = malloc((size_t)st.st_size + 1);
    if (p == NULL) {
        close(fd);
        *why = "out of memory";
        return -1;
    }
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, p + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *data = p;
    *len = n;
    return 0;
}

/* Looks for o->region's host:port in the auth file at path. 0 found (o->cred set), 1 not
 * there, -1 a matching entry that is malformed (reported). Unreadable files are skipped with a
 * warning: another source may still apply. */
static int from_file(struct cli_opts *o, const char *path, const char *authority, const char *alt,
                     FILE *err)
{
    const char *title = cli_cmd_titles[o->cmd], *why = NULL;
    char *data = NULL;
    size_t len = 0;
    int rc = read_small_file(path, &data, &len, &why);

    if (rc == 1)
        return 1;
    if (rc != 0) {
        fprintf(err, "portolan %s: warning: auth file %.256s %s; skipped\n", title, path, why);
        return 1;
    }
    rc = cli_authfile_find(data, len, authority, alt, o->cred.user, o->cred.secret, &why);
    explicit_bzero(data, len);
    free(data);
    if (rc == -1 && strcmp(why, "not a JSON object") == 0) {
        fprintf(err, "portolan %s: warning: auth file %.256s is %s; skipped\n", title, path, why);
        return 1;
    }
    if (rc == -1) {
        fprintf(err, "portolan %s: auth file %.256s, entry for %s: %s\n", title, path, authority,
                why);
        return -1;
    }
    if (rc == 0) {
        o->cred.have = true;
        snprintf(o->cred.source, sizeof o->cred.source, "%.300s", path);
    }
    return rc;
}

int cli_cred_resolve(struct cli_opts *o, FILE *err)
{
    const char *title = cli_cmd_titles[o->cmd], *why = NULL, *env_user, *v;
    char authority[CLI_AUTHORITY_MAX], alt[CLI_AUTHORITY_MAX], path[PATH_MAX];
    int rc;

    memset(&o->cred, 0, sizeof o->cred);
    if (o->user != NULL) {
        snprintf(o->cred.user, sizeof o->cred.user, "%s", o->user);
        snprintf(o->cred.source, sizeof o->cred.source, "--user");
        if (o->password_stdin)
            rc = cli_read_secret_line(cli_input(), o->cred.secret, sizeof o->cred.secret, &why);
        else
            rc =
                cli_prompt_secret("password: ", false, o->cred.secret, sizeof o->cred.secret, &why);
        if (rc != 0) {
            fprintf(err, "portolan %s: password of --user %s: %s\n", title, o->user, why);
            return PT_CLI_USAGE;
        }
        o->cred.have = true;
        return 0;
    }
    env_user = getenv("PORTOLAN_USER");
    if (env_user != NULL && env_user[0] != '\0') {
        v = getenv("PORTOLAN_PASSWORD");
        if (v == NULL || strlen(env_user) > CLI_USER_MAX || strlen(v) > CLI_SECRET_MAX ||
            strchr(env_user, ':') != NULL) {
            fprintf(err,
                    "portolan %s: PORTOLAN_USER is set but PORTOLAN_PASSWORD is not, or one "
                    "is too long\n",
                    title);
            return PT_CLI_USAGE;
        }
        snprintf(o->cred.user, sizeof o->cred.user, "%s", env_user);
        snprintf(o->cred.secret, sizeof o->cred.secret, "%s", v);
        snprintf(o->cred.source, sizeof o->cred.source, "PORTOLAN_USER");
        o->cred.have = true;
        return 0;
    }
    if (cli_url_authority(o->region, authority, sizeof authority, alt, sizeof alt) != 0)
        return 0;
    for (int i = 0; i < 4; i++) {
        const char *base;
        path[0] = '\0';
        if (i == 0 && (base = getenv("REGISTRY_AUTH_FILE")) != NULL && base[0] != '\0')
            snprintf(path, sizeof path, "%s", base);
        else if (i == 1 && (base = getenv("XDG_RUNTIME_DIR")) != NULL && base[0] != '\0')
            snprintf(path, sizeof path, "%s/containers/auth.json", base);
        else if (i == 2 && (base = getenv("HOME")) != NULL && base[0] != '\0')
            snprintf(path, sizeof path, "%s/.config/containers/auth.json", base);
        else if (i == 3 && (base = getenv("HOME")) != NULL && base[0] != '\0')
            snprintf(path, sizeof path, "%s/.docker/config.json", base);
        if (path[0] == '\0')
            continue;
        rc = from_file(o, path, authority, alt, err);
        if (rc == 0)
            return 0;
        if (rc < 0)
            return PT_CLI_USAGE;
    }
    return 0;
}

void cli_print_auth_hint(FILE *err, const struct cli_opts *o, long status)
{
    const char *title = cli_cmd_titles[o->cmd];
    char u[CLI_USER_MAX + 1], src[sizeof o->cred.source];

    if (!o->cred.have) {
        fprintf(err,
                "portolan %s: no credentials were sent: give --user NAME --password-stdin, set "
                "PORTOLAN_USER and PORTOLAN_PASSWORD, or log in with a registry client for "
                "this host:port\n",
                title);
        return;
    }
    cli_clean(u, sizeof u, o->cred.user, CLI_USER_MAX);
    cli_clean(src, sizeof src, o->cred.source, sizeof src);
    if (status == 401)
        fprintf(err,
                "portolan %s: the server refused the credentials of \"%s\" (from %s): wrong "
                "password or token secret, or the user or token is unknown, disabled or "
                "expired\n",
                title, u, src);
    else
        fprintf(err,
                "portolan %s: \"%s\" (credentials from %s) is not allowed to do this (most "
                "admin commands need the admin grant)\n",
                title, u, src);
}
