/*
 * raft_node_snap.c - raft snapshot files between regions: an InstallSnapshot is held until
 * the file its descriptor names is here, fetched in pieces from the region that sent it; and
 * the serving side of those pieces (raft_snapshot.h, proto/peer.proto SnapshotWant).
 *
 * Role: raft sends only descriptors (raft_fsm.h, pt_raft_fsm_use_files). The FSM's restore
 * needs the file on local disk, and raft calls restore right after it stored the snapshot,
 * in the same loop pass, so the file has to be complete before raft sees the message.
 *
 * Design:
 * - Interception: raft_uv hands every received message to the recv callback it got in
 *   io->start. pt_raft_node__snap_init replaces io->start with one that records raft's
 *   callback and gives raft_uv recv_cb instead. recv_cb passes every message through, except
 *   an InstallSnapshot whose descriptor names a file of an index this store has not applied
 *   and this region does not hold: that one is held (its data and configuration are owned
 *   from then on, the sender's address copied) while the file is fetched, then handed to
 *   raft. One fetch at a time: an InstallSnapshot that arrives while one runs is dropped (the
 *   leader sends again after its install timeout), as is one whose fetch fails, one whose
 *   descriptor does not parse, one whose file would take the disk below its reserve, and
 *   any held message when the node stops.
 * - Fetch: SnapshotWant requests of FETCH_CHUNK bytes over the peer RPC service (peer_rpc.c:
 *   one answer per request, a timeout each), at most FETCH_INFLIGHT in flight (a window over
 *   the file; at most that many pieces held in memory); every answer must be exactly the
 *   bytes asked for. Pieces are written to <sdir>/<name>.tmp and hashed in the thread pool,
 *   in file order, one work item at a time; the last work item also fsyncs, compares size and
 * SHA-256 with the descriptor, renames the file to its name and fsyncs the directory. The whole
 * fetch is bounded by FETCH_DEADLINE_MS and the file by PT_SNAPFILE_SIZE_MAX (checked by the
 * descriptor parser).
 * - Restore: once the file is complete it is restored in the thread pool, not in raft's
 *   restore callback (which raft calls on the loop): meanwhile the FSM holds back what raft
 *   applies (pt_raft_fsm_hold) and takes no snapshot, so nothing else writes the store. Then
 *   the held entries are applied (those the snapshot covers are skipped by index) and the
 *   message goes to raft, whose restore finds the store at the snapshot's index and skips. A
 *   crash in between leaves a store ahead of raft (the usual state after a restart) or at
 *   index 0 (restored again at start from raft's previous snapshot, then its log).
 * - Serving: a SnapshotWant names a file only by "<index>.pts" (pt_snapfile_parse_name: no
 *   path from a peer is ever used), asks at most FETCH_CHUNK bytes, and is read in the thread
 *   pool (open, pread, close), at most SERVE_MAX at a time (TOOMANYREQUESTS beyond).
 * - Snapshot writes: raft's fsm version 3 runs snapshot_async through io->async_work, which
 *   raft_uv 0.15 does not provide (raft_init refuses such an io); it is provided here on the
 *   loop's thread pool (uv_queue_work).
 * - Stopping: every queued work item counts in n->snap_works; pt_raft_node_stop adds them to
 *   n->closing and each one's completion drops its reference, so the node outlives them.
 * Threads: the raft loop, except the bodies of the work items (they touch only their own
 *   struct and files).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob_sync.h"
#include "diskspace.h"
#include "err.h"
#include "log.h"
#include "metastore.h"
#include "metrics.h"
#include "peer.h"
#include "peer.pb-c.h"
#include "raft_node_int.h"
#include "raft_snapshot.h"

/* Piece size; a build may lower it (-DPT_SNAP_FETCH_CHUNK=4096) to exercise the window. */
#ifdef PT_SNAP_FETCH_CHUNK
#define FETCH_CHUNK PT_SNAP_FETCH_CHUNK
#else
#define FETCH_CHUNK (1u << 20)
#endif
/* Pieces in flight: the window bounds a fetch to FETCH_INFLIGHT MiB per round trip; 16 MiB
 * keeps a 100 MB/s link full up to a round trip of 160 ms (4 held it to 39 MB/s at 107 ms),
 * and is what the fetch holds in memory at most. */
