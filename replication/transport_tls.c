/*
 * transport_tls.c - TLS 1.3 with mutual authentication on the raft + peer port.
 *
 * Role: when pt_transport_set_tls configured a certificate, its key and the cluster CA, every
 * connection of the transport, in both directions and for every channel kind (raft, PEER,
 * BULK), runs TLS 1.3 under the HELLO / WELCOME handshake. Both ends present a certificate;
 * the other end's chain must verify against the cluster CA alone (OpenSSL's verification:
 * signature, validity period, the serverAuth / clientAuth purpose), and its subjectAltName
 * must hold DNS:<region name> of the region it is: outbound, the region this node dialed
 * (checked during the TLS handshake, SSL_set1_host); inbound, the region that the server id of
 * the peer's HELLO belongs to (checked by transport_handshake.c with transport_tls_pump_names,
 * once the HELLO arrived). Which region a server id belongs to is asked of the callback set
 * with pt_transport_set_identity, so this layer knows nothing of the cluster's membership.
 *
 * Design: TLS runs off the raft loop. After the TCP connect or accept, the seam
 * (transport_stream.c) duplicates the socket and gives it to a *pump*: one thread per
 * connection that runs the TLS engine over the TCP socket and exchanges plaintext with the
 * raft loop through an AF_UNIX socketpair. The loop keeps the other end of the pair, opened as
 * a uv_tcp_t (uv_tcp_open takes any stream socket), so the HELLO / WELCOME handshake, raft_uv
 * and the peer layer run over it unchanged and never wait for a cipher. A pump:
 *   1. runs the TLS handshake within the transport's timeout (poll with a deadline), also
 *      giving up as soon as the loop closes its end (the loop's own deadline passed);
 *   2. records the verified peer certificate, then copies bytes both ways with 64 KiB buffers
 *      (full 16 KiB records; AES-GCM suites of TLS 1.3 first), applying back-pressure: it
 *      reads from one side only once the other took what it read before;
 *   3. ends when either side ends: the loop closing its end sends a close_notify and closes
 *      the TCP socket; the peer closing (or an error) closes the pump's end, so the loop reads
 *      EOF after the bytes already decrypted. Every descriptor and the SSL object are freed by
 *      the pump thread itself, which is detached.
 * Inbound, the pump also reads what the peer sends as the loop will: the HELLO's header and
 * body (to learn the channel kind and the claimed server id), then, on a raft channel, every
 * raft message through a validator (raft_wire.h) before the loop sees a byte of it. A message
 * libraft would misread (counts that overrun the header, terms near 2^64, a vote for another
 * candidate than the HELLO's id, sizes beyond the bounds) ends the connection right there:
 * logged, counted in portolan_peer_refused_total{reason="raft_message"}, nothing more. The
 * HELLO's id is the one the loop checks against the membership and the certificate before
 * raft gets the stream, so the candidate check compares against the authenticated identity.
 * The reason a handshake failed (unknown CA, certificate expired, names another region, not
 * TLS at all) is kept in the pump for the loop to log once per connection; it never contains
 * key material.
 *
 * Invariants: a pump holds one reference on its struct transport_tls, the loop's conn one on
 * the pump; transport_tls_free waits (bounded) for every pump of the transport to end, so no
 * thread outlives the transport in an orderly shutdown. The peer certificate is written by the
 * pump before it writes the first plaintext byte to its end and read by the loop only after it
 * read that byte; a mutex guards it anyway.
 * Threads: transport_tls_* run on the raft loop thread; pump_main on its own thread.
 */
#include "transport.h"

#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "raft_wire.h"
#include "transport_int.h"

#define PUMP_BUF        (64 * 1024)
#define PUMP_STACK      (256 * 1024)
#define PAIR_BUF        (1024 * 1024)
#define FREE_WAIT_MS    3000
#define SAN_CHECK_FLAGS (X509_CHECK_FLAG_NO_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT)
/* TLS 1.3 suites, AES-GCM first (hardware AES makes it the cheapest for BULK channels). */
#define SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

struct transport_tls {
    SSL_CTX *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned refs;         /* the transport's, plus one per running pump or splice */
    struct tls_pump *live; /* pumps of handed-off connections, by peer (under mu) */
    /* relayed connections spliced now, in all and by source server id (under mu) */
    unsigned relays;
    struct {
        uint64_t id;
        unsigned n;
    } relay_src[PT_TRANSPORT_RELAY_MAX];
};

