/*
 * fsm.c - applies committed commands to the metastore (see fsm.h for the contract).
 *
 * Design: every command is staged into a metastore batch (a RocksDB WriteBatchWithIndex),
 * whose reads see the writes staged before them, so an operation's preconditions are checked
 * against the state left by the earlier operations of the same command (LinkBlob followed by
 * PutManifest, PutManifest followed by DeleteManifest, ...) and, in a group, of the earlier
 * commands. Each command is staged after a batch mark; its first failing precondition undoes
 * the command back to that mark, and the commit then writes only the applied index for it.
 * Errors fall in two classes: precondition failures are deterministic (the same in every
 * region) and become the command's status, while I/O errors (PT_E_IO, PT_E_CORRUPT,
 * PT_E_NOMEM) are local accidents that must stop the log here: they halt the metastore
 * (pt_metastore_halt), as a failed commit does, so no later command is ever applied on top.
 *
 * Free space: below the reserve (base/diskspace.h) a command is refused with PT_E_DISK_FULL
 * before anything is staged, and the store does not halt: RocksDB never meets ENOSPC, and the
 * command is applied when it comes again with space back (Raft offers the entry again; a
 * group's clients get 507 and retry).
 *
 * Single apply (Raft: sync=0, the Raft log is the durable record) and group apply (a single
 * region: one synced write, durable before visible) share the staging code; they differ only
 * in how the batch is committed.
 *
 * Invariants kept for readers: a stored manifest hashes to its digest and its children and
 * blobs were present when it was stored; a tag always names a manifest of its repository; a
 * manifest's referrers entry exists exactly as long as the manifest; a manifest's blob
 * references (the garbage collection index, node/store/metastore_gc.c) exist exactly as long
 * as the manifest, and a link's index record exactly as long as the link.
 */
#include "fsm.h"

#include <stdbool.h>
#include <string.h>

#include "command.h"
#include "digest.h"
#include "diskspace.h"
#include "err.h"
#include "fsm_auth.h"
#include "fsm_quota.h"
#include "fsm_policy.h"
#include "metastore.h"

static bool is_io_error(int rv)
{
    return rv == PT_E_IO || rv == PT_E_CORRUPT || rv == PT_E_NOMEM;
}

/* Copies src into dst (cap bytes); false if it does not fit. */
static bool copy_field(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap);
    if (n == cap)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

/* Referenced children and blobs must be present in the repository. */
static int check_references(struct pt_metastore_batch *b, const Portolan__PutManifest *m)
{
    for (size_t i = 0; i < m->n_children; i++) {
        int rv = pt_metastore_batch_manifest_get(b, m->repo, m->children[i], NULL);
        if (rv != 0)
            return rv == PT_E_MANIFEST_UNKNOWN ? PT_E_MANIFEST_BLOB_UNKNOWN : rv;
    }
    for (size_t i = 0; i < m->n_blobs; i++) {
        int rv = pt_metastore_batch_blob_linked(b, m->repo, m->blobs[i], NULL);
        if (rv != 0)
            return rv == PT_E_BLOB_UNKNOWN ? PT_E_MANIFEST_BLOB_UNKNOWN : rv;
    }
    return 0;
}

/* Stores a new manifest after checking that body hashes to its digest, with the digest's own
 * algorithm (sha256 or sha512). */
static int store_manifest(struct pt_metastore_batch *b, const Portolan__PutManifest *m)
{
    struct pt_digest want, got;
    if (pt_digest_parse(m->digest, strlen(m->digest), &want) != 0)
        return PT_E_DIGEST_INVALID;
    if (m->body.len > PT_METASTORE_MANIFEST_MAX)
        return PT_E_MANIFEST_TOO_LARGE;
    pt_digest_of_algo(m->body.data, m->body.len, want.algo, &got);
    if (!pt_digest_equal(&want, &got))
        return PT_E_DIGEST_INVALID;
    return pt_metastore_batch_manifest_put(b, m->repo, m->digest, m->media_type, m->artifact_type,
                                           m->subject, m->body.data, m->body.len);
}

