/*
 * workload.h - the stream of commands the replication tests apply, and what it leaves in a
 * metastore.
 *
 * The k-th command pushes a manifest over a new layer into one of three repositories and moves
 * two of its tags; later commands overwrite tags of earlier ones and every fifth manifest refers
 * to an earlier one, so the state a store ends in depends on which commands it applied and in
 * which order. Tests compare stores by their state digest: applying commands 1..n-1 directly
 * (pt_workload_push) gives the state any replica that applied them through raft must reach.
 *
 * Invariant: the commands are a pure function of k (timestamps are PT_WORKLOAD_T0 + k), so the
 * same k always builds the same bytes.
 */
#ifndef PT_TEST_WORKLOAD_H
#define PT_TEST_WORKLOAD_H

#include <stdint.h>

#include "command.h"
#include "metastore.h"

#define PT_WORKLOAD_MT_OCI "application/vnd.oci.image.manifest.v1+json"
#define PT_WORKLOAD_T0     1700000000000LL

/* The body of the k-th workload manifest, into body. */
void pt_workload_body(unsigned k, char body[64]);

/* Initialises b (owned by the caller, freed with pt_command_builder_free) with the k-th
 * command of the workload. */
void pt_workload_push_cmd(struct pt_command_builder *b, unsigned k);

/* Initialises b with a command that points tag at a manifest no repository holds: its
 * precondition fails. */
void pt_workload_bad_tag_cmd(struct pt_command_builder *b, const char *tag);

/* Applies b (freed) to ms (borrowed) directly at index; returns the command's status. */
int pt_workload_apply(struct pt_metastore *ms, struct pt_command_builder *b, uint64_t index);

/* Applies workload commands first..last-1 to ms (borrowed) at indices first..last-1. */
void pt_workload_push(struct pt_metastore *ms, unsigned first, unsigned last);

/* The state digest of ms (borrowed), into hex. */
void pt_workload_state(struct pt_metastore *ms, char hex[65]);

/* Asserts that ms (borrowed) still has state digest hex and applied index index. */
void pt_workload_assert_unchanged(struct pt_metastore *ms, const char *hex, uint64_t index);

#endif
