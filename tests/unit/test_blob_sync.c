/*
 * test_blob_sync.c - blob replication between regions (replication/blob_sync.c) over real
 * transports on loopback, in one process with one libuv loop.
 *
 * Each region is a listening transport (transport.h, set up the way raft_start leaves it, with
 * a raft accept callback that drops what it gets), a blob store and a metastore in a directory
 * of its own, and a pt_blob_sync. Raft is replaced by a fake propose function: it decodes the
 * Command a region proposes, checks that it is exactly one BlobStored of that region for a
 * blob the test made, and on a later loop iteration applies it with pt_fsm_apply to every
 * region's metastore (one shared log index, as a committed entry would be), tells every
 * service that replicated state changed, and answers done. Blobs enter a region by a real
 * upload into its store and are recorded by a LinkBlob + BlobStored command applied the same
 * way.
 *
 * Covered: background replication of a large, an empty and a one-byte blob, each announced
 * exactly once, with the status counters of both sides; a reader attached to a transfer by
 * pt_blob_sync_feed (one transfer per digest, the last byte held back until verified, the
 * bytes read from the feed's descriptor); a holder whose stored file is corrupt (nothing stored
 * or announced until it is repaired); a large transfer stopped half way and resumed from its
 * recorded offset by a new service on the same stores; a holder lost half way (the transfer
 * goes on from the other one); a blob whose only holder is unreachable (the feed waits, then
 * fails when the service stops) and one nobody holds; the serving side's limits, probed with
 * raw BlobWants over a BULK channel; a stop while an announcement is pending; and the
 * encoding of a transfer's BlobWant into its fixed buffer, refused when it would not fit.
 * Every test stops every service, closes every handle (uv_loop_close() == 0) and removes its
 * directory; ASan and LSan check memory. Waits are bounded and wait for conditions, not for
 * fixed times; fixed pauses only check that nothing more happens.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include <raft.h>
#include <raft/uv.h>

#include "blob_sync.h"
#include "blob_sync_wire.h"
#include "blobstore.h"
#include "command.h"
#include "digest.h"
#include "err.h"
#include "fsm.h"
#include "mailbox.h"
#include "metastore.h"
#include "peer.h"
#include "peer.pb-c.h"
#include "support/loop.h"
#include "support/loopback.h"
#include "transport.h"

#define CLUSTER      "blob-sync-test"
#define REPO         "library/app"
#define T0           1700000000000LL
#define MIB          (1024u * 1024u)
#define MAX_REGIONS  3
#define MAX_BLOBS    16
#define MAX_PROPOSED 32
/* Bytes a transfer may have asked for beyond what it wrote: its window of pieces. */
#define WINDOW_BYTES ((uint64_t)PT_BLOB_SYNC_WINDOW * PT_BLOB_SYNC_CHUNK)

static uv_loop_t loop;

/* ---- Loop helpers ------------------------------------------------------------------------- */

#define RUN_UNTIL_GE(ptr, n, ms) PT_LOOP_RUN_UNTIL_GE(&loop, (ptr), (n), (ms))
#define RUN_FOR(ms)              PT_LOOP_RUN_FOR(&loop, (ms))

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ---- Blobs -------------------------------------------------------------------------------- */

struct blob {
    char digest[PT_DIGEST_STR_MAX + 1];
    struct pt_digest d;
    uint64_t size;
    unsigned char *data; /* owned */
};

/* ---- Regions ------------------------------------------------------------------------------ */

struct region {
    uint64_t id;
    char name[16];
    char root[300];
    struct pt_loopback_transport net; /* listening; raft connections are dropped */
    struct pt_blobstore *bs;
    struct pt_metastore *ms;
    struct pt_blob_sync *sync;
    unsigned concurrency;
    unsigned commit_delay_ms; /* how long its proposals take to commit (0: the next iteration) */
    int sync_stops;           /* stop callbacks received, over every service this region ran */
    /* BlobStored commands this region proposed, by digest */
    char proposed[MAX_PROPOSED][PT_DIGEST_STR_MAX + 1];
    int nproposed;
};

static struct {
    char dir[256];
    struct region r[MAX_REGIONS];
    int n;
    uint64_t index; /* last log index applied to every metastore */
    int proposals_pending;
    struct blob *blobs[MAX_BLOBS]; /* owned */
    int nblobs;
    bool in_stop; /* inside pt_blob_sync_stop */
} w;

static struct blob *blob_new(uint64_t size, uint32_t seed)
{
    struct blob *b = calloc(1, sizeof(*b));
    uint32_t x = seed * 2654435761u + 1;

    assert_non_null(b);
    assert_true(w.nblobs < MAX_BLOBS);
    b->size = size;
    b->data = malloc(size > 0 ? size : 1);
    assert_non_null(b->data);
    for (uint64_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b->data[i] = (unsigned char)x;
    }
    pt_digest_of(b->data, size, &b->d);
    pt_digest_format(&b->d, b->digest);
    w.blobs[w.nblobs++] = b;
    return b;
}

static const struct blob *blob_find(const char *digest)
{
    for (int i = 0; i < w.nblobs; i++)
        if (strcmp(w.blobs[i]->digest, digest) == 0)
            return w.blobs[i];
    return NULL;
}

static int proposed_count(const struct region *r, const char *digest)
{
    int n = 0;
    for (int i = 0; i < r->nproposed; i++)
        n += strcmp(r->proposed[i], digest) == 0;
    return n;
}

/* Path of blob b in r's store (blobs/sha256/<xx>/<hex>). */
static void blob_path(const struct region *r, const struct blob *b, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/store/blobs/sha256/%.2s/%s", r->root, b->d.hex, b->d.hex);
    assert_true(n > 0 && (size_t)n < size);
}

static bool blob_file_exists(const struct region *r, const struct blob *b)
{
    char path[512];
    blob_path(r, b, path, sizeof(path));
    return access(path, F_OK) == 0;
}

/* Whether r's store holds b: stat agrees on the size, and the file's bytes are b's and hash
 * to its digest. */