static int put_manifest(struct pt_metastore_batch *b, const Portolan__Command *c,
                        const Portolan__PutManifest *m)
{
    int rv = pt_fsm_policy_put_manifest(b, m);
    if (rv == 0)
        rv = pt_metastore_batch_repo_ensure(b, m->repo, c->time_ms);
    if (rv != 0)
        return rv;
    rv = check_references(b, m);
    if (rv == 0) /* its blobs are linked (charged) already, unless linked before usage */
        rv = pt_fsm_quota_admit(b, m->repo, (const char *const *)m->blobs, NULL, m->n_blobs);
    if (rv != 0)
        return rv;

    /* the record as it will be stored: an existing manifest is kept as it is */
    struct pt_manifest_rec rec;
    rv = pt_metastore_batch_manifest_get(b, m->repo, m->digest, &rec);
    if (rv == PT_E_MANIFEST_UNKNOWN) {
        rv = store_manifest(b, m);
        if (rv == 0)
            rv = pt_metastore_batch_blob_refs_put(b, m->repo, m->digest,
                                                  (const char *const *)m->blobs, m->n_blobs);
        if (rv == 0)
            rv = pt_metastore_batch_manifest_pushed(b, m->repo, m->digest, c->time_ms);
        if (rv == 0)
            rv = pt_metastore_batch_children_put(b, m->repo, m->digest,
                                                 (const char *const *)m->children, m->n_children);
        if (rv != 0)
            return rv;
        if (!copy_field(rec.media_type, sizeof(rec.media_type), m->media_type) ||
            !copy_field(rec.artifact_type, sizeof(rec.artifact_type), m->artifact_type) ||
            !copy_field(rec.subject, sizeof(rec.subject), m->subject))
            return PT_E_MANIFEST_INVALID; /* unreachable: manifest_put checked the lengths */
        rec.len = m->body.len;
    } else if (rv != 0) {
        return rv;
    }
    /* pushed (again): a child of a deleted index that is pushed is wanted */
    rv = pt_metastore_batch_orphan_clear(b, m->repo, m->digest);
    if (rv != 0)
        return rv;

    for (size_t i = 0; i < m->n_tags; i++) {
        rv = pt_metastore_batch_tag_put(b, m->repo, m->tags[i], m->digest, c->time_ms);
        if (rv != 0)
            return rv;
    }
    if (rec.subject[0] == '\0')
        return 0;
    struct pt_referrer r;
    memset(&r, 0, sizeof(r));
    memcpy(r.digest, m->digest, strlen(m->digest) + 1); /* checked above: a digest string */
    memcpy(r.media_type, rec.media_type, sizeof(r.media_type));
    memcpy(r.artifact_type, rec.artifact_type, sizeof(r.artifact_type));
    r.size = rec.len;
    return pt_metastore_batch_referrer_put(b, m->repo, rec.subject, &r, m->annotations.data,
                                           m->annotations.len);
}

static int put_tag(struct pt_metastore_batch *b, const Portolan__Command *c,
                   const Portolan__PutTag *t)
{
    int rv = pt_metastore_batch_manifest_get(b, t->repo, t->digest, NULL);
    if (rv == 0)
        rv = pt_fsm_policy_put_tag(b, t->repo, t->tag, t->digest);
    if (rv != 0)
        return rv;
    return pt_metastore_batch_tag_put(b, t->repo, t->tag, t->digest, c->time_ms);
}

static int delete_tag(struct pt_metastore_batch *b, const Portolan__DeleteTag *t)
{
    char digest[PT_DIGEST_STR_MAX + 1];
    int rv = pt_metastore_batch_tag_get(b, t->repo, t->tag, digest);
    if (rv == 0)
        rv = pt_fsm_policy_delete_tag(b, t->repo, t->tag);
    if (rv != 0)
        return rv;
    return pt_metastore_batch_tag_delete(b, t->repo, t->tag);
}

