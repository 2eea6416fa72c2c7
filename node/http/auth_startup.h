/*
 * auth_startup.h - what access control needs once at start-up, through replicated commands:
 * the region's token signing key published to every region (PutSigningKey), and the first
 * administrator (README "Access control", first login).
 *
 * First administrator: while no user exists, the region proposes PutUser("admin", hash,
 * "**":admin, only_if_no_users) with the password of --initial-admin-password-file, else
 * $PORTOLAN_INITIAL_ADMIN_PASSWORD, else a generated one written to
 * <data-dir>/initial-admin-password (mode 0600; its path is logged, never the password). The
 * command is a no-op when another region created a user first; then the login with this
 * region's password fails, and a generated file is removed and the fact logged.
 *
 * Threads: the main thread's loop. In a single region the work finishes before the HTTP
 * workers start (pt_auth_startup_run waits); in a cluster it retries every second in the
 * background until a leader commits it.
 */
#ifndef PT_AUTH_STARTUP_H
#define PT_AUTH_STARTUP_H

#include <uv.h>

struct pt_node;

/* Starts the work on loop (the main loop; node borrowed for the process's life). With wait,
 * runs loop until the work is done (single region). Returns 0, or PT_E_CONFIG when the
 * password file cannot be read (logged). */
int pt_auth_startup_run(struct pt_node *node, uv_loop_t *loop, int wait);

/* Stops retrying and closes the handles (main thread, before the loop's last run). */
void pt_auth_startup_stop(void);

#endif