struct tls_pump {
    pthread_mutex_t mu;
    unsigned refs; /* the conn's and the thread's */
    struct transport_tls *tls;
    SSL *ssl;
    int fd;    /* TCP socket: the pump's */
    int plain; /* the pump's end of the socketpair */
    bool server;
    bool through; /* the inner TLS of a connection tunneled through a relay */
    /* in tls->live (under tls->mu) once handed off, until the thread closes fd */
    bool listed, ended;
    uint64_t peer_id;
    struct tls_pump *lprev, *lnext;
    bool relayed; /* inbound: arrived through a relay (its preamble came first) */
    uint64_t relayed_origin;
    unsigned timeout_ms;
    X509 *peer; /* verified peer certificate, once the handshake completed */
    char error[160];
    bool quiet;               /* error is not worth a warning */
    bool timed_out;           /* the TLS handshake ran out of time (a silent path) */
    unsigned char *up, *down; /* plaintext from the loop / decrypted for the loop */
    /* inbound only, the pump thread's: what the peer sent so far, as the loop parses it */
    int inspect;                         /* INSPECT_* */
    unsigned char hello[HEADER_LEN + 8]; /* the HELLO's header and its body's server id */
    size_t hello_have;
    uint64_t hello_left; /* body bytes after the server id */
    struct pt_raft_wire wire;
};

enum {
    INSPECT_HELLO = 0, /* collecting the HELLO header and the id */
    INSPECT_BODY,      /* skipping the rest of the HELLO body */
    INSPECT_RAFT,      /* a raft channel: every byte through the validator */
    INSPECT_OFF,       /* a peer channel (its frames are peer_channel.c's), or outbound */
};

static long ms_left(const struct timespec *deadline);

static void tls_unref(struct transport_tls *tls)
{
    bool last;
    pthread_mutex_lock(&tls->mu);
    last = --tls->refs == 0;
    pthread_cond_broadcast(&tls->cv);
    pthread_mutex_unlock(&tls->mu);
    if (!last)
        return;
    SSL_CTX_free(tls->ctx);
    pthread_cond_destroy(&tls->cv);
    pthread_mutex_destroy(&tls->mu);
    free(tls);
}

/* The text of the first OpenSSL error queued on this thread, or fallback. */
static const char *ssl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    return r != NULL ? r : fallback;
}

int transport_tls_load(struct transport *t, const char *cert, const char *key, const char *ca,
                       char *err, size_t errlen)
{
    struct transport_tls *tls;
    SSL_CTX *ctx;
    const char *what = NULL;

    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "peer TLS: cannot create a context: %s", ssl_reason("?"));
        return PT_E_NOMEM;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, SUITES) != 1)
        what = "TLS 1.3 settings";
    else if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        what = "peer_tls_cert";
    else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        what = "peer_tls_key";
    else if (SSL_CTX_check_private_key(ctx) != 1)
        what = "peer_tls_key (does not match peer_tls_cert)";
    else if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
        what = "peer_tls_ca";
    if (what != NULL) {
        snprintf(err, errlen, "peer TLS: %s: %s", what, ssl_reason("cannot be loaded"));
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return PT_E_CONFIG;
    }
    /* Only the cluster CA (no system store); a peer without a certificate is refused. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_verify_depth(ctx, 4);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);

    tls = calloc(1, sizeof(*tls));
    if (tls == NULL) {
        SSL_CTX_free(ctx);
        return PT_E_NOMEM;
    }
    tls->ctx = ctx;
    tls->refs = 1;
    pthread_mutex_init(&tls->mu, NULL);
    pthread_cond_init(&tls->cv, NULL);
    if (t->tls != NULL)
        transport_tls_free(t);
    t->tls = tls;
    return 0;
}

void transport_tls_free(struct transport *t)
{
    struct transport_tls *tls = t->tls;
    struct timespec until;

    if (tls == NULL)
        return;
    t->tls = NULL;
    /* Every stream is closed by now, so every pump is ending: wait for them (bounded), so no
     * thread outlives an orderly shutdown. */
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += FREE_WAIT_MS / 1000;
    pthread_mutex_lock(&tls->mu);
    while (tls->refs > 1 && pthread_cond_timedwait(&tls->cv, &tls->mu, &until) == 0)
        ;
    pthread_mutex_unlock(&tls->mu);
    tls_unref(tls);
}

