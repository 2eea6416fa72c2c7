/*
 * fsm_quota.h - the FSM's storage quota and throttling operations (private to fsm.c and
 * fsm_quota.c).
 *
 * Threads and ordering are fsm.c's: one apply thread stages into one batch.
 */
#ifndef PT_FSM_QUOTA_H
#define PT_FSM_QUOTA_H

#include "command.h"
#include "metastore.h"

/* Validates op (borrowed: PutQuota .. DeleteThrottle) and stages it into b. 0, PT_E_CONFIG
 * for a malformed field, PT_E_TOO_LARGE for a new record past its bound, or an I/O error. */
int pt_fsm_apply_quota(struct pt_metastore_batch *b, const Portolan__Op *op);

/* The quota check of adding digests[0..n) to repo (sizes NULL: each one's link size) as of
 * b: 0 or PT_E_QUOTA_EXCEEDED (metastore_quota.c has the rule). */
int pt_fsm_quota_admit(struct pt_metastore_batch *b, const char *repo, const char *const *digests,
                       const uint64_t *sizes, size_t n);

#endif
