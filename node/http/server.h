/*
 * server.h - runs one registry node: opens the stores, starts the committer and the HTTP
 * worker loops, and serves until SIGINT/SIGTERM.
 */
#ifndef PT_SERVER_H
#define PT_SERVER_H

#include "config.h"

/* Runs the node with cfg (copied). Blocks until a termination signal; returns 0 on a clean
 * shutdown or a negative PT_E_* when start-up failed (already logged). */
int pt_server_run(const struct pt_config *cfg);

#endif