static bool holds(struct region *r, const struct blob *b)
{
    uint64_t size = 0;
    if (pt_blobstore_stat(r->bs, &b->d, &size) != 0)
        return false;
    assert_int_equal(size, b->size);

    char path[512];
    blob_path(r, b, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    unsigned char *buf = malloc(b->size > 0 ? b->size : 1);
    assert_non_null(buf);
    size_t got = 0;
    while (got < b->size) {
        ssize_t n = pread(fd, buf + got, b->size - got, (off_t)got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    unsigned char extra;
    assert_int_equal(pread(fd, &extra, 1, (off_t)got), 0);
    close(fd);
    struct pt_digest d;
    pt_digest_of(buf, b->size, &d);
    assert_true(pt_digest_equal(&d, &b->d));
    if (b->size > 0)
        assert_memory_equal(buf, b->data, b->size);
    free(buf);
    return true;
}

/* ---- Replicated state: the fake log ------------------------------------------------------- */

/* Applies an encoded Command (borrowed) as the next log entry to every region's metastore and
 * tells every running service. */
static void apply_all(const void *buf, size_t len)
{
    w.index++;
    for (int i = 0; i < w.n; i++) {
        struct pt_fsm_result res;
        if (w.r[i].ms == NULL)
            continue;
        assert_int_equal(pt_fsm_apply(w.r[i].ms, buf, len, w.index, &res), 0);
        assert_int_equal(res.status, 0);
    }
    for (int i = 0; i < w.n; i++)
        if (w.r[i].sync != NULL)
            pt_blob_sync_changed(w.r[i].sync);
}

struct proposal {
    uv_timer_t timer;
    void *buf;
    size_t len;
    pt_blob_sync_done_cb done;
    void *arg;
};

static void proposal_closed_cb(uv_handle_t *h)
{
    free(h->data);
    w.proposals_pending--;
}

/* A later loop iteration: the entry commits everywhere, then its proposer hears of it. */
static void proposal_commit_cb(uv_timer_t *tm)
{
    struct proposal *p = tm->data;
    apply_all(p->buf, p->len);
    free(p->buf);
    p->buf = NULL;
    p->done(p->arg, 0, w.index);
    uv_close((uv_handle_t *)&p->timer, proposal_closed_cb);
}

static void propose_fn(void *propose_arg, void *buf, size_t len, pt_blob_sync_done_cb done,
                       void *arg)
{
    struct region *r = propose_arg;
    Portolan__Command *c = NULL;

    assert_non_null(done);
    assert_int_equal(pt_command_decode(buf, len, &c), 0);
    assert_int_equal(c->version, PT_COMMAND_VERSION);
    assert_string_equal(c->region, r->name);
    assert_int_equal(c->n_ops, 1);
    assert_int_equal(c->ops[0]->op_case, PORTOLAN__OP__OP_BLOB_STORED);
    const Portolan__BlobStored *bs = c->ops[0]->blob_stored;
    assert_string_equal(bs->region, r->name);
    const struct blob *b = blob_find(bs->digest);
    if (b == NULL)
        fail_msg("%s proposed BlobStored of an unknown blob %s", r->name, bs->digest);
    assert_int_equal(bs->size, b->size);
    assert_true(r->nproposed < MAX_PROPOSED);
    snprintf(r->proposed[r->nproposed++], PT_DIGEST_STR_MAX + 1, "%s", bs->digest);
    pt_command_decoded_free(c);

    struct proposal *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->buf = buf;
    p->len = len;
    p->done = done;
    p->arg = arg;
    p->timer.data = p;
    w.proposals_pending++;
    assert_int_equal(uv_timer_init(&loop, &p->timer), 0);
    assert_int_equal(uv_timer_start(&p->timer, proposal_commit_cb, r->commit_delay_ms, 0), 0);
}

/* Records that region `holder` (a name; it need not be a region of the test) holds b, as the
 * upload that stored it there would have: LinkBlob + BlobStored in one command. */
static void record_held(const char *holder, const struct blob *b)
{
    struct pt_command_builder cb;
    void *buf = NULL;
    size_t len = 0;

    assert_int_equal(pt_command_builder_init(&cb, T0 + (int64_t)w.index, holder), 0);
    assert_int_equal(pt_command_add_link_blob(&cb, REPO, b->digest, b->size), 0);
    assert_int_equal(pt_command_add_blob_stored(&cb, b->digest, b->size, holder), 0);
    assert_int_equal(pt_command_builder_encode(&cb, &buf, &len), 0);
    pt_command_builder_free(&cb);
    apply_all(buf, len);
    free(buf);
}

/* A client upload of b into r's store, in slices of at most 4 MiB. */
static void store_blob(struct region *r, const struct blob *b)
{
    struct pt_upload u;
    assert_int_equal(pt_blobstore_upload_begin(r->bs, REPO, T0, &u), 0);
    for (uint64_t off = 0; off < b->size;) {
        size_t n = b->size - off < 4 * MIB ? (size_t)(b->size - off) : 4 * MIB;
        assert_int_equal(pt_blobstore_upload_append(r->bs, &u, b->data + off, n), 0);
        off += n;
    }
    assert_int_equal(pt_blobstore_upload_commit(r->bs, &u, &b->d), 0);
    assert_true(holds(r, b));
}

/* ---- Region life cycle -------------------------------------------------------------------- */

/* Adds region `name` with raft id id: its stores, and its transport listening on port. */
static struct region *region_add(const char *name, uint64_t id, unsigned port)
{
    char path[400];

    assert_true(w.n < MAX_REGIONS);
    struct region *r = &w.r[w.n++];
    memset(r, 0, sizeof(*r));
    r->id = id;
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(path, sizeof(path), "%s/%s", w.dir, name); /* r lives inside w: not in place */
    assert_true(strlen(path) < sizeof(r->root));
    memcpy(r->root, path, strlen(path) + 1);
    assert_int_equal(mkdir(r->root, 0755), 0);
    snprintf(path, sizeof(path), "%s/store", r->root);
    assert_int_equal(pt_blobstore_open(path, &r->bs), 0);
    snprintf(path, sizeof(path), "%s/meta", r->root);
    assert_int_equal(pt_metastore_open(path, &r->ms), 0);
    pt_loopback_transport_init(&r->net, &loop, CLUSTER, id, port);
    pt_loopback_transport_listen(&r->net);
    return r;
}

/* Starts r's service and tells it about every other region of the test. */
static void sync_start(struct region *r)
{
    struct pt_blob_sync_config cfg;

    assert_null(r->sync);
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.region, sizeof(cfg.region), "%s", r->name);
    cfg.self_id = r->id;
    cfg.concurrency = r->concurrency;
    assert_int_equal(
        pt_blob_sync_start(&loop, &r->net.t, r->ms, r->bs, &cfg, propose_fn, r, &r->sync), 0);
}

static void sync_link(struct region *r)
{
    for (int i = 0; i < w.n; i++) {
        if (&w.r[i] == r)
            continue;
        assert_int_equal(
            pt_blob_sync_set_region(r->sync, w.r[i].id, w.r[i].name, w.r[i].net.address), 0);
    }
    /* its own id is ignored */
    assert_int_equal(pt_blob_sync_set_region(r->sync, r->id, r->name, r->net.address), 0);
}

static void sync_stopped_cb(void *arg)
{
    struct region *r = arg;
    assert_false(w.in_stop); /* never from inside pt_blob_sync_stop */
    r->sync_stops++;
    r->sync = NULL;
}

/* Asks r's service to stop; returns at once (r->sync stays valid until the callback). */
static void sync_stop_begin(struct region *r)
{
    w.in_stop = true;
    pt_blob_sync_stop(r->sync, sync_stopped_cb, r);
    w.in_stop = false;
}

static void sync_stop(struct region *r)
{
    int before = r->sync_stops;
    sync_stop_begin(r);
    assert_true(RUN_UNTIL_GE(&r->sync_stops, before + 1, 10000));
    assert_int_equal(r->sync_stops, before + 1);
    assert_null(r->sync);
}

/* n regions "a", "b", "c" with ids 1..n, every service started and linked to the others. */
static void world_up(int n, unsigned concurrency)
{
    static const char *const names[] = {"a", "b", "c"};
    unsigned ports[MAX_REGIONS];

    pt_loopback_free_ports(ports, n);
    for (int i = 0; i < n; i++)
        region_add(names[i], (uint64_t)i + 1, ports[i])->concurrency = concurrency;
    for (int i = 0; i < n; i++)
        sync_start(&w.r[i]);
    for (int i = 0; i < n; i++)
        sync_link(&w.r[i]);
}

/* ---- Status ------------------------------------------------------------------------------- */

static json_t *status(struct region *r)
{
    char *text = pt_blob_sync_status_json(r->sync);
    assert_non_null(text);
    json_error_t err;
    json_t *o = json_loads(text, 0, &err);
    if (o == NULL)
        fail_msg("status of %s is not JSON (%s): %s", r->name, err.text, text);
    free(text);
    assert_true(json_is_object(o));
    return o;
}

static int64_t status_int(struct region *r, const char *key)
{
    json_t *o = status(r);
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("status of %s has no integer %s", r->name, key);
    int64_t n = json_integer_value(v);
    json_decref(o);
    return n;
}

static bool status_in_sync(struct region *r)
{
    json_t *o = status(r);
    json_t *v = json_object_get(o, "in_sync");
    assert_true(json_is_boolean(v));
    bool in_sync = json_is_true(v);
    json_decref(o);
    return in_sync;
}

/* The active transfer of digest in r's status: *offset, *on_demand and its state (copied into
 * state, 16 bytes); false if none. */
static bool status_active(struct region *r, const char *digest, int64_t *offset, bool *on_demand,
                          char *state)
{
    json_t *o = status(r);
    json_t *active = json_object_get(o, "active");
    bool found = false;
    size_t i;
    json_t *t;

    assert_true(json_is_array(active));
    json_array_foreach(active, i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "digest")), digest) != 0)
            continue;
        found = true;
        if (offset != NULL)
            *offset = json_integer_value(json_object_get(t, "offset"));
        if (on_demand != NULL)
            *on_demand = json_is_true(json_object_get(t, "on_demand"));
        if (state != NULL)
            snprintf(state, 16, "%s", json_string_value(json_object_get(t, "state")));
    }
    json_decref(o);
    return found;
}