static int delete_manifest(struct pt_metastore_batch *b, const Portolan__Command *c,
                           const Portolan__DeleteManifest *d)
{
    struct pt_manifest_rec rec;
    int rv = pt_metastore_batch_manifest_get(b, d->repo, d->digest, &rec);
    if (rv == 0)
        rv = pt_fsm_policy_delete_manifest(b, d->repo, d->digest);
    if (rv != 0)
        return rv;
    rv = pt_metastore_batch_manifest_delete(b, d->repo, d->digest);
    if (rv == 0)
        rv = pt_metastore_batch_blob_refs_delete(b, d->repo, d->digest);
    if (rv == 0)
        rv = pt_metastore_batch_children_delete(b, d->repo, d->digest, c->time_ms);
    if (rv != 0)
        return rv;
    rv = pt_metastore_batch_tags_delete_to(b, d->repo, d->digest);
    if (rv != 0 || rec.subject[0] == '\0')
        return rv;
    return pt_metastore_batch_referrer_delete(b, d->repo, rec.subject, d->digest);
}

static int link_blob(struct pt_metastore_batch *b, const Portolan__Command *c,
                     const Portolan__LinkBlob *l)
{
    /* a blob collected since the proposer saw it (a mount, or an upload of a blob stored
     * before) is not linked: a manifest could then name a blob with no file */
    int rv = pt_metastore_batch_blob_collected(b, l->digest, c->time_ms);
    if (rv == 1)
        return PT_E_BLOB_UNKNOWN;
    if (rv == 0)
        rv = pt_metastore_batch_repo_ensure(b, l->repo, c->time_ms);
    if (rv != 0)
        return rv;
    uint64_t size;
    rv = pt_metastore_batch_blob_linked(b, l->repo, l->digest, &size);
    if (rv == 0 && size != l->size)
        return PT_E_SIZE_INVALID;
    if (rv == PT_E_BLOB_UNKNOWN) {
        const char *d = l->digest;
        rv = pt_fsm_quota_admit(b, l->repo, &d, &l->size, 1);
        if (rv == 0)
            rv = pt_metastore_batch_blob_link(b, l->repo, l->digest, l->size);
    }
    if (rv != 0)
        return rv;
    /* linked again: the grace of garbage collection starts over */
    return pt_metastore_batch_blob_link_time(b, l->repo, l->digest, c->time_ms);
}

static int unlink_blob(struct pt_metastore_batch *b, const Portolan__UnlinkBlob *u)
{
    int rv = pt_metastore_batch_blob_linked(b, u->repo, u->digest, NULL);
    if (rv == 0)
        rv = pt_fsm_policy_unlink_blob(b, u->repo);
    if (rv != 0)
        return rv;
    return pt_metastore_batch_blob_unlink(b, u->repo, u->digest);
}

static int blob_stored(struct pt_metastore_batch *b, const Portolan__Command *c,
                       const Portolan__BlobStored *s)
{
    const char *region = s->region[0] != '\0' ? s->region : c->region;
    if (s->replica) {
        /* a copy of a blob collected since it was fetched does not bring it back */
        int rv = pt_metastore_batch_blob_location(b, s->digest);
        if (rv != 0)
            return rv;
    } else {
        /* stored again by an upload: it may be linked again */
        int rv = pt_metastore_batch_blob_revive(b, s->digest);
        if (rv != 0)
            return rv;
    }
    return pt_metastore_batch_blob_stored(b, s->digest, s->size, region);
}