void transport_tls_pump_release(struct tls_pump *p)
{
    bool last;
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (!last)
        return;
    X509_free(p->peer);
    pthread_mutex_destroy(&p->mu);
    free(p->up);
    free(p->down);
    free(p);
}

bool transport_tls_pump_names(struct tls_pump *p, const char *name)
{
    bool ok;
    pthread_mutex_lock(&p->mu);
    ok = p->peer != NULL && name[0] != '\0' &&
         X509_check_host(p->peer, name, strlen(name), SAN_CHECK_FLAGS, NULL) == 1;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

const char *transport_tls_pump_error(struct tls_pump *p, char *buf, size_t size, int *level)
{
    pthread_mutex_lock(&p->mu);
    snprintf(buf, size, "%s", p->error);
    if (buf[0] != '\0')
        *level = p->quiet ? PT_LOG_DEBUG : PT_LOG_WARN;
    pthread_mutex_unlock(&p->mu);
    return buf[0] != '\0' ? buf : NULL;
}

bool transport_tls_pump_timed_out(struct tls_pump *p)
{
    pthread_mutex_lock(&p->mu);
    bool timed_out = p->timed_out;
    pthread_mutex_unlock(&p->mu);
    return timed_out;
}

bool transport_tls_pump_relayed(struct tls_pump *p, uint64_t *origin)
{
    /* written by the pump before its first plaintext byte, read by the loop after it */
    pthread_mutex_lock(&p->mu);
    bool relayed = p->relayed;
    *origin = p->relayed_origin;
    pthread_mutex_unlock(&p->mu);
    return relayed;
}

/* ---- relays: the splice thread ------------------------------------------------------------ */

/* Under tls->mu: the slot of source (or a free one, or NULL when none is left). */
static unsigned *relay_slot(struct transport_tls *tls, uint64_t source, bool take)
{
    for (size_t i = 0; i < PT_TRANSPORT_RELAY_MAX; i++)
        if (tls->relay_src[i].id == source && tls->relay_src[i].n > 0)
            return &tls->relay_src[i].n;
    if (!take)
        return NULL;
    for (size_t i = 0; i < PT_TRANSPORT_RELAY_MAX; i++) {
        if (tls->relay_src[i].n == 0) {
            tls->relay_src[i].id = source;
            return &tls->relay_src[i].n;
        }
    }
    return NULL;
}

bool transport_tls_relay_room(struct transport *t, raft_id source)
{
    struct transport_tls *tls = t->tls;
    bool room;
    if (tls == NULL)
        return false;
    pthread_mutex_lock(&tls->mu);
    unsigned *n = relay_slot(tls, source, false);
    room =
        tls->relays < PT_TRANSPORT_RELAY_MAX && (n == NULL || *n < PT_TRANSPORT_RELAY_PER_SOURCE);
    pthread_mutex_unlock(&tls->mu);
    return room;
}

struct splice {
    struct transport_tls *tls;
    uint64_t source;
    int fd[2]; /* the origin's plaintext, the TCP socket to the target */
    unsigned char preamble[RELAYED_LEN];
    unsigned char *buf[2]; /* buf[i]: read from fd[i], to be written to fd[1 - i] */
};

/* Copies bytes both ways with one bounded buffer per direction, reading from one side only
 * once the other took what was read before (back-pressure); ends on EOF or error of either
 * side, after PT_TRANSPORT_RELAY_IDLE_MS without a byte, or PT_TRANSPORT_RELAY_LIFE_MS after
 * it started. Nothing of the stream is parsed. */
static void splice_run(struct splice *s)
{
    size_t len[2] = {RELAYED_LEN, 0}, off[2] = {0, 0};
    struct timespec life, idle;

    memcpy(s->buf[0], s->preamble, RELAYED_LEN); /* the preamble goes first, to the target */
    clock_gettime(CLOCK_MONOTONIC, &life);
    idle = life;
    idle.tv_sec += PT_TRANSPORT_RELAY_IDLE_MS / 1000;
    life.tv_sec += PT_TRANSPORT_RELAY_LIFE_MS / 1000;
    for (;;) {
        struct pollfd pf[2];
        bool progress = true;
        long left;

        while (progress) {
            progress = false;
            for (int i = 0; i < 2; i++) {
                ssize_t n;
                if (len[i] == 0) {
                    n = read(s->fd[i], s->buf[i], PUMP_BUF);
                    if (n == 0)
                        return;
                    if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return;
                    if (n > 0) {
                        len[i] = (size_t)n;
                        off[i] = 0;
                        progress = true;
                    }
                }
                if (off[i] < len[i]) {
                    n = write(s->fd[1 - i], s->buf[i] + off[i], len[i] - off[i]);
                    if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return;
                    if (n > 0) {
                        off[i] += (size_t)n;
                        if (off[i] == len[i])
                            len[i] = off[i] = 0;
                        progress = true;
                    }
                }
            }
            if (progress) {
                clock_gettime(CLOCK_MONOTONIC, &idle);
                idle.tv_sec += PT_TRANSPORT_RELAY_IDLE_MS / 1000;
            }
        }
        for (int i = 0; i < 2; i++) {
            pf[i].fd = s->fd[i];
            /* read fd[i] while buf[i] is empty; write fd[i] while buf[1 - i] holds bytes */
            pf[i].events = (short)((len[i] == 0 ? POLLIN : 0) | (len[1 - i] > 0 ? POLLOUT : 0));
        }
        left = ms_left(&idle);
        if (ms_left(&life) < left)
            left = ms_left(&life);
        if (left <= 0)
            return;
        if (poll(pf, 2, (int)left) < 0 && errno != EINTR)
            return;
        for (int i = 0; i < 2; i++)
            if ((pf[i].revents & (POLLHUP | POLLERR)) && !(pf[i].revents & POLLIN))
                return;
    }
}

static void *splice_main(void *arg)
{
    struct splice *s = arg;
    struct transport_tls *tls = s->tls;

    splice_run(s);
    close(s->fd[0]);
    close(s->fd[1]);
    pt_metrics_relayed(PT_METRICS_RELAY_SERVED, -1);
    pthread_mutex_lock(&tls->mu);
    unsigned *n = relay_slot(tls, s->source, false);
    if (n != NULL)
        (*n)--;
    tls->relays--;
    pthread_mutex_unlock(&tls->mu);
    free(s->buf[0]);
    free(s->buf[1]);
    free(s);
    OPENSSL_thread_stop();
    tls_unref(tls);
    return NULL;
}

int transport_tls_splice_start(struct transport *t, raft_id source, int fd_a, int fd_x,
                               const unsigned char *preamble)
{
    struct transport_tls *tls = t->tls;
    struct splice *s;
    pthread_attr_t attr;
    pthread_t th;
    unsigned *n;
    int rv;

    if (tls == NULL)
        return PT_E_UNAVAILABLE;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return PT_E_NOMEM;
    s->buf[0] = malloc(PUMP_BUF);
    s->buf[1] = malloc(PUMP_BUF);
    if (s->buf[0] == NULL || s->buf[1] == NULL) {
        free(s->buf[0]);
        free(s->buf[1]);
        free(s);
        return PT_E_NOMEM;
    }
    s->tls = tls;
    s->source = source;
    s->fd[0] = fd_a;
    s->fd[1] = fd_x;
    memcpy(s->preamble, preamble, RELAYED_LEN);
    (void)fcntl(fd_a, F_SETFL, O_NONBLOCK);
    (void)fcntl(fd_x, F_SETFL, O_NONBLOCK);
    pthread_mutex_lock(&tls->mu);
    n = relay_slot(tls, source, true);
    if (n == NULL || *n >= PT_TRANSPORT_RELAY_PER_SOURCE || tls->relays >= PT_TRANSPORT_RELAY_MAX) {
        pthread_mutex_unlock(&tls->mu);
        free(s->buf[0]);
        free(s->buf[1]);
        free(s);
        return PT_E_TOO_LARGE;
    }
    (*n)++;
    tls->relays++;
    tls->refs++;
    pthread_mutex_unlock(&tls->mu);
    pt_metrics_relayed(PT_METRICS_RELAY_SERVED, 1);

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, PUMP_STACK);
    rv = pthread_create(&th, &attr, splice_main, s);
    pthread_attr_destroy(&attr);
    if (rv != 0) {
        s->fd[0] = s->fd[1] = -1;
        pt_metrics_relayed(PT_METRICS_RELAY_SERVED, -1);
        pthread_mutex_lock(&tls->mu);
        (*n)--;
        tls->relays--;
        pthread_mutex_unlock(&tls->mu);
        free(s->buf[0]);
        free(s->buf[1]);
        free(s);
        tls_unref(tls);
        return PT_E_NOMEM;
    }
    return 0;
}