#define FETCH_INFLIGHT    16
#define FETCH_TIMEOUT_MS  30000
#define FETCH_DEADLINE_MS (60u * 60 * 1000)
/* Pieces being read for peers at once: two fetches' windows. */
#define SERVE_MAX 32

/* One piece of the window: asked (a request in flight), then ready (its bytes arrived). */
struct piece {
    struct snap_fetch *f;
    int state; /* PIECE_FREE, PIECE_ASKED, PIECE_READY */
    uint64_t offset;
    size_t len; /* the bytes asked for (and received) */
    void *data; /* owned once ready */
};

enum { PIECE_FREE = 0, PIECE_ASKED, PIECE_READY };

struct snap_fetch {
    struct pt_raft_node *n;
    struct raft_message msg; /* held: owns install_snapshot.data and .conf */
    char *address;           /* msg.server_address, copied */
    struct pt_snapdesc d;
    char name[PT_SNAPFILE_NAME_MAX];
    char path[4300], tmp[4300];
    int fd;
    uint64_t started;
    uint64_t next_ask;   /* offset of the next piece to request */
    uint64_t next_write; /* offset of the next piece to write (pieces are written in order) */
    struct piece window[FETCH_INFLIGHT]; /* piece at offset o is window[(o / CHUNK) % N] */
    unsigned pending;                    /* requests and work items whose callback has not fired */
    int failed;      /* the first error; the fetch ends once nothing is pending */
    EVP_MD_CTX *ctx; /* SHA-256 of the bytes written so far (pool thread while writing) */
    uv_work_t work;
    struct piece *writing; /* the piece the work item writes, or NULL */
    int work_rv;
    bool last;
    uv_work_t restore; /* the restore of the complete file, off the loop */
    int restore_rv;
    uint64_t restore_ms;
};

static struct pt_raft_node *node_of(struct raft_io *io)
{
    return (struct pt_raft_node *)((char *)io - offsetof(struct pt_raft_node, io));
}

static void drop_message(struct raft_message *m)
{
    raft_configuration_close(&m->install_snapshot.conf);
    raft_free(m->install_snapshot.data.base);
    m->install_snapshot.data.base = NULL;
}

static void work_done(struct pt_raft_node *n)
{
    n->snap_works--;
    if (n->stopping && n->closing > 0)
        pt_raft_node__maybe_stopped(n);
}

static void fetch_free(struct snap_fetch *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->tmp[0] != '\0')
        unlink(f->tmp); /* nothing if it was renamed */
    EVP_MD_CTX_free(f->ctx);
    for (unsigned i = 0; i < FETCH_INFLIGHT; i++)
        free(f->window[i].data);
    free(f->address);
    free(f);
}

/* Hands the held message to raft (rv 0) or drops it, and frees the fetch. */
static void deliver(struct snap_fetch *f, int rv)
{
    struct pt_raft_node *n = f->n;
    n->snap_fetch = NULL;
    if (rv == 0 && !n->stopping) {
        f->msg.server_address = f->address;
        n->raft_recv(&n->io, &f->msg); /* raft owns data and configuration from here */
    } else {
        drop_message(&f->msg);
    }
    fetch_free(f);
}

/* Thread pool: the store belongs to this restore (pt_raft_fsm_hold). */
static void restore_work(uv_work_t *w)
{
    struct snap_fetch *f = w->data;
    uint64_t t0 = uv_hrtime();
    f->restore_rv = pt_snapfile_restore(f->n->ms, f->n->fsm.sdir, &f->d);
    f->restore_ms = (uv_hrtime() - t0) / 1000000;
}