/* Re-checks every candidate as of the entry's time (metastore_gc.c has the rule). */
static int collect_blobs(struct pt_metastore_batch *b, const Portolan__Command *c,
                         const Portolan__CollectBlobs *g, struct pt_fsm_result *result)
{
    if (g->n_digests > PT_COMMAND_COLLECT_MAX || g->n_referrers > PT_COMMAND_COLLECT_MAX ||
        g->n_children > PT_COMMAND_COLLECT_MAX)
        return PT_E_TOO_LARGE;
    for (size_t i = 0; i < g->n_referrers; i++) {
        const Portolan__OrphanReferrer *r = g->referrers[i];
        int deleted;
        /* a referrer locked for deletes (or its repository) stays */
        int rv = pt_fsm_policy_delete_manifest(b, r->repo, r->digest);
        if (rv == PT_E_LOCKED || rv == PT_E_IMMUTABLE)
            continue;
        if (rv != 0)
            return rv;
        rv = pt_metastore_batch_gc_referrer(b, r->repo, r->subject, r->digest, c->time_ms,
                                            g->grace_ms, &deleted);
        if (rv != 0)
            return rv;
    }
    for (size_t i = 0; i < g->n_children; i++) {
        const Portolan__OrphanChild *o = g->children[i];
        int deleted;
        int rv =
            pt_metastore_batch_gc_child(b, o->repo, o->digest, c->time_ms, g->grace_ms, &deleted);
        if (rv != 0)
            return rv;
    }
    for (size_t i = 0; i < g->n_digests; i++) {
        struct pt_gc_verdict v;
        int rv = pt_metastore_batch_gc_collect(b, g->digests[i], c->time_ms, g->grace_ms, &v);
        if (rv != 0)
            return rv;
        result->collected += (unsigned)v.collected;
    }
    if (g->forget_after_ms == 0)
        return 0;
    size_t forgotten;
    return pt_metastore_batch_gc_forget(b, c->time_ms, g->forget_after_ms, PT_COMMAND_COLLECT_MAX,
                                        &forgotten);
}

static int put_region(struct pt_metastore_batch *b, const Portolan__PutRegion *r)
{
    struct pt_region_rec rec = {.id = r->id};
    if (strlen(r->name) >= sizeof(rec.name) || strlen(r->address) >= sizeof(rec.address) ||
        strlen(r->url) >= sizeof(rec.url))
        return PT_E_CONFIG;
    strcpy(rec.name, r->name);
    strcpy(rec.address, r->address);
    strcpy(rec.url, r->url);
    return pt_metastore_batch_region_put(b, &rec);
}