/* ---- the pump thread ---------------------------------------------------------------------- */

/* Records the first failure of p: what, followed by detail. */
static void pump_fail(struct tls_pump *p, const char *what, const char *detail)
{
    pthread_mutex_lock(&p->mu);
    if (p->error[0] == '\0')
        snprintf(p->error, sizeof(p->error), "%s%s", what, detail);
    pthread_mutex_unlock(&p->mu);
}

/* Why the handshake failed, in words an operator can act on. */
static void handshake_reason(struct tls_pump *p)
{
    long vr = SSL_get_verify_result(p->ssl);
    unsigned long e = ERR_peek_last_error();

    switch (vr) {
    case X509_V_OK:
        break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        pump_fail(p, "tls: certificate expired", "");
        return;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        pump_fail(p, "tls: certificate not yet valid", "");
        return;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        pump_fail(p, "tls: certificate from an unknown CA", "");
        return;
    case X509_V_ERR_HOSTNAME_MISMATCH:
        pump_fail(p, "tls: certificate names another region", "");
        return;
    default:
        pump_fail(p, "tls: certificate refused: ", X509_verify_cert_error_string(vr));
        return;
    }
    if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL) {
        switch (ERR_GET_REASON(e)) {
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            pump_fail(p, "tls: no client certificate", "");
            return;
        case SSL_R_WRONG_VERSION_NUMBER:
        case SSL_R_HTTP_REQUEST:
        case SSL_R_UNEXPECTED_MESSAGE:
        case SSL_R_PACKET_LENGTH_TOO_LONG:
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_UNEXPECTED_RECORD:
            pump_fail(p, "tls: not a TLS 1.3 handshake: ", ssl_reason("?"));
            return;
        default:
            break;
        }
    }
    if (e == 0) {
        /* closed before a word of TLS: a port scan, a proxy whose target is down */
        pthread_mutex_lock(&p->mu);
        p->quiet = p->error[0] == '\0';
        pthread_mutex_unlock(&p->mu);
        pump_fail(p, "tls: connection closed during the handshake", "");
        return;
    }
    pump_fail(p, "tls: handshake failed: ", ssl_reason("?"));
}