static void restore_done(uv_work_t *w, int status)
{
    struct snap_fetch *f = w->data;
    struct pt_raft_node *n = f->n;
    int rv = status != 0 ? PT_E_INTERNAL : f->restore_rv;
    atomic_store(&n->fsm.restoring, 0);
    pt_raft_fsm_hold(&n->fsm, false);
    if (rv == 0) {
        n->fsm.n_restored++;
        n->fsm.n_restored_files++;
        n->fsm.restore_ms_total += f->restore_ms;
        n->fsm.restore_bytes_total += f->d.size;
        pt_metrics_snapshot(PT_METRICS_SNAP_RESTORED, f->d.size, f->restore_ms);
        pt_log(PT_LOG_INFO, "raft snapshot file restored", "{s:I,s:I,s:I}", "applied_index",
               (json_int_t)f->d.index, "bytes", (json_int_t)f->d.size, "ms",
               (json_int_t)f->restore_ms);
    } else if (!n->stopping) {
        pt_log(PT_LOG_ERROR, "raft snapshot restore failed", "{s:I,s:s}", "applied_index",
               (json_int_t)f->d.index, "error", pt_err_message(rv));
    }
    /* entries held back meanwhile: those the snapshot holds are skipped by index */
    (void)pt_raft_fsm_drain(&n->fsm);
    if (n->blobs != NULL)
        pt_blob_sync_changed(n->blobs);
    /* raft stores the descriptor; its restore finds the store there already and skips */
    deliver(f, rv);
    work_done(n);
}

/* Ends the fetch: on success the file is restored off the loop, then the message handed to
 * raft; on failure the message is dropped. */
static void fetch_end(struct snap_fetch *f, int rv)
{
    struct pt_raft_node *n = f->n;
    if (rv == 0 && !n->stopping) {
        n->snap_n_fetched++;
        n->snap_fetch_bytes += f->d.size;
        pt_metrics_snapshot(PT_METRICS_SNAP_FETCHED, f->d.size, uv_now(n->loop) - f->started);
        pt_log(PT_LOG_INFO, "raft snapshot fetched", "{s:I,s:I,s:I,s:I}", "applied_index",
               (json_int_t)f->d.index, "bytes", (json_int_t)f->d.size, "from",
               (json_int_t)f->msg.server_id, "ms", (json_int_t)(uv_now(n->loop) - f->started));
        if (f->d.index <= pt_metastore_applied_index(n->ms) || pt_disk_low(f->d.size)) {
            deliver(f, 0); /* restore skips it, or refuses it below the disk reserve */
            return;
        }
        pt_raft_fsm_hold(&n->fsm, true);
        atomic_store(&n->fsm.restoring, f->d.index);
        f->restore.data = f;
        if (uv_queue_work(n->loop, &f->restore, restore_work, restore_done) == 0) {
            n->snap_works++;
            return;
        }
        pt_raft_fsm_hold(&n->fsm, false);
        atomic_store(&n->fsm.restoring, 0);
        deliver(f, 0); /* raft's restore, on the loop, then */
        return;
    }
    n->snap_n_fetch_failed++;
    pt_metrics_snapshot(PT_METRICS_SNAP_FETCH_FAILED, 0, 0);
    if (!n->stopping)
        pt_log(PT_LOG_WARN, "raft snapshot fetch failed; the leader sends it again",
               "{s:I,s:I,s:s}", "applied_index", (json_int_t)f->d.index, "from",
               (json_int_t)f->msg.server_id, "error", pt_err_message(rv));
    deliver(f, rv);
}

static struct piece *piece_at(struct snap_fetch *f, uint64_t offset)
{
    return &f->window[(offset / FETCH_CHUNK) % FETCH_INFLIGHT];
}

/* Records a failure; the fetch ends once no callback is pending any more. */
static void fetch_fail(struct snap_fetch *f, int rv)
{
    if (f->failed == 0)
        f->failed = rv;
}