/* ---- Waiting for replication ------------------------------------------------------------- */

struct arrived {
    struct region *r;
    const struct blob *const *b;
    int n;
};

/* Every blob is stored in r, announced, the announcement applied, and r's status in sync. */
static bool arrived_pred(void *arg)
{
    struct arrived *a = arg;
    for (int i = 0; i < a->n; i++) {
        uint64_t size;
        if (proposed_count(a->r, a->b[i]->digest) < 1 ||
            pt_blobstore_stat(a->r->bs, &a->b[i]->d, &size) != 0)
            return false;
    }
    return w.proposals_pending == 0 && status_in_sync(a->r);
}

/* Waits for arrived_pred, then checks every stored file byte for byte. */
static bool wait_arrived(struct region *r, const struct blob *const *b, int n, unsigned ms)
{
    struct arrived a = {r, b, n};
    if (!pt_loop_run_until(&loop, arrived_pred, &a, ms))
        return false;
    for (int i = 0; i < n; i++)
        assert_true(holds(r, b[i]));
    return true;
}

/* ---- Feed readers ------------------------------------------------------------------------- */

/* A reader of a feed, woken through a mailbox on the test loop, reading from the feed's file
 * descriptor whatever pt_blob_feed_poll allows. */
struct reader {
    struct pt_feed_waiter waiter; /* first: its mail is the reader's address */
    struct pt_blob_feed *f;
    uint64_t size;
    unsigned char *buf; /* owned, size bytes */
    uint64_t pos;
    int state;
    int error;
    int polls, wakeups;
    bool registered;
    bool early_full; /* avail reached size while RUNNING */
};

static void reader_step(struct reader *rd);

static void reader_mail_cb(struct pt_mail *mail)
{
    struct reader *rd = (struct reader *)mail;
    assert_true(rd->registered);
    rd->registered = false;
    rd->wakeups++;
    reader_step(rd);
}

static void reader_init(struct reader *rd, struct pt_mailbox *mb, struct pt_blob_feed *f,
                        uint64_t size)
{
    memset(rd, 0, sizeof(*rd));
    rd->waiter.mailbox = mb;
    rd->waiter.cb = reader_mail_cb;
    rd->f = f;
    rd->size = size;
    rd->buf = malloc(size > 0 ? size : 1);
    assert_non_null(rd->buf);
    rd->state = PT_FEED_RUNNING;
}

static void reader_step(struct reader *rd)
{
    for (;;) {
        uint64_t at = rd->pos, avail = 0;
        int error = 0;
        int st = pt_blob_feed_poll(rd->f, at, &avail, &error, &rd->waiter);
        rd->polls++;
        rd->state = st;
        rd->error = error;
        assert_true(avail <= rd->size);
        if (st == PT_FEED_RUNNING && rd->size > 0 && avail >= rd->size)
            rd->early_full = true;
        if (st == PT_FEED_RUNNING && at >= avail) {
            rd->registered = true; /* posted once more is there */
            return;
        }
        while (rd->pos < avail) {
            ssize_t n = pread(rd->f->fd, rd->buf + rd->pos, avail - rd->pos, (off_t)rd->pos);
            assert_true(n > 0);
            rd->pos += (uint64_t)n;
        }
        if (st != PT_FEED_RUNNING)
            return;
    }
}

static bool reader_finished_pred(void *arg)
{
    const struct reader *rd = arg;
    return rd->state != PT_FEED_RUNNING;
}

/* The test's one reader and its mailbox: static, so that teardown can wind them down when a
 * failed assertion left them in use. */
static struct reader rdr;
static struct pt_mailbox mailbox;
static bool mailbox_open;

