/*
 * fsm_policy.c - the FSM's operations on repository locks, immutable tag rules and retention
 * rules, the checks that guard manifest and tag writes and deletes, and the apply of Retain.
 *
 * The checks run in the apply of the operation they guard, through the same batch, so the
 * check and the write are one step of the log: a lock set by one region refuses the next write
 * from every region, and of two regions moving an immutable tag at once only the first entry
 * in the log can win. A refusal is a deterministic status (PT_E_LOCKED, PT_E_IMMUTABLE: 403
 * DENIED); the HTTP layer words the message from its own state (pt_metastore_policy_explain).
 *
 * Retain re-checks each item as of its own entry (metastore_policy.c): a tag moved, locked or
 * made immutable since the plan stays; a manifest tagged again, locked, referenced or pushed
 * again since stays. The rest is deleted as DeleteTag / DeleteManifest would. Items that stay
 * are not a failure: the operation succeeds with fewer deletions (counted in the result).
 */
#include "fsm_policy.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

int pt_fsm_policy_put_manifest(struct pt_metastore_batch *b, const Portolan__PutManifest *m)
{
    int rv = pt_metastore_batch_policy_check(b, PT_POLICY_PUSH, m->repo, NULL, m->digest);
    for (size_t i = 0; rv == 0 && i < m->n_tags; i++)
        rv =
            pt_metastore_batch_policy_check(b, PT_POLICY_TAG_WRITE, m->repo, m->tags[i], m->digest);
    return rv;
}

int pt_fsm_policy_put_tag(struct pt_metastore_batch *b, const char *repo, const char *tag,
                          const char *digest)
{
    return pt_metastore_batch_policy_check(b, PT_POLICY_TAG_WRITE, repo, tag, digest);
}

int pt_fsm_policy_delete_tag(struct pt_metastore_batch *b, const char *repo, const char *tag)
{
    return pt_metastore_batch_policy_check(b, PT_POLICY_TAG_DELETE, repo, tag, NULL);
}

int pt_fsm_policy_delete_manifest(struct pt_metastore_batch *b, const char *repo,
                                  const char *digest)
{
    return pt_metastore_batch_policy_check(b, PT_POLICY_MANIFEST_DELETE, repo, NULL, digest);
}

int pt_fsm_policy_unlink_blob(struct pt_metastore_batch *b, const char *repo)
{
    return pt_metastore_batch_policy_check(b, PT_POLICY_BLOB_DELETE, repo, NULL, NULL);
}

/* Copies src (bounded by the op's field) into dst of cap bytes; false if it does not fit. */
static bool copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap);
    if (n == cap)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

static int put_lock(struct pt_metastore_batch *b, const Portolan__PutLock *l)
{
    struct pt_lock_rec r;
    memset(&r, 0, sizeof(r));
    if (!copy(r.repo, sizeof(r.repo), l->repo) || !copy(r.tag, sizeof(r.tag), l->tag) ||
        !copy(r.digest, sizeof(r.digest), l->digest))
        return PT_E_CONFIG;
    r.write_enabled = l->write_enabled;
    r.delete_enabled = l->delete_enabled;
    return pt_metastore_batch_lock_put(b, &r);
}

static int put_retention(struct pt_metastore_batch *b, const Portolan__PutRetentionRule *p)
{
    struct pt_retention_rec r;
    memset(&r, 0, sizeof(r));
    const char *tp = p->tag_pattern[0] != '\0' ? p->tag_pattern : "*";
    if (!copy(r.repo_pattern, sizeof(r.repo_pattern), p->repo_pattern) ||
        !copy(r.tag_pattern, sizeof(r.tag_pattern), tp))
        return PT_E_CONFIG;
    r.untagged_older_than_ms = p->untagged_older_than_ms;
    r.keep_last = p->keep_last;
    return pt_metastore_batch_retention_put(b, &r);
}

/* DeleteManifest's effect on repo@digest (fsm.c keeps the same steps). */
static int remove_manifest(struct pt_metastore_batch *b, const char *repo, const char *digest)
{
    struct pt_manifest_rec rec;
    int rv = pt_metastore_batch_manifest_get(b, repo, digest, &rec);
    if (rv != 0)
        return rv;
    rv = pt_metastore_batch_manifest_delete(b, repo, digest);
    if (rv == 0)
        rv = pt_metastore_batch_blob_refs_delete(b, repo, digest);
    if (rv == 0)
        rv = pt_metastore_batch_tags_delete_to(b, repo, digest);
    if (rv != 0 || rec.subject[0] == '\0')
        return rv;
    return pt_metastore_batch_referrer_delete(b, repo, rec.subject, digest);
}

static int retain(struct pt_metastore_batch *b, const Portolan__Command *c,
                  const Portolan__Retain *r, struct pt_fsm_result *result)
{
    if (r->n_tags > PT_COMMAND_RETAIN_MAX || r->n_manifests > PT_COMMAND_RETAIN_MAX)
        return PT_E_TOO_LARGE;
    for (size_t i = 0; i < r->n_tags; i++) {
        const Portolan__RetainTag *t = r->tags[i];
        int ok;
        int rv = pt_metastore_batch_retain_tag(b, t->repo, t->tag, t->digest, &ok);
        if (rv == 0 && ok)
            rv = pt_metastore_batch_tag_delete(b, t->repo, t->tag);
        if (rv != 0)
            return rv;
        result->retained_tags += (unsigned)ok;
    }
    size_t n = r->n_manifests;
    if (n == 0)
        return 0;
    struct pt_retain_item *items = calloc(n, sizeof(*items));
    int *ok = calloc(n, sizeof(*ok));
    int rv = items != NULL && ok != NULL ? 0 : PT_E_NOMEM;
    for (size_t i = 0; rv == 0 && i < n; i++)
        items[i] = (struct pt_retain_item){r->manifests[i]->repo, r->manifests[i]->digest,
                                           r->manifests[i]->older_than_ms};
    if (rv == 0)
        rv = pt_metastore_batch_retain_manifests(b, items, n, c->time_ms, ok);
    for (size_t i = 0; rv == 0 && i < n; i++) {
        if (!ok[i])
            continue;
        rv = remove_manifest(b, items[i].repo, items[i].digest);
        result->retained_manifests += rv == 0;
    }
    free(items);
    free(ok);
    return rv;
}

int pt_fsm_apply_policy(struct pt_metastore_batch *b, const Portolan__Command *c,
                        const Portolan__Op *op, struct pt_fsm_result *result)
{
    switch (op->op_case) {
    case PORTOLAN__OP__OP_PUT_LOCK:
        return put_lock(b, op->put_lock);
    case PORTOLAN__OP__OP_PUT_TAG_RULE:
        return pt_metastore_batch_tag_rule_put(b, op->put_tag_rule->repo_pattern,
                                               op->put_tag_rule->tag_pattern, true);
    case PORTOLAN__OP__OP_DELETE_TAG_RULE:
        return pt_metastore_batch_tag_rule_put(b, op->delete_tag_rule->repo_pattern,
                                               op->delete_tag_rule->tag_pattern, false);
    case PORTOLAN__OP__OP_PUT_RETENTION_RULE:
        return put_retention(b, op->put_retention_rule);
    case PORTOLAN__OP__OP_DELETE_RETENTION_RULE:
        return pt_metastore_batch_retention_delete(b, op->delete_retention_rule->repo_pattern);
    case PORTOLAN__OP__OP_RETAIN:
        return retain(b, c, op->retain, result);
    default:
        return PT_E_CORRUPT;
    }
}
