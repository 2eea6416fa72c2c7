/*
 * auth_startup.c - signing key publication and the first administrator (auth_startup.h).
 *
 * A small state machine on the main loop: KEY (propose PutSigningKey unless the directory
 * knows this region's kid) -> ADMIN (propose the first administrator unless a user exists)
 * -> DONE. A proposal's outcome comes back through a mailbox on the main loop; a failed one
 * (no leader yet, leadership lost) is tried again after RETRY_MS.
 */
#include "auth_startup.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth_gate.h"
#include "clock.h"
#include "command.h"
#include "committer.h"
#include "credentials.h"
#include "err.h"
#include "fileio.h"
#include "log.h"
#include "password.h"
#include "worker.h"

#define RETRY_MS 1000

enum step { STEP_KEY, STEP_ADMIN, STEP_DONE };

static struct {
    struct pt_node *node;
    uv_loop_t *loop;
    enum step step;
    int started;
    int in_flight;
    unsigned failures; /* proposals refused so far (no leader yet) */
    struct pt_mailbox mb;
    uv_timer_t retry;
    struct pt_proposal proposal;
    char password[PT_PASSWORD_MAX + 1]; /* the first administrator's, while needed */
    char generated_path[4200];          /* "" unless this region generated the password */
} st;

static void step_run(void);

static void wipe_password(void)
{
    OPENSSL_cleanse(st.password, sizeof(st.password));
}

static void on_retry(uv_timer_t *t)
{
    (void)t;
    step_run();
}

static void retry_later(void)
{
    uv_timer_start(&st.retry, on_retry, RETRY_MS, 0);
}

static void on_proposed(struct pt_proposal *p)
{
    st.in_flight = 0;
    if (p->status != 0) {
        /* a cluster without a leader yet is normal for a while; say so now and then */
        st.failures++;
        pt_log(st.failures % 30 == 0 ? PT_LOG_WARN : PT_LOG_DEBUG,
               st.step == STEP_KEY ? "the token signing key is not published yet, retrying"
                                   : "the first administrator is not created yet, retrying",
               "{s:i,s:i}", "status", p->status, "attempts", (int)st.failures);
        retry_later();
        return;
    }
    if (st.step == STEP_KEY) {
        st.step = STEP_ADMIN;
    } else if (st.step == STEP_ADMIN) {
        struct pt_identity id;
        int ok = pt_auth_dir_login(st.node->auth->dir, "admin", 5, st.password, strlen(st.password),
                                   pt_clock_wall_ms(), &id) == 0;
        if (ok && st.generated_path[0] != '\0')
            pt_log(PT_LOG_WARN,
                   "first administrator \"admin\" created; its password is in the "
                   "file named here (change it, then delete the file)",
                   "{s:s}", "file", st.generated_path);
        else if (ok)
            pt_log(PT_LOG_INFO, "first administrator \"admin\" created with the given password",
                   NULL);
        else {
            if (st.generated_path[0] != '\0')
                unlink(st.generated_path);
            pt_log(PT_LOG_INFO,
                   "another region created the first administrator; this region's initial "
                   "password was not used",
                   "{s:s}", "removed", st.generated_path[0] != '\0' ? st.generated_path : "");
        }
        wipe_password();
        st.step = STEP_DONE;
    }
    step_run();
}

/* Mailbox callback on the main loop: the proposal is done. */
static void on_proposal_mail(struct pt_proposal *p)
{
    on_proposed(p);
}

/* Proposes b's command (freed here). */
static void propose(struct pt_command_builder *b, int added)
{
    void *buf;
    size_t len;
    int rv = added != 0 ? added : pt_command_builder_encode(b, &buf, &len);
    pt_command_builder_free(b);
    if (rv != 0) {
        pt_log(PT_LOG_ERROR, "cannot build an access-control start-up command", "{s:i}", "error",
               rv);
        retry_later();
        return;
    }
    memset(&st.proposal, 0, sizeof(st.proposal));
    st.proposal.reply_to = &st.mb;
    st.proposal.done_cb = on_proposal_mail;
    st.proposal.kind = PT_JOB_PROPOSE;
    st.proposal.buf = buf;
    st.proposal.len = len;
    st.in_flight = 1;
    pt_committer_submit(st.node->committer, &st.proposal);
}

static void step_key(void)
{
    struct pt_auth_service *s = st.node->auth;
    struct pt_jwt_key *k = pt_auth_service_key(s);
    unsigned char der[PT_JWT_SPKI_MAX];
    size_t len = sizeof(der);
    unsigned char known[PT_JWT_SPKI_MAX];
    size_t known_len = sizeof(known);
    int rv =
        pt_auth_dir_signing_key(s->dir, pt_jwt_key_kid(k), pt_clock_wall_ms(), known, &known_len);
    if (rv == 0 || rv == PT_E_DENIED) {
        st.step = STEP_ADMIN;
        step_run();
        return;
    }
    if (pt_jwt_key_public_der(k, der, &len) != 0) {
        pt_log(PT_LOG_ERROR, "cannot read the signing key's public part", NULL);
        return;
    }
    struct pt_command_builder b;
    if (pt_command_builder_init(&b, pt_clock_wall_ms(), st.node->cfg.region) != 0) {
        retry_later();
        return;
    }
    propose(&b,
            pt_command_add_put_signing_key(&b, pt_jwt_key_kid(k), st.node->cfg.region, der, len));
}

