/*
 * blob_world_status.c - a region's blob sync status, read from its JSON, and the wait for
 * blobs to arrive (see blob_world_status.h). Failures are cmocka assertions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob_world_status.h"
#include "loop.h"

json_t *pt_world_status(struct pt_world_region *r)
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

int64_t pt_world_status_int(struct pt_world_region *r, const char *key)
{
    json_t *o = pt_world_status(r);
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("status of %s has no integer %s", r->name, key);
    int64_t n = json_integer_value(v);
    json_decref(o);
    return n;
}

bool pt_world_status_in_sync(struct pt_world_region *r)
{
    json_t *o = pt_world_status(r);
    json_t *v = json_object_get(o, "in_sync");
    assert_true(json_is_boolean(v));
    bool in_sync = json_is_true(v);
    json_decref(o);
    return in_sync;
}

/* The active transfer of digest in r's status: *offset, *on_demand and its state (copied into
 * state, 16 bytes); false if none. */
bool pt_world_status_active(struct pt_world_region *r, const char *digest, int64_t *offset,
                            bool *on_demand, char *state)
{
    json_t *o = pt_world_status(r);
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
    struct pt_world_region *r;
    const struct pt_world_blob *const *b;
    int n;
};

/* Every blob is stored in r, announced, the announcement applied, and r's status in sync. */
static bool arrived_pred(void *arg)
{
    struct arrived *a = arg;
    for (int i = 0; i < a->n; i++) {
        uint64_t size;
        if (pt_world_proposed_count(a->r, a->b[i]->digest) < 1 ||
            pt_blobstore_stat(a->r->bs, &a->b[i]->d, &size) != 0)
            return false;
    }
    return pt_world.proposals_pending == 0 && pt_world_status_in_sync(a->r);
}

/* Waits for arrived_pred, then checks every stored file byte for byte. */
bool pt_world_wait_arrived(struct pt_world_region *r, const struct pt_world_blob *const *b, int n,
                           unsigned ms)
{
    struct arrived a = {r, b, n};
    if (!pt_loop_run_until(pt_world.loop, arrived_pred, &a, ms))
        return false;
    for (int i = 0; i < n; i++)
        assert_true(pt_world_holds(r, b[i]));
    return true;
}
