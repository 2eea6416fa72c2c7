/*
 * blob_world_status.h - reading the status of a region's blob sync service (the JSON of
 * pt_blob_sync_status_json) in the tests of blob_world.h, and waiting until blobs have arrived
 * in a region: stored, announced, the announcement applied, and the status in sync.
 *
 * Invariants: the region's service runs (r->sync is not NULL); a status that is not a JSON
 * object, or lacks what is asked for, fails the test.
 */
#ifndef PT_TEST_BLOB_WORLD_STATUS_H
#define PT_TEST_BLOB_WORLD_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "blob_world.h"

/* r's status, parsed; returned owned (json_decref it). */
json_t *pt_world_status(struct pt_world_region *r);

/* The integer key (borrowed) of r's status. */
int64_t pt_world_status_int(struct pt_world_region *r, const char *key);

/* The status's in_sync. */
bool pt_world_status_in_sync(struct pt_world_region *r);

/* The active transfer of digest in r's status: *offset, *on_demand and its state (copied into
 * state, 16 bytes); each may be NULL. False if none. */
bool pt_world_status_active(struct pt_world_region *r, const char *digest, int64_t *offset,
                            bool *on_demand, char *state);

/* Waits up to ms for every blob of b (n, borrowed) to be stored in r, announced, the
 * announcement applied, and r's status in sync; then checks every stored file byte for byte.
 * False if that did not happen in time. */
bool pt_world_wait_arrived(struct pt_world_region *r, const struct pt_world_blob *const *b, int n,
                           unsigned ms);

#endif