static long ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/*
 * One wait of the handshake (or of the preamble before it): fails when its time (left ms) is
 * up, then polls pf (the socket, and the plaintext end to see the loop give up on this
 * connection). 0 to go on, -1 (reason recorded, or the loop gave up).
 */
static int pump_wait(struct tls_pump *p, struct pollfd pf[2], long left)
{
    if (left <= 0) {
        pthread_mutex_lock(&p->mu);
        p->timed_out = true;
        pthread_mutex_unlock(&p->mu);
        pump_fail(p, "tls: handshake timed out", "");
        return -1;
    }
    if (poll(pf, 2, (int)left) < 0 && errno != EINTR) {
        pump_fail(p, "tls: poll: ", strerror(errno));
        return -1;
    }
    if (pf[1].revents & (POLLHUP | POLLERR))
        return -1; /* the loop gave up on this connection */
    return 0;
}

/*
 * Inbound: a connection a relay opened starts with its RELAYED preamble (magic, origin id,
 * relay id) before the origin's TLS; a TLS record never starts with the magic's first byte
 * (0x89). Reads exactly the preamble when there is one, within the deadline; 0 or -1.
 */
static int pump_preamble(struct tls_pump *p, const struct timespec *deadline)
{
    unsigned char b[RELAYED_LEN];
    size_t have = 0;

    for (;;) {
        struct pollfd pf[2] = {{.fd = p->fd, .events = POLLIN}, {.fd = p->plain, .events = 0}};
        long left = ms_left(deadline);
        ssize_t n;

        if (have == 0) {
            n = recv(p->fd, b, 1, MSG_PEEK);
            if (n == 1 && b[0] != (unsigned char)RELAYED_MAGIC[0])
                return 0; /* direct: TLS follows */
        } else {
            n = -1;
            errno = EAGAIN;
        }
        if (n == 1 || have > 0) {
            n = recv(p->fd, b + have, RELAYED_LEN - have, 0);
            if (n > 0)
                have += (size_t)n;
            if (have == RELAYED_LEN) {
                if (memcmp(b, RELAYED_MAGIC, MAGIC_LEN) != 0) {
                    pump_fail(p, "relay preamble: bad magic", "");
                    return -1;
                }
                pthread_mutex_lock(&p->mu);
                p->relayed = true;
                p->relayed_origin = pt_get_be64(b + MAGIC_LEN);
                pthread_mutex_unlock(&p->mu);
                return 0;
            }
        }
        if (n == 0) {
            pthread_mutex_lock(&p->mu);
            p->quiet = p->error[0] == '\0'; /* a port scan, or a relay whose target is down */
            pthread_mutex_unlock(&p->mu);
            pump_fail(p, "tls: connection closed during the handshake", "");
            return -1;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            pump_fail(p, "tls: read: ", strerror(errno));
            return -1;
        }
        if (pump_wait(p, pf, left) != 0)
            return -1;
    }
}