static void step_admin(void)
{
    struct pt_auth_service *s = st.node->auth;
    if (pt_auth_dir_has_users(s->dir)) {
        if (st.generated_path[0] != '\0' && st.password[0] != '\0') {
            /* created elsewhere before our proposal: same outcome as a no-op commit */
            struct pt_proposal p = {.status = 0};
            on_proposed(&p);
            return;
        }
        wipe_password();
        st.step = STEP_DONE;
        return;
    }
    char hash[PT_PASSWORD_HASH_MAX];
    if (pt_password_hash(st.password, strlen(st.password), hash, sizeof(hash)) != 0) {
        pt_log(PT_LOG_ERROR, "cannot hash the first administrator's password", NULL);
        retry_later();
        return;
    }
    struct pt_command_builder b;
    if (pt_command_builder_init(&b, pt_clock_wall_ms(), st.node->cfg.region) != 0) {
        retry_later();
        return;
    }
    struct pt_command_grant g = {.pattern = "**", .actions = PT_ACTION_ADMIN};
    propose(&b, pt_command_add_put_user(&b, "admin", hash, &g, 1, 0, 1));
}

static void step_run(void)
{
    if (st.in_flight || !st.started)
        return;
    switch (st.step) {
    case STEP_KEY:
        step_key();
        break;
    case STEP_ADMIN:
        step_admin();
        break;
    case STEP_DONE:
        break;
    }
}

/* Reads a password file: at most PT_PASSWORD_MAX bytes, one trailing newline (and CR)
 * stripped. 0 or PT_E_CONFIG. */
static int read_password_file(const char *path, char *out, size_t size)
{
    char buf[PT_PASSWORD_MAX + 3]; /* the password, "\r\n", and one byte to see more */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return PT_E_CONFIG;
    ssize_t n = 0, got;
    while (n < (ssize_t)sizeof(buf) && (got = read(fd, buf + n, sizeof(buf) - (size_t)n)) > 0)
        n += got;
    close(fd);
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    int ok =
        n > 0 && (size_t)n < size && n <= PT_PASSWORD_MAX && memchr(buf, '\0', (size_t)n) == NULL;
    if (ok) {
        memcpy(out, buf, (size_t)n);
        out[n] = '\0';
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return ok ? 0 : PT_E_CONFIG;
}

/* A fresh password in <data-dir>/initial-admin-password (0600), or the one a previous start
 * left there. */
static int generated_password(void)
{
    snprintf(st.generated_path, sizeof(st.generated_path), "%s/initial-admin-password",
             st.node->cfg.data_dir);
    if (read_password_file(st.generated_path, st.password, sizeof(st.password)) == 0)
        return 0;
    unsigned char raw[18];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return PT_E_INTERNAL;
    pt_base64url_encode(raw, sizeof(raw), st.password, sizeof(st.password));
    OPENSSL_cleanse(raw, sizeof(raw));
    int fd = open(st.generated_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return PT_E_IO;
    size_t len = strlen(st.password);
    int ok = fchmod(fd, 0600) == 0 && pt_write_all(fd, st.password, len) == 0 &&
             pt_write_all(fd, "\n", 1) == 0 && fsync(fd) == 0;
    close(fd);
    return ok ? 0 : PT_E_IO;
}

static int choose_password(void)
{
    const struct pt_config *cfg = &st.node->cfg;
    if (cfg->initial_admin_password_file[0] != '\0') {
        if (read_password_file(cfg->initial_admin_password_file, st.password,
                               sizeof(st.password)) != 0) {
            pt_log(PT_LOG_ERROR,
                   "cannot read the initial administrator password file (empty, missing or "
                   "longer than 1024 bytes)",
                   "{s:s}", "file", cfg->initial_admin_password_file);
            return PT_E_CONFIG;
        }
        return 0;
    }
    const char *env = getenv("PORTOLAN_INITIAL_ADMIN_PASSWORD");
    if (env != NULL && env[0] != '\0') {
        if (strlen(env) > PT_PASSWORD_MAX) {
            pt_log(PT_LOG_ERROR, "PORTOLAN_INITIAL_ADMIN_PASSWORD is longer than 1024 bytes", NULL);
            return PT_E_CONFIG;
        }
        snprintf(st.password, sizeof(st.password), "%s", env);
        return 0;
    }
    int rv = generated_password();
    if (rv != 0)
        pt_log(PT_LOG_ERROR, "cannot write the initial administrator password file", "{s:s}",
               "file", st.generated_path);
    return rv;
}

int pt_auth_startup_run(struct pt_node *node, uv_loop_t *loop, int wait)
{
    memset(&st, 0, sizeof(st));
    st.node = node;
    st.loop = loop;
    if (node->auth == NULL)
        return 0;
    if (!pt_auth_dir_has_users(node->auth->dir)) {
        int rv = choose_password();
        if (rv != 0)
            return rv == PT_E_CONFIG ? rv : PT_E_CONFIG;
    }
    if (pt_mailbox_init(&st.mb, loop) != 0)
        return PT_E_INTERNAL;
    uv_timer_init(loop, &st.retry);
    st.started = 1;
    st.step = STEP_KEY;
    step_run();
    while (wait && st.step != STEP_DONE)
        uv_run(loop, UV_RUN_ONCE);
    return 0;
}

void pt_auth_startup_stop(void)
{
    if (!st.started)
        return;
    st.started = 0;
    wipe_password();
    uv_timer_stop(&st.retry);
    uv_close((uv_handle_t *)&st.retry, NULL);
    pt_mailbox_close(&st.mb);
}
