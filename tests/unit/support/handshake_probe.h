/*
 * handshake_probe.h - raw clients that speak bytes, not the transport, for the tests of the
 * Raft transport's handshake (replication/transport.c): a probe connects to 127.0.0.1:PORT,
 * writes fixed bytes as soon as it is connected, and keeps what comes back and when its read
 * side ended; pt_probe_hello writes a HELLO as transport.c documents it, with any field
 * wrong on purpose.
 *
 * Invariants: a probe is caller-owned and stays in place until pt_probe_close returns; its
 * functions run on its loop's thread, outside that loop's callbacks (pt_probe_close runs the
 * loop, see loop.h). Failures are cmocka assertions.
 */
#ifndef PT_TEST_HANDSHAKE_PROBE_H
#define PT_TEST_HANDSHAKE_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct pt_probe {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t w;
    unsigned char out[1024];
    size_t out_len;
    unsigned char in[512];
    size_t in_len;
    int connected; /* 1 once connected */
    int ended;     /* 1 once the read side ended (EOF or error) */
    int closed;
    uint64_t ended_at; /* the loop's time when it ended */
};

/* Clears p (caller-owned) and connects it to 127.0.0.1:port on loop (borrowed); once
 * connected it writes bytes (borrowed, copied; len at most sizeof(p->out), 0 for none) and
 * reads whatever comes back into p->in. */
void pt_probe_start(struct pt_probe *p, uv_loop_t *loop, unsigned port, const void *bytes,
                    size_t len);

/* pt_probe_start from the local IPv4 address source (borrowed; any of 127.0.0.0/8). */
void pt_probe_start_from(struct pt_probe *p, uv_loop_t *loop, const char *source, unsigned port,
                         const void *bytes, size_t len);

/* Closes p's connection and runs its loop until the close completed (2 s at most). */
void pt_probe_close(struct pt_probe *p);

/* A uv_write callback that ignores the status: the other side may drop the connection before
 * everything is written. */
void pt_probe_write_cb(uv_write_t *w, int status);

/* Writes into p (the caller's, 16 + the body's bytes, at most 1024) a handshake message of
 * the given version and type from server id of cluster at address (both borrowed), with flags
 * 0; body_len < 0 announces the body's natural length, otherwise body_len is announced (and
 * the body padded with 'x' up to it when that is longer, by less than 512 bytes). Returns the
 * message's length. */
size_t pt_probe_hello(unsigned char *p, unsigned version, unsigned type, uint64_t id,
                      const char *cluster, const char *address, long body_len);

#endif