/* Starts the reader on feed f (its reference passes to the reader), a blob of size bytes. */
static struct reader *reader_start(struct pt_blob_feed *f, uint64_t size)
{
    if (!mailbox_open) {
        assert_int_equal(pt_mailbox_init(&mailbox, &loop), 0);
        mailbox_open = true;
    }
    reader_init(&rdr, &mailbox, f, size);
    reader_step(&rdr);
    return &rdr;
}

/* Withdraws the reader's waiter, drops its feed reference and closes the mailbox (a mail
 * still pending in it is dropped). */
static void reader_stop(void)
{
    if (rdr.f != NULL) {
        if (rdr.registered)
            (void)pt_blob_feed_withdraw(rdr.f, &rdr.waiter);
        pt_blob_feed_release(rdr.f);
    }
    free(rdr.buf);
    memset(&rdr, 0, sizeof(rdr));
    if (mailbox_open) {
        pt_mailbox_close(&mailbox);
        mailbox_open = false;
        uv_run(&loop, UV_RUN_NOWAIT); /* completes the close */
    }
}

/* ---- Fixture ------------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    memset(&w, 0, sizeof(w));
    memset(&rdr, 0, sizeof(rdr));
    mailbox_open = false;
    const char *tmp = getenv("TMPDIR");
    snprintf(w.dir, sizeof(w.dir), "%s/pt_blob_sync_XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(w.dir) == NULL)
        return -1;
    return uv_loop_init(&loop);
}

/* Stops every service, closes every transport and store, and checks that no handle is left. */
static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < w.n; i++)
        if (w.r[i].sync != NULL)
            sync_stop(&w.r[i]);
    assert_int_equal(w.proposals_pending, 0);
    reader_stop();
    for (int i = 0; i < w.n; i++) {
        struct region *r = &w.r[i];
        if (r->net.open)
            pt_loopback_transport_close(&r->net, &loop, 5000);
        pt_metastore_close(r->ms);
        pt_blobstore_close(r->bs);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    /* 0 only if every handle the test and the services opened was closed */
    assert_int_equal(uv_loop_close(&loop), 0);
    for (int i = 0; i < w.nblobs; i++) {
        free(w.blobs[i]->data);
        free(w.blobs[i]);
    }
    nftw(w.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- Tests -------------------------------------------------------------------------------- */

/* Background replication: what A holds appears in B, verified, each blob announced once; the
 * counters of both sides add up to the bytes that moved. */
static void test_background(void **state)
{
    (void)state;
    world_up(2, 0);
    struct region *a = &w.r[0], *b = &w.r[1];
    const struct blob *blobs[3] = {blob_new(5 * MIB, 1), blob_new(0, 2), blob_new(1, 3)};
    uint64_t total = 0;

    for (int i = 0; i < 3; i++) {
        store_blob(a, blobs[i]);
        record_held(a->name, blobs[i]);
        total += blobs[i]->size;
    }
    assert_true(wait_arrived(b, blobs, 3, 10000));
    RUN_FOR(300); /* later scans find nothing more to do */

    for (int i = 0; i < 3; i++) {
        assert_true(holds(b, blobs[i]));
        assert_int_equal(proposed_count(b, blobs[i]->digest), 1);
        char **names = NULL;
        size_t n = 0;
        uint64_t size = 0;
        assert_int_equal(pt_metastore_blob_regions(b->ms, blobs[i]->digest, &size, &names, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(names[0], "a");
        assert_string_equal(names[1], "b");
        assert_int_equal(size, blobs[i]->size);
        pt_strv_free(names, n);
        void *val = NULL;
        size_t len = 0;
        assert_int_equal(pt_metastore_transfer_get(b->ms, blobs[i]->digest, &val, &len),
                         PT_E_NOT_FOUND);
    }
    assert_int_equal(b->nproposed, 3);
    assert_int_equal(a->nproposed, 0);

    assert_int_equal(status_int(a, "bytes_sent_total"), (int64_t)total);
    assert_int_equal(status_int(a, "bytes_received_total"), 0);
    assert_int_equal(status_int(a, "blobs_fetched_total"), 0);
    assert_true(status_in_sync(a));
    assert_int_equal(status_int(b, "blobs_fetched_total"), 3);
    assert_int_equal(status_int(b, "bytes_received_total"), (int64_t)total);
    assert_int_equal(status_int(b, "bytes_sent_total"), 0);
    assert_int_equal(status_int(b, "verify_failures_total"), 0);
    assert_int_equal(status_int(b, "resumed_total"), 0);
    assert_int_equal(status_int(b, "blobs_behind"), 0);
    assert_int_equal(status_int(b, "bytes_behind"), 0);
    assert_int_equal(status_int(b, "queue"), 0);
    assert_true(status_in_sync(b));
    json_t *o = status(b);
    assert_string_equal(json_string_value(json_object_get(o, "region")), "b");
    assert_int_equal(json_array_size(json_object_get(o, "active")), 0);
    json_decref(o);
}

/* On demand: a reader attaches to a blob B lacks before any background transfer of it starts,
 * while the only background slot is busy with another blob. One transfer per digest; the
 * reader never sees the last byte before the blob verified; the feed's descriptor gives the
 * blob's bytes. */
static void test_feed(void **state)
{
    (void)state;
    world_up(2, 1);
    struct region *a = &w.r[0], *b = &w.r[1];
    const struct blob *busy = blob_new(8 * MIB + 5, 10);
    const struct blob *wanted = blob_new(6 * MIB + 3, 11);
    struct pt_blob_feed *f = NULL, *f2 = NULL;
    bool on_demand = false;

    store_blob(a, busy);
    store_blob(a, wanted);
    record_held(a->name, busy);
    record_held(a->name, wanted);

    /* attach before the loop ran once: no scan has seen the blob yet */
    assert_int_equal(pt_blob_sync_feed(b->sync, wanted->digest, wanted->size, &f), 0);
    assert_non_null(f);
    assert_int_equal(pt_blob_sync_feed(b->sync, wanted->digest, wanted->size, &f2), 0);
    assert_ptr_equal(f2, f); /* one transfer per digest, whatever the number of readers */
    assert_int_equal(f->size, wanted->size);
    pt_blob_feed_release(f2);
    assert_true(status_active(b, wanted->digest, NULL, &on_demand, NULL));
    assert_true(on_demand);

    struct reader *rd = reader_start(f, wanted->size);
    assert_int_equal(rd->state, PT_FEED_RUNNING);
    assert_true(rd->registered);
    assert_true(pt_loop_run_until(&loop, reader_finished_pred, rd, 15000));
    assert_int_equal(rd->state, PT_FEED_DONE);
    assert_int_equal(rd->error, 0);
    assert_false(rd->early_full);
    assert_true(rd->wakeups >= 1);
    assert_int_equal(rd->pos, wanted->size);
    assert_memory_equal(rd->buf, wanted->data, wanted->size);

    /* the background transfer of the other blob completes as well */
    const struct blob *both[2] = {busy, wanted};
    assert_true(wait_arrived(b, both, 2, 15000));
    RUN_FOR(300);
    assert_int_equal(proposed_count(b, wanted->digest), 1);
    assert_int_equal(proposed_count(b, busy->digest), 1);
    assert_int_equal(b->nproposed, 2);
    assert_int_equal(status_int(b, "blobs_fetched_total"), 2);
    /* each blob crossed once: the feed and the background shared one transfer */
    assert_int_equal(status_int(a, "bytes_sent_total"), (int64_t)(busy->size + wanted->size));

    /* the feed outlives its transfer; its descriptor reads the stored blob */
    uint64_t avail = 0;
    int error = -1;
    assert_int_equal(pt_blob_feed_poll(f, wanted->size, &avail, &error, NULL), PT_FEED_DONE);
    assert_int_equal(avail, wanted->size);
    assert_int_equal(error, 0);
    unsigned char tail[2];
    assert_int_equal(pread(f->fd, tail, 2, (off_t)wanted->size - 2), 2);
    assert_memory_equal(tail, wanted->data + wanted->size - 2, 2);
    reader_stop(); /* drops the last reference */
}

struct corrupt_watch {
    struct region *b;
    const struct blob *x;
    bool file_seen;
    bool proposed;
};

static bool verify_failed_pred(void *arg)
{
    struct corrupt_watch *cw = arg;
    cw->file_seen |= blob_file_exists(cw->b, cw->x);
    cw->proposed |= proposed_count(cw->b, cw->x->digest) > 0;
    return status_int(cw->b, "verify_failures_total") >= 1;
}

static void flip_byte(const struct region *r, const struct blob *b, uint64_t at)
{
    char path[512];
    unsigned char c;
    blob_path(r, b, path, sizeof(path));
    int fd = open(path, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, (off_t)at), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)at), 1);
    assert_int_equal(fsync(fd), 0);
    close(fd);
}

/* A holder whose stored file went bad: the copy fails verification, nothing is stored or
 * announced; once the holder's file is repaired the blob arrives intact. */
static void test_corrupt_holder(void **state)
{
    (void)state;
    world_up(2, 0);
    struct region *a = &w.r[0], *b = &w.r[1];
    const struct blob *x = blob_new(3 * MIB + 11, 20);
    struct corrupt_watch cw = {b, x, false, false};
    const uint64_t at = MIB + 5;

    store_blob(a, x);
    flip_byte(a, x, at);
    record_held(a->name, x);

    assert_true(pt_loop_run_until(&loop, verify_failed_pred, &cw, 10000));
    assert_false(cw.file_seen);
    assert_false(cw.proposed);
    assert_false(blob_file_exists(b, x));
    assert_int_equal(b->nproposed, 0);
    assert_true(status_int(b, "verify_failures_total") >= 1);
    assert_int_equal(status_int(b, "blobs_fetched_total"), 0);

    flip_byte(a, x, at); /* repaired */
    /* a holder that failed verification twice is avoided for a while: allow for it */
    assert_true(wait_arrived(b, &x, 1, 15000));
    RUN_FOR(200);
    assert_int_equal(proposed_count(b, x->digest), 1);
    assert_int_equal(b->nproposed, 1);
    assert_int_equal(status_int(b, "blobs_fetched_total"), 1);
    assert_true(status_int(a, "bytes_sent_total") >= (int64_t)(2 * x->size));
}

struct progress {
    struct region *r;
    const char *digest;
    int64_t min;
};

static bool progress_pred(void *arg)
{
    struct progress *p = arg;
    int64_t offset = 0;
    return status_active(p->r, p->digest, &offset, NULL, NULL) && offset >= p->min;
}

/* A large transfer stopped half way resumes, in a new service on the same stores, from the
 * offset it recorded: only what was not durable crosses again. */
static void test_resume(void **state)
{
    (void)state;
    world_up(2, 0);
    struct region *a = &w.r[0], *b = &w.r[1];
    const struct blob *big = blob_new(64 * MIB + 12345, 30);
    struct progress p = {b, big->digest, (int64_t)PT_BLOB_SYNC_SYNC_EVERY};

    store_blob(a, big);
    record_held(a->name, big);
    assert_true(pt_loop_run_until(&loop, progress_pred, &p, 15000));
    sync_stop(b);
    assert_false(blob_file_exists(b, big));
    assert_int_equal(b->nproposed, 0);

    /* the progress recorded: a session named after the digest, at least one sync interval in */
    void *val = NULL;
    size_t len = 0;
    struct pt_upload u;
    assert_int_equal(pt_metastore_transfer_get(b->ms, big->digest, &val, &len), 0);
    assert_int_equal(pt_upload_decode(val, len, &u), 0);
    free(val);
    assert_string_equal(u.id, big->d.hex);
    assert_true(u.offset >= PT_BLOB_SYNC_SYNC_EVERY);
    assert_true(u.offset < big->size);
    int64_t sent_first = status_int(a, "bytes_sent_total");
    assert_true(sent_first >= (int64_t)u.offset);

    sync_start(b);
    sync_link(b);
    assert_true(wait_arrived(b, &big, 1, 20000));
    assert_int_equal(proposed_count(b, big->digest), 1);
    assert_true(status_int(b, "resumed_total") >= 1);
    assert_int_equal(status_int(b, "blobs_fetched_total"), 1);
    /* the new service asked only for what was not recorded */
    assert_int_equal(status_int(b, "bytes_received_total"), (int64_t)(big->size - u.offset));
    int64_t sent = status_int(a, "bytes_sent_total");
    assert_true(sent >= (int64_t)big->size);
    assert_true(sent < (int64_t)(big->size + 2 * (uint64_t)PT_BLOB_SYNC_SYNC_EVERY + WINDOW_BYTES));
    assert_int_equal(pt_metastore_transfer_get(b->ms, big->digest, &val, &len), PT_E_NOT_FOUND);
}

struct from_watch {
    struct region *r;
    const char *digest;
    int64_t min;
    char from[16];
};

static bool from_pred(void *arg)
{
    struct from_watch *fw = arg;
    json_t *o = status(fw->r);
    json_t *active = json_object_get(o, "active");
    bool found = false;
    size_t i;
    json_t *t;
    json_array_foreach(active, i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "digest")), fw->digest) == 0 &&
            json_integer_value(json_object_get(t, "offset")) >= fw->min &&
            json_string_length(json_object_get(t, "from")) > 0) {
            snprintf(fw->from, sizeof(fw->from), "%s",
                     json_string_value(json_object_get(t, "from")));
            found = true;
        }
    }
    json_decref(o);
    return found;
}