/* Runs the TLS handshake within the timeout; 0 or -1 (reason recorded). */
static int pump_handshake(struct tls_pump *p)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += p->timeout_ms / 1000;
    deadline.tv_nsec += (long)(p->timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    if (p->server && pump_preamble(p, &deadline) != 0)
        return -1;
    for (;;) {
        int r = SSL_do_handshake(p->ssl);
        struct pollfd pf[2] = {{.fd = p->fd}, {.fd = p->plain, .events = 0}};
        long left;

        if (r == 1)
            return 0;
        switch (SSL_get_error(p->ssl, r)) {
        case SSL_ERROR_WANT_READ:
            pf[0].events = POLLIN;
            break;
        case SSL_ERROR_WANT_WRITE:
            pf[0].events = POLLOUT;
            break;
        default:
            handshake_reason(p);
            return -1;
        }
        left = ms_left(&deadline);
        if (pump_wait(p, pf, left) != 0)
            return -1;
    }
}

/*
 * Follows the n bytes the peer sent (borrowed) through the HELLO into the raft stream.
 * Returns false, with the reason recorded and logged, when a raft message is invalid. A HELLO
 * the loop will refuse (bad magic, version, lengths) is not judged here: the loop drops it
 * before raft or the peer layer sees what follows.
 */
static bool inspect(struct tls_pump *p, const unsigned char *b, size_t n)
{
    while (n > 0 && p->inspect != INSPECT_OFF) {
        size_t k;
        enum pt_raft_wire_error e;

        switch (p->inspect) {
        case INSPECT_HELLO:
            k = sizeof(p->hello) - p->hello_have < n ? sizeof(p->hello) - p->hello_have : n;
            memcpy(p->hello + p->hello_have, b, k);
            p->hello_have += k;
            b += k;
            n -= k;
            if (p->hello_have < sizeof(p->hello))
                break;
            if (memcmp(p->hello, MAGIC, MAGIC_LEN) != 0 ||
                pt_get_be32(p->hello + 12) > HELLO_BODY_MAX ||
                pt_get_be32(p->hello + 12) < HELLO_FIXED) {
                p->inspect = INSPECT_OFF;
                break;
            }
            p->hello_left = pt_get_be32(p->hello + 12) - 8;
            p->inspect = INSPECT_BODY;
            break;
        case INSPECT_BODY:
            k = p->hello_left < n ? (size_t)p->hello_left : n;
            p->hello_left -= k;
            b += k;
            n -= k;
            if (p->hello_left > 0)
                break;
            if (p->hello[11] & (FLAG_PEER | FLAG_RELAY)) {
                p->inspect = INSPECT_OFF;
                break;
            }
            pt_raft_wire_init(&p->wire, pt_get_be64(p->hello + HEADER_LEN));
            p->inspect = INSPECT_RAFT;
            break;
        default: /* INSPECT_RAFT */
            e = pt_raft_wire_feed(&p->wire, b, n);
            if (e != PT_RAFT_WIRE_OK) {
                pump_fail(p, "raft message refused: ", pt_raft_wire_reason(e));
                pt_metrics_peer_refused(PT_METRICS_PEER_RAFT_MESSAGE);
                pt_log(PT_LOG_WARN, "raft transport: invalid raft message, connection closed",
                       "{s:I,s:s}", "server_id", (json_int_t)p->wire.peer_id, "reason",
                       pt_raft_wire_reason(e));
                return false;
            }
            n = 0;
            break;
        }
    }
    return true;
}