static void fetch_pump(struct snap_fetch *f);

/* Thread pool: writes and hashes one piece; after the last one, checks and names the file. */
static void write_work(uv_work_t *w)
{
    struct snap_fetch *f = w->data;
    struct piece *pc = f->writing;
    const char *p = pc->data;
    size_t left = pc->len;
    uint64_t at = pc->offset;
    f->work_rv = 0;
    while (left > 0) {
        ssize_t k = pwrite(f->fd, p, left, (off_t)at);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            f->work_rv = errno == ENOSPC ? PT_E_DISK_FULL : PT_E_IO;
            return;
        }
        p += k;
        at += (uint64_t)k;
        left -= (size_t)k;
    }
    EVP_DigestUpdate(f->ctx, pc->data, pc->len);
    if (!f->last)
        return;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(f->ctx, md, &mdlen) != 1 || mdlen != 32 ||
        memcmp(md, f->d.sha256, 32) != 0) {
        f->work_rv = PT_E_CORRUPT;
        return;
    }
    if (fsync(f->fd) != 0 || close(f->fd) != 0) {
        f->fd = -1;
        f->work_rv = PT_E_IO;
        return;
    }
    f->fd = -1;
    if (rename(f->tmp, f->path) != 0) {
        f->work_rv = PT_E_IO;
        return;
    }
    f->tmp[0] = '\0';
    int dfd = open(f->n->fsm.sdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        f->work_rv = PT_E_IO;
    if (dfd >= 0)
        close(dfd);
}

static void write_done(uv_work_t *w, int status)
{
    struct snap_fetch *f = w->data;
    struct pt_raft_node *n = f->n;
    struct piece *pc = f->writing;
    f->writing = NULL;
    f->pending--;
    int rv = status != 0 ? PT_E_INTERNAL : f->work_rv;
    if (rv != 0) {
        fetch_fail(f, rv);
    } else {
        f->next_write += pc->len;
        free(pc->data);
        pc->data = NULL;
        pc->state = PIECE_FREE;
    }
    fetch_pump(f); /* may free f */
    work_done(n);
}

static void on_piece(void *arg, int status, const void *body, size_t len)
{
    struct piece *pc = arg;
    struct snap_fetch *f = pc->f;
    f->pending--;
    if (status == 0 && len != pc->len)
        status = PT_E_CORRUPT; /* exactly the bytes asked for, nothing else */
    if (status == 0 && (pc->data = malloc(len)) == NULL)
        status = PT_E_NOMEM;
    if (status != 0) {
        fetch_fail(f, status);
    } else {
        memcpy(pc->data, body, len);
        pc->state = PIECE_READY;
    }
    fetch_pump(f);
}

/* Asks for pieces while the window has room, starts the write of the next piece in file order
 * once it arrived, and ends the fetch when it is complete, or failed with nothing pending. */
