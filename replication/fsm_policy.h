/*
 * fsm_policy.h - the FSM's repository locks, immutable tag rules and retention (private to
 * fsm.c and fsm_policy.c).
 *
 * Threads and ordering are fsm.c's: one apply thread stages into one batch.
 */
#ifndef PT_FSM_POLICY_H
#define PT_FSM_POLICY_H

#include "command.h"
#include "fsm.h"
#include "metastore.h"

/* Validates op (borrowed: PutLock .. Retain) and stages it into b; c gives the time. 0, a
 * deterministic precondition failure (PT_E_CONFIG for a malformed field, PT_E_TOO_LARGE past a
 * record bound), or an I/O error of the store. A Retain counts what it deleted in result. */
int pt_fsm_apply_policy(struct pt_metastore_batch *b, const Portolan__Command *c,
                        const Portolan__Op *op, struct pt_fsm_result *result);

/* The checks fsm.c makes before the writes they guard (metastore_policy.c has the rules):
 * 0, PT_E_LOCKED, PT_E_IMMUTABLE or an I/O error. Strings borrowed. */
int pt_fsm_policy_put_manifest(struct pt_metastore_batch *b, const Portolan__PutManifest *m);
int pt_fsm_policy_put_tag(struct pt_metastore_batch *b, const char *repo, const char *tag,
                          const char *digest);
int pt_fsm_policy_delete_tag(struct pt_metastore_batch *b, const char *repo, const char *tag);
int pt_fsm_policy_delete_manifest(struct pt_metastore_batch *b, const char *repo,
                                  const char *digest);
int pt_fsm_policy_unlink_blob(struct pt_metastore_batch *b, const char *repo);

#endif
