/*
 * blob_world.h - a world of regions for the tests of blob replication between regions
 * (replication/blob_sync.c), over real transports on loopback, in one process with one libuv
 * loop.
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
 * Design: one world at a time, pt_world, set up and torn down by the cmocka fixtures below
 * around each test; the test's uv_loop_t is the fixture's state (cmocka's prestate) and the
 * world runs everything on it. Teardown stops every service, closes every handle (and fails
 * the test unless uv_loop_close() == 0), winds the feed reader down (feed_reader.h) and
 * removes the world's directory.
 *
 * Invariants: functions run on the loop's thread, outside its callbacks (those that wait run
 * the loop, see loop.h). Failures are cmocka assertions. Waits are bounded and wait for
 * conditions, not for fixed times.
 */
#ifndef PT_TEST_BLOB_WORLD_H
#define PT_TEST_BLOB_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "blob_sync.h"
#include "blobstore.h"
#include "digest.h"
#include "loopback.h"
#include "metastore.h"

#define PT_WORLD_CLUSTER      "blob-sync-test"
#define PT_WORLD_REGIONS_MAX  3
#define PT_WORLD_BLOBS_MAX    16
#define PT_WORLD_PROPOSED_MAX 32

/* A blob the test made; owned by the world. */
struct pt_world_blob {
    char digest[PT_DIGEST_STR_MAX + 1];
    struct pt_digest d;
    uint64_t size;
    unsigned char *data; /* owned */
};

/* A region; lives in pt_world.r. */
struct pt_world_region {
    uint64_t id;
    char name[16];
    char root[300];
    struct pt_loopback_transport net; /* listening; raft connections are dropped */
    struct pt_blobstore *bs;
    struct pt_metastore *ms;
    struct pt_blob_sync *sync; /* NULL while no service runs */
    unsigned concurrency;
    unsigned commit_delay_ms; /* how long its proposals take to commit (0: the next iteration) */
    int sync_stops;           /* stop callbacks received, over every service this region ran */
    /* BlobStored commands this region proposed, by digest */
    char proposed[PT_WORLD_PROPOSED_MAX][PT_DIGEST_STR_MAX + 1];
    int nproposed;
};

struct pt_world {
    uv_loop_t *loop; /* the test's, from pt_world_setup */
    char dir[256];
    struct pt_world_region r[PT_WORLD_REGIONS_MAX];
    int n;
    uint64_t index; /* last log index applied to every metastore */
    int proposals_pending;
    struct pt_world_blob *blobs[PT_WORLD_BLOBS_MAX]; /* owned */
    int nblobs;
    bool in_stop; /* inside pt_blob_sync_stop */
};

/* The world of the running test. */
extern struct pt_world pt_world;

/* A blob of size pseudo-random bytes drawn from seed, owned by the world. */
struct pt_world_blob *pt_world_blob_new(uint64_t size, uint32_t seed);

/* How many BlobStored commands r proposed for digest (borrowed). */
int pt_world_proposed_count(const struct pt_world_region *r, const char *digest);

/* Writes the path of blob b in r's store (blobs/sha256/<xx>/<hex>) into out (size bytes). */
void pt_world_blob_path(const struct pt_world_region *r, const struct pt_world_blob *b, char *out,
                        size_t size);

/* Whether b's file exists in r's store, whatever it holds. */
bool pt_world_blob_file_exists(const struct pt_world_region *r, const struct pt_world_blob *b);

/* Whether r's store holds b: stat agrees on the size, and the file's bytes are b's and hash
 * to its digest (fails the test when a file is there with other bytes). */
bool pt_world_holds(struct pt_world_region *r, const struct pt_world_blob *b);

/* Records that region `holder` (a name; it need not be a region of the test) holds b, as the
 * upload that stored it there would have: LinkBlob + BlobStored in one command. */
void pt_world_record_held(const char *holder, const struct pt_world_blob *b);

/* A client upload of b into r's store, in slices of at most 4 MiB. */
void pt_world_store_blob(struct pt_world_region *r, const struct pt_world_blob *b);

/* Adds region `name` with raft id id: its stores, and its transport listening on port. */
struct pt_world_region *pt_world_region_add(const char *name, uint64_t id, unsigned port);

/* Starts r's service (r->sync must be NULL). */
void pt_world_sync_start(struct pt_world_region *r);

/* Tells r's service about every other region of the world (and its own id, ignored). */
void pt_world_sync_link(struct pt_world_region *r);

/* Asks r's service to stop; returns at once (r->sync stays valid until the callback). */
void pt_world_sync_stop_begin(struct pt_world_region *r);

/* Stops r's service and waits until its stop callback came, once. */
void pt_world_sync_stop(struct pt_world_region *r);

/* n regions "a", "b", "c" with ids 1..n, every service started and linked to the others. */
void pt_world_up(int n, unsigned concurrency);

/* cmocka fixtures: *state is the test's uv_loop_t (caller-owned). Setup clears the world,
 * makes its directory and initialises the loop; teardown stops every service, closes every
 * transport and store, checks that no handle is left, frees the blobs and removes the
 * directory. */
int pt_world_setup(void **state);
int pt_world_teardown(void **state);

#endif
