/*
 * blob_world.c - regions, blobs, the fake raft log and the fixture of the blob sync tests (see
 * blob_world.h). Failures are cmocka assertions: these run inside tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob_world.h"
#include "command.h"
#include "feed_reader.h"
#include "fsm.h"
#include "loop.h"
#include "peer.pb-c.h"
#include "units.h"

#define REPO "library/app"
#define T0   1700000000000LL

struct pt_world pt_world;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ---- Blobs -------------------------------------------------------------------------------- */

struct pt_world_blob *pt_world_blob_new(uint64_t size, uint32_t seed)
{
    struct pt_world_blob *b = calloc(1, sizeof(*b));
    uint32_t x = seed * 2654435761u + 1;

    assert_non_null(b);
    assert_true(pt_world.nblobs < PT_WORLD_BLOBS_MAX);
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
    pt_world.blobs[pt_world.nblobs++] = b;
    return b;
}

static const struct pt_world_blob *blob_find(const char *digest)
{
    for (int i = 0; i < pt_world.nblobs; i++)
        if (strcmp(pt_world.blobs[i]->digest, digest) == 0)
            return pt_world.blobs[i];
    return NULL;
}

int pt_world_proposed_count(const struct pt_world_region *r, const char *digest)
{
    int n = 0;
    for (int i = 0; i < r->nproposed; i++)
        n += strcmp(r->proposed[i], digest) == 0;
    return n;
}

/* Path of blob b in r's store (blobs/sha256/<xx>/<hex>). */
void pt_world_blob_path(const struct pt_world_region *r, const struct pt_world_blob *b, char *out,
                        size_t size)
{
    int n = snprintf(out, size, "%s/store/blobs/sha256/%.2s/%s", r->root, b->d.hex, b->d.hex);
    assert_true(n > 0 && (size_t)n < size);
}

bool pt_world_blob_file_exists(const struct pt_world_region *r, const struct pt_world_blob *b)
{
    char path[512];
    pt_world_blob_path(r, b, path, sizeof(path));
    return access(path, F_OK) == 0;
}

/* Whether r's store holds b: stat agrees on the size, and the file's bytes are b's and hash
 * to its digest. */
bool pt_world_holds(struct pt_world_region *r, const struct pt_world_blob *b)
{
    uint64_t size = 0;
    if (pt_blobstore_stat(r->bs, &b->d, &size) != 0)
        return false;
    assert_int_equal(size, b->size);

    char path[512];
    pt_world_blob_path(r, b, path, sizeof(path));
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
    pt_world.index++;
    for (int i = 0; i < pt_world.n; i++) {
        struct pt_fsm_result res;
        if (pt_world.r[i].ms == NULL)
            continue;
        assert_int_equal(pt_fsm_apply(pt_world.r[i].ms, buf, len, pt_world.index, &res), 0);
        assert_int_equal(res.status, 0);
    }
    for (int i = 0; i < pt_world.n; i++)
        if (pt_world.r[i].sync != NULL)
            pt_blob_sync_changed(pt_world.r[i].sync);
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
    pt_world.proposals_pending--;
}

/* A later loop iteration: the entry commits everywhere, then its proposer hears of it. */
static void proposal_commit_cb(uv_timer_t *tm)
{
    struct proposal *p = tm->data;
    apply_all(p->buf, p->len);
    free(p->buf);
    p->buf = NULL;
    p->done(p->arg, 0, pt_world.index);
    uv_close((uv_handle_t *)&p->timer, proposal_closed_cb);
}