static void fetch_pump(struct snap_fetch *f)
{
    struct pt_raft_node *n = f->n;
    if (f->failed == 0 && (n->stopping || uv_now(n->loop) - f->started > FETCH_DEADLINE_MS))
        fetch_fail(f, PT_E_UNAVAILABLE);
    while (f->failed == 0 && f->next_ask < f->d.size &&
           piece_at(f, f->next_ask)->state == PIECE_FREE) {
        struct piece *pc = piece_at(f, f->next_ask);
        uint64_t left = f->d.size - f->next_ask;
        Portolan__SnapshotWant want = PORTOLAN__SNAPSHOT_WANT__INIT;
        want.name = f->name;
        want.offset = f->next_ask;
        want.length = left < FETCH_CHUNK ? (uint32_t)left : FETCH_CHUNK;
        unsigned char body[96];
        if (portolan__snapshot_want__get_packed_size(&want) > sizeof(body)) {
            fetch_fail(f, PT_E_INTERNAL);
            break;
        }
        size_t len = portolan__snapshot_want__pack(&want, body);
        pc->f = f;
        pc->offset = f->next_ask;
        pc->len = want.length;
        int rv =
            pt_peers_request(n->peers, f->msg.server_id, PORTOLAN__PEER_TYPE__PEER_SNAPSHOT_WANT,
                             body, len, FETCH_TIMEOUT_MS, on_piece, pc);
        if (rv != 0) {
            fetch_fail(f, rv);
            break;
        }
        pc->state = PIECE_ASKED;
        f->pending++;
        f->next_ask += want.length;
    }
    struct piece *next = piece_at(f, f->next_write);
    if (f->failed == 0 && f->writing == NULL && f->next_write < f->d.size &&
        next->state == PIECE_READY && next->offset == f->next_write) {
        f->writing = next;
        f->last = f->next_write + next->len == f->d.size;
        f->work.data = f;
        if (uv_queue_work(n->loop, &f->work, write_work, write_done) != 0) {
            f->writing = NULL;
            fetch_fail(f, PT_E_INTERNAL);
        } else {
            f->pending++;
            n->snap_works++;
        }
    }
    if (f->pending == 0 && (f->failed != 0 || f->next_write == f->d.size))
        fetch_end(f, f->failed);
}

/* Starts fetching the file of d for the held message m (taken over). 0, or an error after
 * which the caller still owns m. */