/* Two holders; the one a transfer draws from goes away half way: the transfer goes on from the
 * other, from its own offset, and the blob arrives intact and announced once. */
static void test_holder_lost(void **state)
{
    (void)state;
    world_up(3, 0);
    struct region *a = &w.r[0], *b = &w.r[1], *c = &w.r[2];
    const struct blob *x = blob_new(32 * MIB + 3, 70);
    struct from_watch fw = {b, x->digest, 4 * (int64_t)MIB, ""};

    store_blob(a, x);
    store_blob(c, x);
    record_held(a->name, x);
    record_held(c->name, x);
    assert_true(pt_loop_run_until(&loop, from_pred, &fw, 15000));
    struct region *gone = strcmp(fw.from, "a") == 0 ? a : c;
    struct region *other = gone == a ? c : a;
    assert_string_equal(fw.from, gone->name);
    sync_stop(gone);

    assert_true(wait_arrived(b, &x, 1, 15000));
    assert_int_equal(proposed_count(b, x->digest), 1);
    assert_int_equal(b->nproposed, 1);
    /* a holder may record its own copy (it stored the blob before the other's record came:
     * that is an announcement of what it has), but it never fetches it */
    assert_true(a->nproposed + c->nproposed <= 1);
    assert_int_equal(status_int(other, "bytes_received_total"), 0);
    assert_int_equal(status_int(b, "blobs_fetched_total"), 1);
    assert_int_equal(status_int(b, "verify_failures_total"), 0);
    assert_true(status_int(b, "resumed_total") >= 1); /* it switched holders */
    assert_true(status_int(other, "bytes_sent_total") > 0);
    /* what waited, unwritten, when the holder went is all that crossed twice */
    int64_t received = status_int(b, "bytes_received_total");
    assert_true(received >= (int64_t)x->size);
    assert_true(received <= (int64_t)(x->size + WINDOW_BYTES));
}