static void propose_fn(void *propose_arg, void *buf, size_t len, pt_blob_sync_done_cb done,
                       void *arg)
{
    struct pt_world_region *r = propose_arg;
    Portolan__Command *c = NULL;

    assert_non_null(done);
    assert_int_equal(pt_command_decode(buf, len, &c), 0);
    assert_int_equal(c->version, PT_COMMAND_VERSION);
    assert_string_equal(c->region, r->name);
    assert_int_equal(c->n_ops, 1);
    assert_int_equal(c->ops[0]->op_case, PORTOLAN__OP__OP_BLOB_STORED);
    const Portolan__BlobStored *bs = c->ops[0]->blob_stored;
    assert_string_equal(bs->region, r->name);
    const struct pt_world_blob *b = blob_find(bs->digest);
    if (b == NULL)
        fail_msg("%s proposed BlobStored of an unknown blob %s", r->name, bs->digest);
    assert_int_equal(bs->size, b->size);
    assert_true(r->nproposed < PT_WORLD_PROPOSED_MAX);
    snprintf(r->proposed[r->nproposed++], PT_DIGEST_STR_MAX + 1, "%s", bs->digest);
    pt_command_decoded_free(c);

    struct proposal *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->buf = buf;
    p->len = len;
    p->done = done;
    p->arg = arg;
    p->timer.data = p;
    pt_world.proposals_pending++;
    assert_int_equal(uv_timer_init(pt_world.loop, &p->timer), 0);
    assert_int_equal(uv_timer_start(&p->timer, proposal_commit_cb, r->commit_delay_ms, 0), 0);
}

/* Records that region `holder` (a name; it need not be a region of the test) holds b, as the
 * upload that stored it there would have: LinkBlob + BlobStored in one command. */
void pt_world_record_held(const char *holder, const struct pt_world_blob *b)
{
    struct pt_command_builder cb;
    void *buf = NULL;
    size_t len = 0;

    assert_int_equal(pt_command_builder_init(&cb, T0 + (int64_t)pt_world.index, holder), 0);
    assert_int_equal(pt_command_add_link_blob(&cb, REPO, b->digest, b->size), 0);
    assert_int_equal(pt_command_add_blob_stored(&cb, b->digest, b->size, holder), 0);
    assert_int_equal(pt_command_builder_encode(&cb, &buf, &len), 0);
    pt_command_builder_free(&cb);
    apply_all(buf, len);
    free(buf);
}

/* A client upload of b into r's store, in slices of at most 4 MiB. */
void pt_world_store_blob(struct pt_world_region *r, const struct pt_world_blob *b)
{
    struct pt_upload u;
    assert_int_equal(pt_blobstore_upload_begin(r->bs, REPO, T0, &u), 0);
    for (uint64_t off = 0; off < b->size;) {
        size_t n = b->size - off < 4 * PT_MIB ? (size_t)(b->size - off) : 4 * PT_MIB;
        assert_int_equal(pt_blobstore_upload_append(r->bs, &u, b->data + off, n), 0);
        off += n;
    }
    assert_int_equal(pt_blobstore_upload_commit(r->bs, &u, &b->d), 0);
    assert_true(pt_world_holds(r, b));
}

/* ---- Region life cycle -------------------------------------------------------------------- */

/* Adds region `name` with raft id id: its stores, and its transport listening on port. */
struct pt_world_region *pt_world_region_add(const char *name, uint64_t id, unsigned port)
{
    char path[400];

    assert_true(pt_world.n < PT_WORLD_REGIONS_MAX);
    struct pt_world_region *r = &pt_world.r[pt_world.n++];
    memset(r, 0, sizeof(*r));
    r->id = id;
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(path, sizeof(path), "%s/%s", pt_world.dir, name); /* r lives inside w: not in place */
    assert_true(strlen(path) < sizeof(r->root));
    memcpy(r->root, path, strlen(path) + 1);
    assert_int_equal(mkdir(r->root, 0755), 0);
    snprintf(path, sizeof(path), "%s/store", r->root);
    assert_int_equal(pt_blobstore_open(path, &r->bs), 0);
    snprintf(path, sizeof(path), "%s/meta", r->root);
    assert_int_equal(pt_metastore_open(path, &r->ms), 0);
    assert_int_equal(pt_metastore_missing_index(r->ms, name), 0);
    pt_loopback_transport_init(&r->net, pt_world.loop, PT_WORLD_CLUSTER, id, port);
    pt_loopback_transport_listen(&r->net);
    return r;
}