static int fetch_start(struct pt_raft_node *n, const struct raft_message *m,
                       const struct pt_snapdesc *d)
{
    struct snap_fetch *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return PT_E_NOMEM;
    f->n = n;
    f->fd = -1;
    f->msg = *m;
    f->d = *d;
    f->started = uv_now(n->loop);
    pt_snapfile_name(d->index, f->name, sizeof(f->name));
    snprintf(f->path, sizeof(f->path), "%s/%s", n->fsm.sdir, f->name);
    snprintf(f->tmp, sizeof(f->tmp), "%s/%s.tmp", n->fsm.sdir, f->name);
    f->address = strdup(m->server_address != NULL ? m->server_address : "");
    f->ctx = EVP_MD_CTX_new();
    int rv = 0;
    if (f->address == NULL || f->ctx == NULL)
        rv = PT_E_NOMEM;
    else if (EVP_DigestInit_ex(f->ctx, EVP_sha256(), NULL) != 1)
        rv = PT_E_INTERNAL;
    if (rv == 0 && mkdir(n->fsm.sdir, 0700) != 0 && errno != EEXIST)
        rv = PT_E_IO;
    if (rv == 0 && (f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
        rv = PT_E_IO;
    if (rv != 0) {
        f->tmp[0] = f->fd >= 0 ? f->tmp[0] : '\0';
        fetch_free(f);
        return rv;
    }
    n->snap_fetch = f;
    n->snap_n_fetches++;
    pt_log(PT_LOG_INFO, "raft snapshot fetch started", "{s:I,s:I,s:I}", "applied_index",
           (json_int_t)d->index, "bytes", (json_int_t)d->size, "from", (json_int_t)m->server_id);
    fetch_pump(f);
    return 0;
}

static void recv_cb(struct raft_io *io, struct raft_message *m)
{
    struct pt_raft_node *n = node_of(io);
    if (m->type != RAFT_IO_INSTALL_SNAPSHOT || n->fsm.sdir[0] == '\0' ||
        !pt_snapdesc_is(m->install_snapshot.data.base, m->install_snapshot.data.len)) {
        n->raft_recv(io, m);
        return;
    }
    struct pt_snapdesc d;
    if (pt_snapdesc_parse(m->install_snapshot.data.base, m->install_snapshot.data.len, &d) != 0) {
        pt_log(PT_LOG_WARN, "raft snapshot descriptor refused", "{s:I}", "from",
               (json_int_t)m->server_id);
        n->snap_n_dropped++;
        drop_message(m);
        return;
    }
    if (n->snap_fetch != NULL) {
        n->snap_n_dropped++; /* the fetch (or restore) running answers it; the leader sends
                              * again */
        drop_message(m);
        return;
    }
    if (d.index <= pt_metastore_applied_index(n->ms) || pt_snapfile_have(n->fsm.sdir, &d)) {
        n->raft_recv(io, m); /* restore skips it, or finds its file */
        return;
    }
    if (pt_disk_low(d.size)) {
        n->snap_n_dropped++; /* restore would refuse it too (raft_fsm.c) */
        pt_log(PT_LOG_WARN, "raft snapshot not fetched: free disk space below the reserve",
               "{s:I,s:I}", "applied_index", (json_int_t)d.index, "bytes", (json_int_t)d.size);
        drop_message(m);
        return;
    }
    if (n->snap_fetch != NULL || n->stopping) {
        n->snap_n_dropped++; /* the fetch running answers it; the leader sends again */
        drop_message(m);
        return;
    }
    int rv = fetch_start(n, m, &d);
    if (rv != 0) {
        pt_log(PT_LOG_WARN, "raft snapshot fetch not started", "{s:s}", "error",
               pt_err_message(rv));
        n->snap_n_fetch_failed++;
        pt_metrics_snapshot(PT_METRICS_SNAP_FETCH_FAILED, 0, 0);
        drop_message(m);
    }
}

static int start_cb(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv)
{
    struct pt_raft_node *n = node_of(io);
    n->raft_recv = recv;
    return n->io_start(io, msecs, tick, recv_cb);
}

/* io->async_work, which raft_uv 0.15 lacks (fsm version 3 needs it): uv_queue_work. */
struct async_req {
    uv_work_t work;
    struct raft_io_async_work *req;
    struct pt_raft_node *n;
    int status;
};

static void async_run(uv_work_t *w)
{
    struct async_req *a = w->data;
    a->status = a->req->work(a->req);
}

static void async_done(uv_work_t *w, int status)
{
    struct async_req *a = w->data;
    struct pt_raft_node *n = a->n;
    /* once stopping, raft's I/O may be closed: report the work canceled, so raft only
     * finalizes (releases the pinned state) and stores nothing */
    int rv = status != 0 || n->stopping ? RAFT_CANCELED : a->status;
    a->req->cb(a->req, rv);
    free(a);
    work_done(n);
}

static int async_work_cb(struct raft_io *io, struct raft_io_async_work *req,
                         raft_io_async_work_cb cb)
{
    struct pt_raft_node *n = node_of(io);
    if (n->stopping)
        return RAFT_CANCELED;
    struct async_req *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return RAFT_NOMEM;
    req->cb = cb;
    a->req = req;
    a->n = n;
    a->work.data = a;
    if (uv_queue_work(n->loop, &a->work, async_run, async_done) != 0) {
        free(a);
        return RAFT_IOERR;
    }
    n->snap_works++;
    return 0;
}

int pt_raft_node__snap_init(struct pt_raft_node *n)
{
    char sdir[4200];
    int rv = pt_snapfile_dir(n->cfg.dir, sdir, sizeof(sdir));
    if (rv == 0)
        rv = pt_raft_fsm_use_files(&n->fsm, sdir, n->cfg.self_id);
    if (rv != 0)
        return rv;
    if (mkdir(sdir, 0700) != 0 && errno != EEXIST)
        return PT_E_IO;
    n->io_start = n->io.start;
    n->io.start = start_cb;
    if (n->io.version < 2 || n->io.async_work == NULL) {
        n->io.version = 2;
        n->io.async_work = async_work_cb;
    }
    return 0;
}

/* ---- serving ----------------------------------------------------------------------------- */

struct snap_serve {
    struct pt_raft_node *n;
    struct pt_peer_call *call;
    uv_work_t work;
    char path[4300];
    uint64_t offset;
    size_t length, got;
    int rv;
    unsigned char *buf;
};

static void serve_work(uv_work_t *w)
{
    struct snap_serve *s = w->data;
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        s->rv = errno == ENOENT ? PT_E_BLOB_UNKNOWN : PT_E_IO;
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        s->rv = PT_E_IO;
    } else if (s->offset > (uint64_t)st.st_size) {
        s->rv = PT_E_RANGE_INVALID;
    } else {
        uint64_t left = (uint64_t)st.st_size - s->offset;
        size_t want = left < s->length ? (size_t)left : s->length;
        s->rv = 0;
        while (s->got < want) {
            ssize_t k = pread(fd, s->buf + s->got, want - s->got, (off_t)(s->offset + s->got));
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                s->rv = PT_E_IO;
                break;
            }
            s->got += (size_t)k;
        }
    }
    close(fd);
}