/* Copies plaintext both ways until either side ends. */
static void pump_data(struct tls_pump *p)
{
    size_t up_len = 0, up_off = 0, down_len = 0, down_off = 0;
    bool plain_eof = false, tls_eof = false;

    for (;;) {
        short tcp_ev = 0, plain_ev = 0;
        bool progress = true;
        struct pollfd pf[2];

        while (progress) {
            ssize_t n;
            int r;

            progress = false;
            tcp_ev = plain_ev = 0;
            if (up_len == 0 && !plain_eof) {
                n = read(p->plain, p->up, PUMP_BUF);
                if (n > 0) {
                    up_len = (size_t)n;
                    up_off = 0;
                    progress = true;
                } else if (n == 0) {
                    plain_eof = true;
                } else if (errno == EAGAIN || errno == EINTR) {
                    plain_ev |= POLLIN;
                } else {
                    return;
                }
            }
            if (up_off < up_len) {
                ERR_clear_error();
                r = SSL_write(p->ssl, p->up + up_off, (int)(up_len - up_off));
                if (r > 0) {
                    up_off += (size_t)r;
                    if (up_off == up_len)
                        up_len = up_off = 0;
                    progress = true;
                } else {
                    int e = SSL_get_error(p->ssl, r);
                    if (e == SSL_ERROR_WANT_WRITE)
                        tcp_ev |= POLLOUT;
                    else if (e == SSL_ERROR_WANT_READ)
                        tcp_ev |= POLLIN;
                    else
                        return;
                }
            }
            if (down_off == down_len && !tls_eof) {
                ERR_clear_error();
                r = SSL_read(p->ssl, p->down, PUMP_BUF);
                if (r > 0) {
                    if (p->server && !inspect(p, p->down, (size_t)r))
                        return; /* nothing of this piece reaches the loop */
                    down_len = (size_t)r;
                    down_off = 0;
                    progress = true;
                } else {
                    int e = SSL_get_error(p->ssl, r);
                    if (e == SSL_ERROR_WANT_READ)
                        tcp_ev |= POLLIN;
                    else if (e == SSL_ERROR_WANT_WRITE)
                        tcp_ev |= POLLOUT;
                    else if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)
                        tls_eof = true; /* close_notify, or the peer closed the socket */
                    else {
                        /* e.g. the server refused our certificate after the TLS 1.3
                         * handshake completed on our side: its alert arrives here */
                        pump_fail(p, "tls: refused by the peer: ", ssl_reason("?"));
                        return;
                    }
                }
            }
            if (down_off < down_len) {
                n = write(p->plain, p->down + down_off, down_len - down_off);
                if (n > 0) {
                    down_off += (size_t)n;
                    progress = true;
                } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                    plain_ev |= POLLOUT;
                } else {
                    return; /* the loop closed its end */
                }
            }
        }
        if (plain_eof && up_len == 0) {
            (void)SSL_shutdown(p->ssl); /* close_notify, best effort */
            return;
        }
        if (tls_eof && down_off == down_len)
            return;
        pf[0] = (struct pollfd){.fd = p->fd, .events = tcp_ev};
        pf[1] = (struct pollfd){.fd = p->plain, .events = plain_ev};
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            return;
        if ((pf[1].revents & (POLLHUP | POLLERR)) && !(pf[1].revents & POLLIN))
            return; /* the loop closed its end: what it had not sent is lost with it */
    }
}

static void pump_unlist(struct tls_pump *p)
{
    struct transport_tls *tls = p->tls;
    pthread_mutex_lock(&tls->mu);
    p->ended = true;
    if (p->listed) {
        if (p->lprev != NULL)
            p->lprev->lnext = p->lnext;
        else
            tls->live = p->lnext;
        if (p->lnext != NULL)
            p->lnext->lprev = p->lprev;
        p->listed = false;
    }
    pthread_mutex_unlock(&tls->mu);
}