/* Starts r's service and tells it about every other region of the test. */
void pt_world_sync_start(struct pt_world_region *r)
{
    struct pt_blob_sync_config cfg;

    assert_null(r->sync);
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.region, sizeof(cfg.region), "%s", r->name);
    cfg.self_id = r->id;
    cfg.concurrency = r->concurrency;
    assert_int_equal(
        pt_blob_sync_start(pt_world.loop, &r->net.t, r->ms, r->bs, &cfg, propose_fn, r, &r->sync),
        0);
}

void pt_world_sync_link(struct pt_world_region *r)
{
    for (int i = 0; i < pt_world.n; i++) {
        if (&pt_world.r[i] == r)
            continue;
        assert_int_equal(pt_blob_sync_set_region(r->sync, pt_world.r[i].id, pt_world.r[i].name,
                                                 pt_world.r[i].net.address),
                         0);
    }
    /* its own id is ignored */
    assert_int_equal(pt_blob_sync_set_region(r->sync, r->id, r->name, r->net.address), 0);
}

static void sync_stopped_cb(void *arg)
{
    struct pt_world_region *r = arg;
    assert_false(pt_world.in_stop); /* never from inside pt_blob_sync_stop */
    r->sync_stops++;
    r->sync = NULL;
}

/* Asks r's service to stop; returns at once (r->sync stays valid until the callback). */
void pt_world_sync_stop_begin(struct pt_world_region *r)
{
    pt_world.in_stop = true;
    pt_blob_sync_stop(r->sync, sync_stopped_cb, r);
    pt_world.in_stop = false;
}

void pt_world_sync_stop(struct pt_world_region *r)
{
    int before = r->sync_stops;
    pt_world_sync_stop_begin(r);
    assert_true(PT_LOOP_RUN_UNTIL_GE(pt_world.loop, &r->sync_stops, before + 1, 10000));
    assert_int_equal(r->sync_stops, before + 1);
    assert_null(r->sync);
}

/* n regions "a", "b", "c" with ids 1..n, every service started and linked to the others. */
void pt_world_up(int n, unsigned concurrency)
{
    static const char *const names[] = {"a", "b", "c"};
    unsigned ports[PT_WORLD_REGIONS_MAX];

    pt_loopback_free_ports(ports, n);
    for (int i = 0; i < n; i++)
        pt_world_region_add(names[i], (uint64_t)i + 1, ports[i])->concurrency = concurrency;
    for (int i = 0; i < n; i++)
        pt_world_sync_start(&pt_world.r[i]);
    for (int i = 0; i < n; i++)
        pt_world_sync_link(&pt_world.r[i]);
}

/* ---- Fixture ------------------------------------------------------------------------------ */

int pt_world_setup(void **state)
{
    memset(&pt_world, 0, sizeof(pt_world));
    pt_world.loop = *state;
    pt_feed_reader_reset();
    const char *tmp = getenv("TMPDIR");
    snprintf(pt_world.dir, sizeof(pt_world.dir), "%s/pt_blob_sync_XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(pt_world.dir) == NULL)
        return -1;
    return uv_loop_init(pt_world.loop);
}

/* Stops every service, closes every transport and store, and checks that no handle is left. */
int pt_world_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < pt_world.n; i++)
        if (pt_world.r[i].sync != NULL)
            pt_world_sync_stop(&pt_world.r[i]);
    assert_int_equal(pt_world.proposals_pending, 0);
    pt_feed_reader_stop();
    for (int i = 0; i < pt_world.n; i++) {
        struct pt_world_region *r = &pt_world.r[i];
        if (r->net.open)
            pt_loopback_transport_close(&r->net, pt_world.loop, 5000);
        pt_metastore_close(r->ms);
        pt_blobstore_close(r->bs);
    }
    uv_run(pt_world.loop, UV_RUN_NOWAIT);
    /* 0 only if every handle the test and the services opened was closed */
    assert_int_equal(uv_loop_close(pt_world.loop), 0);
    for (int i = 0; i < pt_world.nblobs; i++) {
        free(pt_world.blobs[i]->data);
        free(pt_world.blobs[i]);
    }
    nftw(pt_world.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
