/*
 * fsm_auth.h - the FSM's access control operations (private to fsm.c and fsm_auth.c).
 *
 * Threads and ordering are fsm.c's: one apply thread stages into one batch.
 */
#ifndef PT_FSM_AUTH_H
#define PT_FSM_AUTH_H

#include "command.h"
#include "metastore.h"

/* 1 if op is one of the access control operations (PutUser .. RevokeJwt). */
int pt_fsm_auth_op(const Portolan__Op *op);

/* Validates op (borrowed) and stages it into b; c gives the time and region. 0, a
 * deterministic precondition failure (PT_E_CONFIG for a malformed field, PT_E_CONFLICT,
 * PT_E_NOT_FOUND), or an I/O error of the store. */
int pt_fsm_apply_auth(struct pt_metastore_batch *b, const Portolan__Command *c,
                      const Portolan__Op *op);

#endif