struct unreachable_watch {
    struct region *r;
    const char *digest;
};

/* The transfer of digest waits (its holder failed) and a scan has counted the blob missing. */
static bool unreachable_pred(void *arg)
{
    struct unreachable_watch *uw = arg;
    char state[16] = "";
    return status_active(uw->r, uw->digest, NULL, NULL, state) && strcmp(state, "waiting") == 0 &&
           status_int(uw->r, "blobs_behind") == 1;
}

/* A blob whose only holder cannot be reached: the feed attaches and waits without bytes, and
 * fails when the service stops; a blob nobody holds cannot be fed. */
static void test_no_holder(void **state)
{
    (void)state;
    world_up(2, 0);
    struct region *b = &w.r[1];
    const struct blob *lost = blob_new(2 * MIB + 1, 40);
    const struct blob *nobody = blob_new(100, 41);
    struct pt_blob_feed *f = NULL, *none = NULL;
    struct unreachable_watch uw = {b, lost->digest};
    unsigned dead_port;
    char dead[64];
    int64_t offset = -1;
    bool on_demand = false;

    pt_loopback_free_ports(&dead_port, 1);
    snprintf(dead, sizeof(dead), "127.0.0.1:%u", dead_port);
    assert_int_equal(pt_blob_sync_set_region(b->sync, 9, "far", dead), 0);
    record_held("far", lost);

    assert_int_equal(pt_blob_sync_feed(b->sync, nobody->digest, nobody->size, &none),
                     PT_E_BLOB_UNKNOWN);
    assert_null(none);
    assert_int_equal(pt_blob_sync_feed(b->sync, "sha256:nope", 1, &none), PT_E_BLOB_UNKNOWN);
    assert_null(none);

    assert_int_equal(pt_blob_sync_feed(b->sync, lost->digest, lost->size, &f), 0);
    struct reader *rd = reader_start(f, lost->size);
    assert_true(
        pt_loop_run_until(&loop, unreachable_pred, &uw, 10000)); /* asked "far", failed, waits */
    RUN_FOR(200);
    assert_int_equal(rd->state, PT_FEED_RUNNING);
    assert_int_equal(rd->pos, 0);
    assert_true(rd->registered);
    assert_true(status_active(b, lost->digest, &offset, &on_demand, NULL));
    assert_int_equal(offset, 0);
    assert_true(on_demand);
    assert_int_equal(status_int(b, "bytes_received_total"), 0);
    assert_false(status_in_sync(b));
    assert_int_equal(status_int(b, "blobs_behind"), 1);
    int wakeups = rd->wakeups;

    sync_stop_begin(b);
    /* stopping: no new feeds, and the waiting one has failed */
    assert_int_equal(pt_blob_sync_feed(b->sync, lost->digest, lost->size, &none), PT_E_UNAVAILABLE);
    assert_null(none);
    assert_true(RUN_UNTIL_GE(&b->sync_stops, 1, 10000));
    assert_null(b->sync);
    assert_true(pt_loop_run_until(&loop, reader_finished_pred, rd, 2000));
    assert_int_equal(rd->wakeups, wakeups + 1); /* woken once, by the failure */
    assert_false(rd->registered);
    assert_int_equal(rd->state, PT_FEED_FAILED);
    assert_int_equal(rd->error, PT_E_UNAVAILABLE);
    assert_int_equal(rd->pos, 0);
    assert_false(blob_file_exists(b, lost));
    assert_int_equal(b->nproposed, 0);
    reader_stop(); /* the last reference, after the service is gone */
}

/* ---- Serving: raw BlobWants over a BULK channel ------------------------------------------- */

struct answer {
    int calls;
    int status;
    size_t len;
    unsigned char *body; /* copy, owned */
};

static void answer_cb(void *arg, int status, const void *body, size_t len)
{
    struct answer *an = arg;
    an->calls++;
    an->status = status;
    free(an->body);
    an->body = NULL;
    if (len > 0) {
        an->body = malloc(len);
        assert_non_null(an->body);
        memcpy(an->body, body, len);
    }
    an->len = len;
}

struct client {
    struct pt_loopback_transport net; /* not listening */
    struct pt_peers *peers;
    int peers_closed;
};

static void client_peers_closed_cb(void *arg)
{
    struct client *c = arg;
    c->peers_closed++;
}

/* Sends a BlobWant (or raw bytes when body is not NULL) from c to server `to` and waits for
 * the answer; returns its status. */
static int want(struct client *c, uint64_t to, uint32_t type, const char *digest, uint64_t offset,
                uint32_t length, const void *raw, size_t raw_len, struct answer *an)
{
    unsigned char buf[256];
    const void *body = raw;
    size_t len = raw_len;

    if (raw == NULL) {
        Portolan__BlobWant bw = PORTOLAN__BLOB_WANT__INIT;
        bw.digest = (char *)digest;
        bw.offset = offset;
        bw.length = length;
        assert_true(portolan__blob_want__get_packed_size(&bw) <= sizeof(buf));
        len = portolan__blob_want__pack(&bw, buf);
        body = buf;
    }
    int before = an->calls;
    assert_int_equal(pt_peers_request(c->peers, to, type, body, len, 5000, answer_cb, an), 0);
    assert_int_equal(an->calls, before);
    assert_true(RUN_UNTIL_GE(&an->calls, before + 1, 6000));
    return an->status;
}