static void serve_done(uv_work_t *w, int status)
{
    struct snap_serve *s = w->data;
    struct pt_raft_node *n = s->n;
    int rv = status != 0 ? PT_E_INTERNAL : s->rv;
    if (rv == 0) {
        n->snap_n_served++;
        n->snap_served_bytes += s->got;
        pt_metrics_snapshot(PT_METRICS_SNAP_SERVED, s->got, 0);
    } else {
        n->snap_n_serve_refused++;
        pt_metrics_snapshot(PT_METRICS_SNAP_SERVE_REFUSED, 0, 0);
    }
    pt_peer_reply(s->call, rv, rv == 0 ? s->buf : NULL, rv == 0 ? s->got : 0);
    n->snap_serving--;
    free(s->buf);
    free(s);
    work_done(n);
}

void pt_raft_node__snap_serve(struct pt_raft_node *n, uint64_t from, const void *body, size_t len,
                              struct pt_peer_call *call)
{
    Portolan__SnapshotWant *want = portolan__snapshot_want__unpack(NULL, len, body);
    uint64_t index;
    int rv = 0;
    if (want == NULL)
        rv = PT_E_CORRUPT;
    else if (n->fsm.sdir[0] == '\0')
        rv = PT_E_UNSUPPORTED;
    else if (pt_snapfile_parse_name(want->name, strlen(want->name), &index) != 0)
        rv = PT_E_NAME_INVALID;
    else if (want->length == 0 || want->length > FETCH_CHUNK)
        rv = PT_E_RANGE_INVALID;
    else if (n->snap_serving >= SERVE_MAX || n->stopping)
        rv = PT_E_TOOMANYREQUESTS;
    struct snap_serve *s = NULL;
    if (rv == 0 && ((s = calloc(1, sizeof(*s))) == NULL || (s->buf = malloc(want->length)) == NULL))
        rv = PT_E_NOMEM;
    if (rv == 0) {
        s->n = n;
        s->call = call;
        s->offset = want->offset;
        s->length = want->length;
        char name[PT_SNAPFILE_NAME_MAX];
        pt_snapfile_name(index, name, sizeof(name));
        snprintf(s->path, sizeof(s->path), "%s/%s", n->fsm.sdir, name);
        s->work.data = s;
        if (uv_queue_work(n->loop, &s->work, serve_work, serve_done) != 0)
            rv = PT_E_INTERNAL;
    }
    if (want != NULL)
        portolan__snapshot_want__free_unpacked(want, NULL);
    if (rv != 0) {
        if (s != NULL)
            free(s->buf);
        free(s);
        n->snap_n_serve_refused++;
        pt_metrics_snapshot(PT_METRICS_SNAP_SERVE_REFUSED, 0, 0);
        if (rv == PT_E_NAME_INVALID || rv == PT_E_CORRUPT)
            pt_log(PT_LOG_WARN, "snapshot piece request refused", "{s:I,s:s}", "from",
                   (json_int_t)from, "error", pt_err_message(rv));
        pt_peer_reply(call, rv, NULL, 0);
        return;
    }
    n->snap_serving++;
    n->snap_works++;
}