void transport_tls_pump_list(struct tls_pump *p, uint64_t peer_id)
{
    struct transport_tls *tls = p->tls;
    pthread_mutex_lock(&tls->mu);
    if (!p->ended && !p->listed) {
        p->peer_id = peer_id;
        p->listed = true;
        p->lprev = NULL;
        p->lnext = tls->live;
        if (tls->live != NULL)
            tls->live->lprev = p;
        tls->live = p;
    }
    pthread_mutex_unlock(&tls->mu);
}

unsigned transport_tls_end_peer(struct transport *t, uint64_t peer_id, bool only_through)
{
    struct transport_tls *tls = t->tls;
    unsigned n = 0;
    if (tls == NULL)
        return 0;
    pthread_mutex_lock(&tls->mu);
    for (struct tls_pump *p = tls->live; p != NULL; p = p->lnext) {
        if (p->peer_id == peer_id && (p->through || !only_through)) {
            (void)shutdown(p->fd, SHUT_RDWR); /* the pump wakes, ends, closes its end */
            n++;
        }
    }
    pthread_mutex_unlock(&tls->mu);
    return n;
}

static void *pump_main(void *arg)
{
    struct tls_pump *p = arg;
    struct transport_tls *tls = p->tls;

    if (pump_handshake(p) == 0) {
        X509 *peer = SSL_get1_peer_certificate(p->ssl);
        pthread_mutex_lock(&p->mu);
        p->peer = peer;
        pthread_mutex_unlock(&p->mu);
        if (p->through)
            pt_metrics_relayed(PT_METRICS_RELAY_THROUGH, 1);
        pump_data(p);
        if (p->through)
            pt_metrics_relayed(PT_METRICS_RELAY_THROUGH, -1);
    }
    pump_unlist(p);
    SSL_free(p->ssl);
    p->ssl = NULL;
    close(p->fd);
    close(p->plain);
    ERR_clear_error();
    OPENSSL_thread_stop();
    transport_tls_pump_release(p);
    tls_unref(tls);
    return NULL;
}

int transport_tls_pump_start(struct transport *t, int fd, bool server, bool through,
                             const char *expect_name, struct tls_pump **out, int *plain_fd)
{
    struct transport_tls *tls = t->tls;
    struct tls_pump *p;
    pthread_attr_t attr;
    int sp[2], size = PAIR_BUF, rv;

    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return PT_E_NOMEM;
    p->up = malloc(PUMP_BUF);
    p->down = malloc(PUMP_BUF);
    p->ssl = SSL_new(tls->ctx);
    if (p->up == NULL || p->down == NULL || p->ssl == NULL)
        goto err_after_alloc;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
        goto err_after_alloc;
    for (int i = 0; i < 2; i++) {
        (void)setsockopt(sp[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        (void)setsockopt(sp[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
    if (fcntl(sp[1], F_SETFL, O_NONBLOCK) != 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0 ||
        SSL_set_fd(p->ssl, fd) != 1)
        goto err_after_pair;
    if (server) {
        SSL_set_accept_state(p->ssl);
    } else {
        SSL_set_connect_state(p->ssl);
        SSL_set_hostflags(p->ssl, SAN_CHECK_FLAGS);
        if (SSL_set1_host(p->ssl, expect_name) != 1)
            goto err_after_pair;
    }
    pthread_mutex_init(&p->mu, NULL);
    p->refs = 2;
    p->tls = tls;
    p->fd = fd;
    p->plain = sp[1];
    p->server = server;
    p->through = through;
    p->inspect = server ? INSPECT_HELLO : INSPECT_OFF;
    p->timeout_ms = t->timeout_ms;
    pthread_mutex_lock(&tls->mu);
    tls->refs++;
    pthread_mutex_unlock(&tls->mu);

    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, PUMP_STACK);
    rv = pthread_create(&th, &attr, pump_main, p);
    pthread_attr_destroy(&attr);
    if (rv != 0) {
        pthread_mutex_destroy(&p->mu);
        tls_unref(tls);
        goto err_after_pair;
    }
    *out = p;
    *plain_fd = sp[0];
    return 0;

err_after_pair:
    close(sp[0]);
    close(sp[1]);
err_after_alloc:
    SSL_free(p->ssl);
    free(p->up);
    free(p->down);
    free(p);
    return PT_E_NOMEM;
}
