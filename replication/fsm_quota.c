/*
 * fsm_quota.c - applies the storage quota and throttling operations of a command
 * (proto/command.proto: PutQuota .. DeleteThrottle), and the quota check LinkBlob and
 * PutManifest make before they stage anything.
 *
 * Every field is validated before anything is staged (the pattern grammar of oci/access.h or
 * "*", the subject grammar of metastore_throttle.c, the tier), so a malformed command fails
 * the same way in every region with PT_E_CONFIG. Every operation is idempotent: putting the
 * same record again or deleting an absent one leaves the same state.
 *
 * The check runs in the FSM, through the command's batch, so it is linearizable with the
 * write it guards: two uploads racing for the last bytes of a quota are decided by their
 * order in the log, the same in every region. A limit of 0 refuses every new blob; a quota
 * lowered below the current usage refuses additions, never removes anything.
 */
#include "fsm_quota.h"

#include <string.h>

#include "err.h"

int pt_fsm_apply_quota(struct pt_metastore_batch *b, const Portolan__Op *op)
{
    switch (op->op_case) {
    case PORTOLAN__OP__OP_PUT_QUOTA:
        return pt_metastore_batch_quota_put(b, op->put_quota->pattern, op->put_quota->limit_bytes);
    case PORTOLAN__OP__OP_DELETE_QUOTA:
        return pt_metastore_batch_quota_delete(b, op->delete_quota->pattern);
    case PORTOLAN__OP__OP_PUT_THROTTLE: {
        const Portolan__PutThrottle *t = op->put_throttle;
        struct pt_throttle_rec r;
        memset(&r, 0, sizeof(r));
        size_t n = strnlen(t->subject, sizeof(r.subject));
        if (n == sizeof(r.subject) || t->tier >= PT_THROTTLE_TIER_COUNT)
            return PT_E_CONFIG;
        memcpy(r.subject, t->subject, n + 1);
        r.tier = t->tier;
        r.reads_per_minute = t->reads_per_minute;
        r.writes_per_minute = t->writes_per_minute;
        r.read_bytes_per_second = t->read_bytes_per_second;
        r.write_bytes_per_second = t->write_bytes_per_second;
        return pt_metastore_batch_throttle_put(b, &r);
    }
    case PORTOLAN__OP__OP_DELETE_THROTTLE:
        return pt_metastore_batch_throttle_delete(b, op->delete_throttle->subject);
    default:
        return PT_E_CORRUPT;
    }
}

int pt_fsm_quota_admit(struct pt_metastore_batch *b, const char *repo, const char *const *digests,
                       const uint64_t *sizes, size_t n)
{
    return pt_metastore_batch_quota_admit(b, repo, digests, sizes, n, NULL);
}