/* Checks that an answers with the bytes [offset, offset + n) of b. */
static void assert_chunk(const struct answer *an, const struct blob *b, uint64_t offset, uint64_t n)
{
    Portolan__BlobChunk *bc = portolan__blob_chunk__unpack(NULL, an->len, an->body);
    assert_non_null(bc);
    assert_int_equal(bc->offset, offset);
    assert_int_equal(bc->size, b->size);
    assert_int_equal(bc->data.len, n);
    if (n > 0)
        assert_memory_equal(bc->data.data, b->data + offset, n);
    portolan__blob_chunk__free_unpacked(bc, NULL);
}

/* The serving side's checks: lengths outside 1..PT_BLOB_SYNC_CHUNK_MAX, malformed digests,
 * blobs not held, offsets past the end, undecodable bodies and other request types are
 * refused; good requests get exactly the bytes asked for (fewer at the end). */
static void test_serving_limits(void **state)
{
    (void)state;
    world_up(1, 0); /* A alone: what it sends goes to the probe only */
    struct region *a = &w.r[0];
    const struct blob *x = blob_new(5 * MIB + 7, 50);
    const struct blob *other = blob_new(10, 51);
    struct client c;
    struct answer an;
    unsigned port;
    const uint32_t WANT = PORTOLAN__PEER_TYPE__PEER_BLOB_WANT;

    memset(&c, 0, sizeof(c));
    memset(&an, 0, sizeof(an));
    store_blob(a, x);
    record_held(a->name, x);

    pt_loopback_free_ports(&port, 1);
    pt_loopback_transport_init(&c.net, &loop, CLUSTER, 7, port);
    assert_int_equal(pt_peers_init(&c.peers, &loop, &c.net.t, PT_CHANNEL_BULK, 7, NULL, NULL), 0);
    assert_int_equal(pt_peers_set_address(c.peers, a->id, a->net.address), 0);

    /* lengths */
    assert_int_equal(want(&c, a->id, WANT, x->digest, 0, 0, NULL, 0, &an), PT_E_RANGE_INVALID);
    assert_int_equal(an.len, 0);
    assert_int_equal(want(&c, a->id, WANT, x->digest, 0, PT_BLOB_SYNC_CHUNK_MAX + 1, NULL, 0, &an),
                     PT_E_RANGE_INVALID);
    assert_int_equal(want(&c, a->id, WANT, x->digest, 0, UINT32_MAX, NULL, 0, &an),
                     PT_E_RANGE_INVALID);
    /* digests */
    assert_int_equal(want(&c, a->id, WANT, "sha256:abc", 0, 10, NULL, 0, &an), PT_E_DIGEST_INVALID);
    assert_int_equal(want(&c, a->id, WANT, "", 0, 10, NULL, 0, &an), PT_E_DIGEST_INVALID);
    char upper[PT_DIGEST_STR_MAX + 1];
    snprintf(upper, sizeof(upper), "sha256:%s", x->d.hex);
    for (char *p = upper + 7; *p != '\0'; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(want(&c, a->id, WANT, upper, 0, 10, NULL, 0, &an), PT_E_DIGEST_INVALID);
    char other_algo[PT_DIGEST_STR_MAX + 1];
    snprintf(other_algo, sizeof(other_algo), "sha384:%.64s", x->d.hex);
    assert_int_equal(want(&c, a->id, WANT, other_algo, 0, 10, NULL, 0, &an), PT_E_DIGEST_INVALID);
    /* a well-formed sha512 digest of a blob not held here */
    char sha512[PT_DIGEST_STR_MAX + 1];
    snprintf(sha512, sizeof(sha512), "sha512:%.64s%.64s", x->d.hex, x->d.hex);
    assert_int_equal(want(&c, a->id, WANT, sha512, 0, 10, NULL, 0, &an), PT_E_BLOB_UNKNOWN);
    /* not held here */
    assert_int_equal(want(&c, a->id, WANT, other->digest, 0, 10, NULL, 0, &an), PT_E_BLOB_UNKNOWN);
    /* past the end */
    assert_int_equal(want(&c, a->id, WANT, x->digest, x->size + 1, 10, NULL, 0, &an),
                     PT_E_RANGE_INVALID);
    assert_int_equal(want(&c, a->id, WANT, x->digest, UINT64_MAX, 10, NULL, 0, &an),
                     PT_E_RANGE_INVALID);
    /* not a BlobWant, and not a type served on BULK channels */
    assert_int_equal(want(&c, a->id, WANT, NULL, 0, 0, "\xff\xff\xff", 3, &an), PT_E_CORRUPT);
    assert_int_equal(
        want(&c, a->id, PORTOLAN__PEER_TYPE__PEER_PROPOSE, x->digest, 0, 10, NULL, 0, &an),
        PT_E_UNSUPPORTED);
    assert_int_equal(status_int(a, "bytes_sent_total"), 0);

    /* good requests: exactly the bytes asked for */
    assert_int_equal(want(&c, a->id, WANT, x->digest, 1000, PT_BLOB_SYNC_CHUNK_MAX, NULL, 0, &an),
                     0);
    assert_chunk(&an, x, 1000, PT_BLOB_SYNC_CHUNK_MAX);
    assert_int_equal(want(&c, a->id, WANT, x->digest, 0, 1, NULL, 0, &an), 0);
    assert_chunk(&an, x, 0, 1);
    /* at the end, fewer; at the very end, none */
    assert_int_equal(want(&c, a->id, WANT, x->digest, x->size - 10, 100, NULL, 0, &an), 0);
    assert_chunk(&an, x, x->size - 10, 10);
    assert_int_equal(want(&c, a->id, WANT, x->digest, x->size, 100, NULL, 0, &an), 0);
    assert_chunk(&an, x, x->size, 0);
    assert_int_equal(status_int(a, "bytes_sent_total"), (int64_t)PT_BLOB_SYNC_CHUNK_MAX + 1 + 10);

    pt_peers_close(c.peers, client_peers_closed_cb, &c);
    assert_true(RUN_UNTIL_GE(&c.peers_closed, 1, 5000));
    pt_loopback_transport_close(&c.net, &loop, 5000);
    free(an.body);
}

/*
 * Stopping while a BlobStored proposal is pending: the stop completes once, after the
 * proposal was answered, and the blob (stored and recorded) needs nothing more from the next
 * service on the same stores.
 * The proposal is the last thing pending when it is answered, so the service must not end
 * under on_announced (ASan checks).
 */
static void test_stop_while_announcing(void **state)
{
    (void)state;
    world_up(2, 0);
    struct region *b = &w.r[1];
    const struct blob *y = blob_new(64 * 1024 + 9, 60);

    b->commit_delay_ms = 1000; /* answered well after the tick and the channels closed */
    store_blob(&w.r[0], y);
    record_held(w.r[0].name, y);
    assert_true(RUN_UNTIL_GE(&b->nproposed, 1, 5000));
    assert_int_equal(w.proposals_pending, 1);
    assert_true(holds(b, y));

    sync_stop_begin(b);
    RUN_FOR(100);
    assert_int_equal(b->sync_stops, 0); /* the proposal still holds the service */
    assert_non_null(b->sync);
    assert_true(RUN_UNTIL_GE(&b->sync_stops, 1, 5000));
    assert_int_equal(w.proposals_pending, 0);
    RUN_FOR(100);
    assert_int_equal(b->sync_stops, 1);

    /* the commit recorded b as a holder: the next service has nothing to do */
    b->commit_delay_ms = 0;
    sync_start(b);
    sync_link(b);
    RUN_FOR(400);
    assert_true(status_in_sync(b));
    assert_int_equal(b->nproposed, 1);
    assert_int_equal(status_int(b, "blobs_fetched_total"), 0);
}

/*
 * Transfer session names (blob_sync_session.c): a sha256 blob's is its hex, a sha512 blob's
 * "512-" and 60 of its hex, both within PT_UPLOAD_ID_MAX; the start-up sweep finds either
 * from the transfer record, and nothing else.
 */
static void test_session_names(void **state)
{
    (void)state;
    struct region *a = region_add("a", 1, 47001);
    struct pt_digest d256, d512;
    char id256[PT_UPLOAD_ID_MAX + 1], id512[PT_UPLOAD_ID_MAX + 1];
    char s256[PT_DIGEST_STR_MAX + 1], s512[PT_DIGEST_STR_MAX + 1];
    unsigned char rec[1024];
    struct pt_upload u;

    pt_digest_of("x", 1, &d256);
    pt_digest_of_algo("x", 1, PT_DIGEST_SHA512, &d512);
    pt_digest_format(&d256, s256);
    pt_digest_format(&d512, s512);
    pt_blob_sync_session_id(&d256, id256);
    pt_blob_sync_session_id(&d512, id512);
    assert_string_equal(id256, d256.hex);
    assert_int_equal(strlen(id512), PT_UPLOAD_ID_MAX);
    assert_memory_equal(id512, "512-", 4);
    assert_memory_equal(id512 + 4, d512.hex, 60);

    /* no records yet: neither session is live */
    assert_int_equal(pt_blob_sync_session_live(a->ms, id256), 0);
    assert_int_equal(pt_blob_sync_session_live(a->ms, id512), 0);
    assert_true(pt_upload_encoded_size() <= sizeof(rec));
    const struct {
        const char *digest, *id;
    } both[] = {{s256, id256}, {s512, id512}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pt_blobstore_upload_begin_id(a->bs, "@transfer", both[i].id, 1, &u), 0);
        pt_upload_encode(&u, rec);
        assert_int_equal(
            pt_metastore_transfer_put(a->ms, both[i].digest, rec, pt_upload_encoded_size()), 0);
        assert_int_equal(pt_blob_sync_session_live(a->ms, both[i].id), 1);
    }
    /* a session id of that form whose digest has no transfer, and other ids */
    char other[PT_UPLOAD_ID_MAX + 1];
    snprintf(other, sizeof(other), "512-%.60s", d256.hex);
    assert_int_equal(pt_blob_sync_session_live(a->ms, other), 0);
    assert_int_equal(pt_blob_sync_session_live(a->ms, "1-0f0e0d0c-0b0a-4909-8807-060504030201"), 0);
    assert_int_equal(pt_metastore_transfer_delete(a->ms, s512), 0);
    assert_int_equal(pt_blob_sync_session_live(a->ms, id512), 0);
    assert_int_equal(pt_blob_sync_session_live(a->ms, id256), 1);
}