static int apply_op(struct pt_metastore_batch *b, const Portolan__Command *c,
                    const Portolan__Op *op, struct pt_fsm_result *result)
{
    switch (op->op_case) {
    case PORTOLAN__OP__OP_PUT_MANIFEST:
        return put_manifest(b, c, op->put_manifest);
    case PORTOLAN__OP__OP_PUT_TAG:
        return put_tag(b, c, op->put_tag);
    case PORTOLAN__OP__OP_DELETE_TAG:
        return delete_tag(b, op->delete_tag);
    case PORTOLAN__OP__OP_DELETE_MANIFEST:
        return delete_manifest(b, c, op->delete_manifest);
    case PORTOLAN__OP__OP_LINK_BLOB:
        return link_blob(b, c, op->link_blob);
    case PORTOLAN__OP__OP_UNLINK_BLOB:
        return unlink_blob(b, op->unlink_blob);
    case PORTOLAN__OP__OP_BLOB_STORED:
        return blob_stored(b, c, op->blob_stored);
    case PORTOLAN__OP__OP_PUT_REGION:
        return put_region(b, op->put_region);
    case PORTOLAN__OP__OP_DELETE_REGION:
        return pt_metastore_batch_region_delete(b, op->delete_region->id);
    case PORTOLAN__OP__OP_PUT_USER:
    case PORTOLAN__OP__OP_DELETE_USER:
    case PORTOLAN__OP__OP_PUT_TOKEN:
    case PORTOLAN__OP__OP_DELETE_TOKEN:
    case PORTOLAN__OP__OP_PUT_ANONYMOUS_RULE:
    case PORTOLAN__OP__OP_DELETE_ANONYMOUS_RULE:
    case PORTOLAN__OP__OP_PUT_SIGNING_KEY:
    case PORTOLAN__OP__OP_RETIRE_SIGNING_KEY:
    case PORTOLAN__OP__OP_REVOKE_JWT:
        return pt_fsm_apply_auth(b, c, op);
    case PORTOLAN__OP__OP_COLLECT_BLOBS:
        return collect_blobs(b, c, op->collect_blobs, result);
    case PORTOLAN__OP__OP_PUT_QUOTA:
    case PORTOLAN__OP__OP_DELETE_QUOTA:
    case PORTOLAN__OP__OP_PUT_THROTTLE:
    case PORTOLAN__OP__OP_DELETE_THROTTLE:
        return pt_fsm_apply_quota(b, op);
    case PORTOLAN__OP__OP_PUT_LOCK:
    case PORTOLAN__OP__OP_PUT_TAG_RULE:
    case PORTOLAN__OP__OP_DELETE_TAG_RULE:
    case PORTOLAN__OP__OP_PUT_RETENTION_RULE:
    case PORTOLAN__OP__OP_DELETE_RETENTION_RULE:
    case PORTOLAN__OP__OP_RETAIN:
        return pt_fsm_apply_policy(b, c, op, result);
    default:
        return PT_E_CORRUPT; /* pt_command_decode refuses unknown kinds */
    }
}

/* Stages the operations of c into b after a mark; a failed precondition undoes them (the
 * command's status), an I/O error is returned with b holding part of the command. */
static int stage(struct pt_metastore_batch *b, const Portolan__Command *c,
                 struct pt_fsm_result *result)
{
    pt_metastore_batch_mark(b);
    int status = 0;
    result->collected = 0;
    result->retained_tags = result->retained_manifests = 0;
    for (size_t i = 0; i < c->n_ops; i++) {
        int rv = apply_op(b, c, c->ops[i], result);
        if (rv == 0)
            continue;
        if (is_io_error(rv))
            return rv;
        status = rv;
        result->collected = 0;
        result->retained_tags = result->retained_manifests = 0;
        rv = pt_metastore_batch_undo(b);
        if (rv != 0)
            return rv;
        break;
    }
    for (size_t i = 0; status == 0 && i < c->n_ops; i++) {
        Portolan__Op__OpCase k = c->ops[i]->op_case;
        result->blobs |= k == PORTOLAN__OP__OP_BLOB_STORED || k == PORTOLAN__OP__OP_PUT_REGION ||
                         k == PORTOLAN__OP__OP_DELETE_REGION || k == PORTOLAN__OP__OP_COLLECT_BLOBS;
    }
    result->status = status;
    return 0;
}

/* stage, and a command that cannot be staged halts the store: it cannot follow the log. */
static int stage_or_halt(struct pt_metastore_batch *b, struct pt_metastore *ms,
                         const Portolan__Command *c, struct pt_fsm_result *result)
{
    int rv = stage(b, c, result);
    if (rv != 0)
        pt_metastore_halt(ms, rv);
    return rv;
}

/* stage_or_halt at index, applying a write id at most once (fsm.h): a known id stages
 * nothing and yields its first outcome; a new one is recorded, and ids past the window
 * expire. */
