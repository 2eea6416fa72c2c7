/*
 * ff_fixture.h - the fixture of the FSM tests (pt_ff_: FSM fixture): two metastores in a
 * temporary directory, the second standing for another region, and the commands the tests
 * build and apply to them.
 *
 * Design: commands are built with the command builder, encoded and applied through pt_fsm_apply
 * as the committer would; pt_ff_apply feeds the first store at consecutive indices and checks
 * that its applied index follows. Timestamps are PT_FF_T0 plus whatever the test adds: nothing
 * here reads a clock.
 */
#ifndef PT_TEST_FF_FIXTURE_H
#define PT_TEST_FF_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "command.h"
#include "metastore.h"

#define PT_FF_MT_OCI "application/vnd.oci.image.manifest.v1+json"
#define PT_FF_MT_IDX "application/vnd.oci.image.index.v1+json"
#define PT_FF_T0     1700000000000LL

struct pt_ff_fixture {
    char dir[256];
    char db[2][300];
    struct pt_metastore *ms[2];
    uint64_t index; /* last index applied to ms[0] by pt_ff_apply() */
};

/* cmocka setup and teardown: *state becomes a struct pt_ff_fixture (owned by the fixture). */
int pt_ff_setup(void **state);
int pt_ff_teardown(void **state);

/* Initialises b (the caller's) for a command from region us-east at time_ms. */
void pt_ff_builder(struct pt_command_builder *b, int64_t time_ms);

/* Encodes and frees b, applies it to ms (borrowed) at index; returns the command status. */
int pt_ff_apply_to(struct pt_metastore *ms, struct pt_command_builder *b, uint64_t index);

/* Applies b (freed) to the first store at the next index; checks the index advanced. */
int pt_ff_apply(struct pt_ff_fixture *f, struct pt_command_builder *b);

/* Adds a put-manifest of body (its digest computed) to b: an index when n_children > 0, else an
 * image; tagged tag when not NULL; with a subject, an artifact type and annotations when subject
 * is not NULL. Every pointer is borrowed. */
void pt_ff_add_manifest(struct pt_command_builder *b, const char *repo, const char *body,
                        const char *tag, const char *subject, const char *const *blobs,
                        size_t n_blobs, const char *const *children, size_t n_children);

/* The state digest of ms (borrowed), into hex. */
void pt_ff_digest_state(struct pt_metastore *ms, char hex[65]);

#endif