/*
 * Encoding a BlobWant into the fixed buffer a transfer asks with (bsync_encode_want): the
 * largest one a digest allows (sha512) fits and reads back; one that would not fit (a digest
 * far longer than any valid one) is refused with PT_E_TOO_LARGE and leaves the buffer
 * untouched, where packing it blindly would write past the end (ASan checks: the buffer is
 * exactly WANT_BUF bytes on the heap).
 */
static void test_want_encoding(void **state)
{
    (void)state;
    unsigned char *buf = malloc(WANT_BUF);
    char digest[PT_DIGEST_STR_MAX + 1], *long_digest = malloc(4096);
    size_t len = 0;

    assert_non_null(buf);
    assert_non_null(long_digest);
    snprintf(digest, sizeof(digest), "sha512:%0128d", 7);
    assert_int_equal(strlen(digest), PT_DIGEST_STR_MAX);
    assert_int_equal(
        bsync_encode_want(digest, UINT64_MAX, PT_BLOB_SYNC_CHUNK_MAX, buf, WANT_BUF, &len), 0);
    assert_true(len > 0 && len <= WANT_BUF);
    Portolan__BlobWant *bw = portolan__blob_want__unpack(NULL, len, buf);
    assert_non_null(bw);
    assert_string_equal(bw->digest, digest);
    assert_true(bw->offset == UINT64_MAX);
    assert_int_equal(bw->length, PT_BLOB_SYNC_CHUNK_MAX);
    portolan__blob_want__free_unpacked(bw, NULL);

    /* the same with a 4 KiB digest: refused, nothing written */
    memset(long_digest, 'a', 4095);
    long_digest[4095] = '\0';
    memset(buf, 0x5a, WANT_BUF);
    len = 12345;
    assert_int_equal(bsync_encode_want(long_digest, 0, PT_BLOB_SYNC_CHUNK, buf, WANT_BUF, &len),
                     PT_E_TOO_LARGE);
    assert_int_equal(len, 12345);
    for (size_t i = 0; i < WANT_BUF; i++)
        assert_int_equal(buf[i], 0x5a);
    /* and one byte short of what even a valid want needs */
    assert_int_equal(bsync_encode_want(digest, 0, 1, buf, PT_DIGEST_STR_MAX, &len), PT_E_TOO_LARGE);
    free(long_digest);
    free(buf);
}

int main(void)
{
    /* as the node does (server.c): a peer that went away must not kill the process */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_background, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_holder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_holder_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_holder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serving_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_while_announcing, setup, teardown),
        cmocka_unit_test(test_want_encoding),
        cmocka_unit_test_setup_teardown(test_session_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