static int stage_at(struct pt_metastore_batch *b, struct pt_metastore *ms,
                    const Portolan__Command *c, uint64_t index, struct pt_fsm_result *result)
{
    const void *id = c->write_id.data;
    size_t id_len = c->write_id.len;
    if (index == 0 || id_len == 0)
        return stage_or_halt(b, ms, c, result);
    uint64_t first = 0;
    int status = 0;
    int rv = pt_metastore_batch_write_id_get(b, id, id_len, &first, &status);
    if (rv == 1) {
        result->status = status;
        result->first_index = first;
        return 0;
    }
    if (rv == 0)
        rv = stage_or_halt(b, ms, c, result);
    if (rv == 0)
        rv = pt_metastore_batch_write_id_put(b, id, id_len, index, result->status);
    if (rv == 0 && index > PT_FSM_WRITE_ID_WINDOW) {
        rv = pt_metastore_batch_write_ids_expire(b, index - PT_FSM_WRITE_ID_WINDOW,
                                                 PT_FSM_WRITE_ID_EXPIRE_MAX);
        rv = rv > 0 ? 0 : rv;
    }
    if (rv != 0)
        pt_metastore_halt(ms, rv);
    return rv;
}

int pt_fsm_apply(struct pt_metastore *ms, const void *buf, size_t len, uint64_t index,
                 struct pt_fsm_result *result)
{
    *result = (struct pt_fsm_result){0};
    int rv = pt_metastore_halted(ms);
    if (rv != 0)
        goto err;
    if (index != 0 && index <= pt_metastore_applied_index(ms))
        return 0;
    /* Below the free-space reserve nothing is written and nothing halts: the entry stays
     * unapplied and is applied when it is offered again with space back. */
    if (pt_disk_low(len)) {
        rv = PT_E_DISK_FULL;
        goto err;
    }
    Portolan__Command *c;
    rv = pt_command_decode(buf, len, &c);
    if (rv != 0)
        goto err;
    struct pt_metastore_batch *b;
    rv = pt_metastore_batch_new(ms, &b);
    if (rv == 0) {
        rv = stage_at(b, ms, c, index, result);
        if (rv == 0)
            rv = pt_metastore_batch_commit(b, index);
        pt_metastore_batch_free(b);
    }
    pt_command_decoded_free(c);
    if (rv != 0)
        goto err;
    return 0;

err:
    *result = (struct pt_fsm_result){.status = rv};
    return rv;
}

int pt_fsm_apply_group(struct pt_metastore *ms, struct pt_fsm_cmd *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cmds[i].index = 0;
        cmds[i].result = (struct pt_fsm_result){0};
    }
    struct pt_metastore_batch *b = NULL;
    int rv = pt_metastore_halted(ms);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += cmds[i].len;
    /* Below the free-space reserve the group is refused whole before anything is written;
     * the store does not halt, so writes resume once space returns. */
    if (rv == 0 && pt_disk_low(total)) {
        for (size_t i = 0; i < n; i++)
            cmds[i].result.status = PT_E_DISK_FULL;
        return PT_E_DISK_FULL;
    }
    if (rv == 0)
        rv = pt_metastore_batch_new(ms, &b);
    if (rv != 0)
        goto err;
    uint64_t index = pt_metastore_applied_index(ms);
    size_t staged = 0;
    for (size_t i = 0; i < n; i++) {
        Portolan__Command *c;
        if (pt_command_decode(cmds[i].buf, cmds[i].len, &c) != 0) {
            cmds[i].result.status = PT_E_CORRUPT; /* refused alone; takes no index */
            continue;
        }
        rv = stage_at(b, ms, c, index + 1, &cmds[i].result);
        pt_command_decoded_free(c);
        if (rv != 0)
            goto err;
        cmds[i].index = ++index;
        staged++;
    }
    rv = staged != 0 ? pt_metastore_batch_commit_durable(b, index) : 0;
    if (rv != 0)
        goto err;
    pt_metastore_batch_free(b);
    return 0;

err:
    pt_metastore_batch_free(b);
    pt_metastore_halt(ms, rv); /* a no-op if the store halted already */
    for (size_t i = 0; i < n; i++) {
        cmds[i].index = 0;
        cmds[i].result = (struct pt_fsm_result){.status = rv};
    }
    return rv;
}
