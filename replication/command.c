/*
 * command.c - builder, encoder and decoder of portolan.Command (see command.h).
 *
 * A builder's message tree is made of heap copies only: every string field points either at
 * a strdup'd copy or, while an operation is still being filled in, at protobuf-c's shared
 * empty string, which op_free skips. Each operation is built completely (or freed) before it
 * is appended, so a failing add leaves the builder as it was.
 *
 * Decoded messages come from protobuf-c's unpacker and are released with its free function;
 * the two kinds of tree are never mixed.
 */
#include "command.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"

/* ---- copies ---------------------------------------------------------------------------- */

static void str_free(char *s)
{
    if (s != protobuf_c_empty_string)
        free(s);
}

/* Sets *dst to an owned copy of s (NULL = ""); false on allocation failure. */
static bool str_set(char **dst, const char *s)
{
    char *c = strdup(s != NULL ? s : "");
    if (c == NULL)
        return false;
    *dst = c;
    return true;
}

static bool bytes_set(ProtobufCBinaryData *dst, const void *src, size_t len)
{
    if (len == 0) {
        dst->data = NULL;
        dst->len = 0;
        return true;
    }
    dst->data = malloc(len);
    if (dst->data == NULL)
        return false;
    memcpy(dst->data, src, len);
    dst->len = len;
    return true;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Owned copy of the n strings of src into *dst / *dst_n; false on allocation failure (then
 * nothing is allocated). */
static bool strv_set(char ***dst, size_t *dst_n, const char *const *src, size_t n)
{
    *dst = NULL;
    *dst_n = 0;
    if (n == 0)
        return true;
    char **v = calloc(n, sizeof(*v));
    if (v == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!str_set(&v[i], src[i])) {
            strv_free(v, i);
            return false;
        }
    }
    *dst = v;
    *dst_n = n;
    return true;
}

static void grants_free(Portolan__Grant **g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (g[i] != NULL)
            str_free(g[i]->pattern);
        free(g[i]);
    }
    free(g);
}

/* Owned copy of n grants into *dst / *dst_n; false on allocation failure (then nothing is
 * allocated). */
static bool grants_set(Portolan__Grant ***dst, size_t *dst_n, const struct pt_command_grant *src,
                       size_t n)
{
    static const Portolan__Grant init = PORTOLAN__GRANT__INIT;
    *dst = NULL;
    *dst_n = 0;
    if (n == 0)
        return true;
    Portolan__Grant **v = calloc(n, sizeof(*v));
    if (v == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        v[i] = malloc(sizeof(*v[i]));
        if (v[i] == NULL || (*v[i] = init, !str_set(&v[i]->pattern, src[i].pattern))) {
            if (v[i] != NULL)
                v[i]->pattern = (char *)protobuf_c_empty_string;
            grants_free(v, i + 1);
            return false;
        }
        v[i]->actions = src[i].actions;
    }
    *dst = v;
    *dst_n = n;
    return true;
}

/* ---- operations ------------------------------------------------------------------------ */

static void policy_op_free(Portolan__Op *op);

static void op_free(Portolan__Op *op)
{
    switch (op->op_case) {
    case PORTOLAN__OP__OP_PUT_MANIFEST: {
        Portolan__PutManifest *m = op->put_manifest;
        str_free(m->repo);
        str_free(m->digest);
        str_free(m->media_type);
        free(m->body.data);
        strv_free(m->tags, m->n_tags);
        str_free(m->subject);
        str_free(m->artifact_type);
        free(m->annotations.data);
        strv_free(m->blobs, m->n_blobs);
        strv_free(m->children, m->n_children);
        free(m);
        break;
    }
    case PORTOLAN__OP__OP_PUT_TAG:
        str_free(op->put_tag->repo);
        str_free(op->put_tag->tag);
        str_free(op->put_tag->digest);
        free(op->put_tag);
        break;
    case PORTOLAN__OP__OP_DELETE_TAG:
        str_free(op->delete_tag->repo);
        str_free(op->delete_tag->tag);
        free(op->delete_tag);
        break;
    case PORTOLAN__OP__OP_DELETE_MANIFEST:
        str_free(op->delete_manifest->repo);
        str_free(op->delete_manifest->digest);
        free(op->delete_manifest);
        break;
    case PORTOLAN__OP__OP_LINK_BLOB:
        str_free(op->link_blob->repo);
        str_free(op->link_blob->digest);
        free(op->link_blob);
        break;
    case PORTOLAN__OP__OP_UNLINK_BLOB:
        str_free(op->unlink_blob->repo);
        str_free(op->unlink_blob->digest);
        free(op->unlink_blob);
        break;
    case PORTOLAN__OP__OP_BLOB_STORED:
        str_free(op->blob_stored->digest);
        str_free(op->blob_stored->region);
        free(op->blob_stored);
        break;
    case PORTOLAN__OP__OP_PUT_USER:
        str_free(op->put_user->name);
        str_free(op->put_user->password_hash);
        grants_free(op->put_user->grants, op->put_user->n_grants);
        free(op->put_user);
        break;
    case PORTOLAN__OP__OP_DELETE_USER:
        str_free(op->delete_user->name);
        free(op->delete_user);
        break;
    case PORTOLAN__OP__OP_PUT_TOKEN:
        str_free(op->put_token->id);
        str_free(op->put_token->secret_hash);
        grants_free(op->put_token->grants, op->put_token->n_grants);
        str_free(op->put_token->description);
        str_free(op->put_token->owner);
        free(op->put_token);
        break;
    case PORTOLAN__OP__OP_DELETE_TOKEN:
        str_free(op->delete_token->id);
        free(op->delete_token);
        break;
    case PORTOLAN__OP__OP_PUT_ANONYMOUS_RULE:
        str_free(op->put_anonymous_rule->pattern);
        free(op->put_anonymous_rule);
        break;
    case PORTOLAN__OP__OP_DELETE_ANONYMOUS_RULE:
        str_free(op->delete_anonymous_rule->pattern);
        free(op->delete_anonymous_rule);
        break;
    case PORTOLAN__OP__OP_PUT_SIGNING_KEY:
        str_free(op->put_signing_key->kid);
        str_free(op->put_signing_key->region);
        free(op->put_signing_key->public_key.data);
        free(op->put_signing_key);
        break;
    case PORTOLAN__OP__OP_RETIRE_SIGNING_KEY:
        str_free(op->retire_signing_key->kid);
        free(op->retire_signing_key);
        break;
    case PORTOLAN__OP__OP_REVOKE_JWT:
        str_free(op->revoke_jwt->jti);
        free(op->revoke_jwt);
        break;
    case PORTOLAN__OP__OP_COLLECT_BLOBS:
        strv_free(op->collect_blobs->digests, op->collect_blobs->n_digests);
        for (size_t i = 0; i < op->collect_blobs->n_referrers; i++) {
            Portolan__OrphanReferrer *r = op->collect_blobs->referrers[i];
            if (r == NULL)
                continue;
            str_free(r->repo);
            str_free(r->subject);
            str_free(r->digest);
            free(r);
        }
        free(op->collect_blobs->referrers);
        for (size_t i = 0; i < op->collect_blobs->n_children; i++) {
            Portolan__OrphanChild *o = op->collect_blobs->children[i];
            if (o == NULL)
                continue;
            str_free(o->repo);
            str_free(o->digest);
            free(o);
        }
        free(op->collect_blobs->children);
        free(op->collect_blobs);
        break;
    case PORTOLAN__OP__OP_PUT_QUOTA:
        str_free(op->put_quota->pattern);
        free(op->put_quota);
        break;
    case PORTOLAN__OP__OP_DELETE_QUOTA:
        str_free(op->delete_quota->pattern);
        free(op->delete_quota);
        break;
    case PORTOLAN__OP__OP_PUT_THROTTLE:
        str_free(op->put_throttle->subject);
        free(op->put_throttle);
        break;
    case PORTOLAN__OP__OP_DELETE_THROTTLE:
        str_free(op->delete_throttle->subject);
        free(op->delete_throttle);
        break;
    case PORTOLAN__OP__OP_PUT_LOCK:
    case PORTOLAN__OP__OP_PUT_TAG_RULE:
    case PORTOLAN__OP__OP_DELETE_TAG_RULE:
    case PORTOLAN__OP__OP_PUT_RETENTION_RULE:
    case PORTOLAN__OP__OP_DELETE_RETENTION_RULE:
    case PORTOLAN__OP__OP_RETAIN:
        policy_op_free(op);
        return;
    default:
        break;
    }
    free(op);
}

/* ---- repository locks, immutable tags, retention (ops 50..59) ------------------------- */

static void policy_op_free(Portolan__Op *op)
{
    switch (op->op_case) {
    case PORTOLAN__OP__OP_PUT_LOCK:
        str_free(op->put_lock->repo);
        str_free(op->put_lock->tag);
        str_free(op->put_lock->digest);
        break;
    case PORTOLAN__OP__OP_PUT_TAG_RULE:
        str_free(op->put_tag_rule->repo_pattern);
        str_free(op->put_tag_rule->tag_pattern);
        break;
    case PORTOLAN__OP__OP_DELETE_TAG_RULE:
        str_free(op->delete_tag_rule->repo_pattern);
        str_free(op->delete_tag_rule->tag_pattern);
        break;
    case PORTOLAN__OP__OP_PUT_RETENTION_RULE:
        str_free(op->put_retention_rule->repo_pattern);
        str_free(op->put_retention_rule->tag_pattern);
        break;
    case PORTOLAN__OP__OP_DELETE_RETENTION_RULE:
        str_free(op->delete_retention_rule->repo_pattern);
        break;
    case PORTOLAN__OP__OP_RETAIN:
        for (size_t i = 0; i < op->retain->n_tags; i++) {
            Portolan__RetainTag *t = op->retain->tags[i];
            if (t == NULL)
                continue;
            str_free(t->repo);
            str_free(t->tag);
            str_free(t->digest);
            free(t);
        }
        free(op->retain->tags);
        for (size_t i = 0; i < op->retain->n_manifests; i++) {
            Portolan__RetainManifest *m = op->retain->manifests[i];
            if (m == NULL)
                continue;
            str_free(m->repo);
            str_free(m->digest);
            free(m);
        }
        free(op->retain->manifests);
        break;
    default:
        break;
    }
    free(op->put_lock); /* every member of the union is a message pointer */
    free(op);
}

/* Allocates an operation of kind op_case with its message (size bytes, initialized from
 * init); NULL on allocation failure. */
static Portolan__Op *op_new(Portolan__Op__OpCase op_case, const void *init, size_t size)
{
    static const Portolan__Op op_init = PORTOLAN__OP__INIT;
    Portolan__Op *op = malloc(sizeof(*op));
    void *msg = malloc(size);
    if (op == NULL || msg == NULL) {
        free(op);
        free(msg);
        return NULL;
    }
    *op = op_init;
    memcpy(msg, init, size);
    op->op_case = op_case;
    op->put_manifest = msg; /* every member of the union is a message pointer */
    return op;
}

/* Appends op (ownership transferred on success; freed on failure). */
static int append(struct pt_command_builder *b, Portolan__Op *op, bool complete)
{
    if (!complete) {
        op_free(op);
        return PT_E_NOMEM;
    }
    if (b->msg.n_ops == PT_COMMAND_MAX_OPS) {
        op_free(op);
        return PT_E_TOO_LARGE;
    }
    if (b->msg.n_ops == b->cap &&
        pt_array_grow(&b->msg.ops, &b->cap, sizeof(*b->msg.ops), 4, PT_COMMAND_MAX_OPS) != 0) {
        op_free(op);
        return PT_E_NOMEM;
    }
    b->msg.ops[b->msg.n_ops++] = op;
    return 0;
}

int pt_command_builder_init(struct pt_command_builder *b, int64_t time_ms, const char *region)
{
    static const Portolan__Command init = PORTOLAN__COMMAND__INIT;
    b->msg = init;
    b->cap = 0;
    b->msg.version = PT_COMMAND_VERSION;
    b->msg.time_ms = time_ms;
    if (!str_set(&b->msg.region, region)) {
        b->msg.region = (char *)protobuf_c_empty_string;
        return PT_E_NOMEM;
    }
    return 0;
}

void pt_command_builder_free(struct pt_command_builder *b)
{
    for (size_t i = 0; i < b->msg.n_ops; i++)
        op_free(b->msg.ops[i]);
    free(b->msg.ops);
    str_free(b->msg.region);
    b->msg.ops = NULL;
    b->msg.n_ops = 0;
    b->msg.region = (char *)protobuf_c_empty_string;
    b->cap = 0;
}

int pt_command_add_put_manifest(struct pt_command_builder *b, const struct pt_command_manifest *m)
{
    static const Portolan__PutManifest init = PORTOLAN__PUT_MANIFEST__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_PUT_MANIFEST, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__PutManifest *pm = op->put_manifest;
    bool ok = str_set(&pm->repo, m->repo) && str_set(&pm->digest, m->digest) &&
              str_set(&pm->media_type, m->media_type) && bytes_set(&pm->body, m->body, m->len) &&
              strv_set(&pm->tags, &pm->n_tags, m->tags, m->n_tags) &&
              str_set(&pm->subject, m->subject) && str_set(&pm->artifact_type, m->artifact_type) &&
              bytes_set(&pm->annotations, m->annotations, m->annotations_len) &&
              strv_set(&pm->blobs, &pm->n_blobs, m->blobs, m->n_blobs) &&
              strv_set(&pm->children, &pm->n_children, m->children, m->n_children);
    return append(b, op, ok);
}

int pt_command_add_put_tag(struct pt_command_builder *b, const char *repo, const char *tag,
                           const char *digest)
{
    static const Portolan__PutTag init = PORTOLAN__PUT_TAG__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_PUT_TAG, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__PutTag *t = op->put_tag;
    bool ok = str_set(&t->repo, repo) && str_set(&t->tag, tag) && str_set(&t->digest, digest);
    return append(b, op, ok);
}

int pt_command_add_delete_tag(struct pt_command_builder *b, const char *repo, const char *tag)
{
    static const Portolan__DeleteTag init = PORTOLAN__DELETE_TAG__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_DELETE_TAG, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__DeleteTag *t = op->delete_tag;
    bool ok = str_set(&t->repo, repo) && str_set(&t->tag, tag);
    return append(b, op, ok);
}

int pt_command_add_delete_manifest(struct pt_command_builder *b, const char *repo,
                                   const char *digest)
{
    static const Portolan__DeleteManifest init = PORTOLAN__DELETE_MANIFEST__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_DELETE_MANIFEST, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__DeleteManifest *d = op->delete_manifest;
    bool ok = str_set(&d->repo, repo) && str_set(&d->digest, digest);
    return append(b, op, ok);
}

int pt_command_add_link_blob(struct pt_command_builder *b, const char *repo, const char *digest,
                             uint64_t size)
{
    static const Portolan__LinkBlob init = PORTOLAN__LINK_BLOB__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_LINK_BLOB, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__LinkBlob *l = op->link_blob;
    l->size = size;
    bool ok = str_set(&l->repo, repo) && str_set(&l->digest, digest);
    return append(b, op, ok);
}

int pt_command_add_unlink_blob(struct pt_command_builder *b, const char *repo, const char *digest)
{
    static const Portolan__UnlinkBlob init = PORTOLAN__UNLINK_BLOB__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_UNLINK_BLOB, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__UnlinkBlob *u = op->unlink_blob;
    bool ok = str_set(&u->repo, repo) && str_set(&u->digest, digest);
    return append(b, op, ok);
}

int pt_command_add_blob_stored(struct pt_command_builder *b, const char *digest, uint64_t size,
                               const char *region)
{
    static const Portolan__BlobStored init = PORTOLAN__BLOB_STORED__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_BLOB_STORED, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__BlobStored *s = op->blob_stored;
    s->size = size;
    bool ok = str_set(&s->digest, digest) && str_set(&s->region, region);
    return append(b, op, ok);
}

int pt_command_add_blob_replica(struct pt_command_builder *b, const char *digest, uint64_t size,
                                const char *region)
{
    int rv = pt_command_add_blob_stored(b, digest, size, region);
    if (rv == 0)
        b->msg.ops[b->msg.n_ops - 1]->blob_stored->replica = 1;
    return rv;
}

int pt_command_add_collect_blobs(struct pt_command_builder *b, const char *const *digests, size_t n,
                                 int64_t grace_ms)
{
    static const Portolan__CollectBlobs init = PORTOLAN__COLLECT_BLOBS__INIT;
    if (n > PT_COMMAND_COLLECT_MAX)
        return PT_E_TOO_LARGE;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_COLLECT_BLOBS, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__CollectBlobs *g = op->collect_blobs;
    g->grace_ms = grace_ms;
    bool ok = strv_set(&g->digests, &g->n_digests, digests, n);
    return append(b, op, ok);
}

int pt_command_add_forget_collected(struct pt_command_builder *b, int64_t forget_after_ms)
{
    static const Portolan__CollectBlobs init = PORTOLAN__COLLECT_BLOBS__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_COLLECT_BLOBS, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    op->collect_blobs->forget_after_ms = forget_after_ms;
    return append(b, op, true);
}

int pt_command_add_collect_referrers(struct pt_command_builder *b,
                                     const struct pt_command_referrer *refs, size_t n,
                                     int64_t grace_ms)
{
    static const Portolan__CollectBlobs init = PORTOLAN__COLLECT_BLOBS__INIT;
    static const Portolan__OrphanReferrer rinit = PORTOLAN__ORPHAN_REFERRER__INIT;
    if (n > PT_COMMAND_COLLECT_MAX)
        return PT_E_TOO_LARGE;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_COLLECT_BLOBS, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__CollectBlobs *g = op->collect_blobs;
    g->grace_ms = grace_ms;
    bool ok = n == 0 || (g->referrers = calloc(n, sizeof(*g->referrers))) != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        Portolan__OrphanReferrer *r = malloc(sizeof(*r));
        if (r == NULL) {
            ok = false;
            break;
        }
        *r = rinit;
        g->referrers[i] = r;
        g->n_referrers = i + 1;
        ok = str_set(&r->repo, refs[i].repo) && str_set(&r->subject, refs[i].subject) &&
             str_set(&r->digest, refs[i].digest);
    }
    return append(b, op, ok);
}

int pt_command_add_collect_children(struct pt_command_builder *b,
                                    const struct pt_command_child *children, size_t n,
                                    int64_t grace_ms)
{
    static const Portolan__CollectBlobs init = PORTOLAN__COLLECT_BLOBS__INIT;
    static const Portolan__OrphanChild oinit = PORTOLAN__ORPHAN_CHILD__INIT;
    if (n > PT_COMMAND_COLLECT_MAX)
        return PT_E_TOO_LARGE;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_COLLECT_BLOBS, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__CollectBlobs *g = op->collect_blobs;
    g->grace_ms = grace_ms;
    bool ok = n == 0 || (g->children = calloc(n, sizeof(*g->children))) != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        Portolan__OrphanChild *o = malloc(sizeof(*o));
        if (o == NULL) {
            ok = false;
            break;
        }
        *o = oinit;
        g->children[i] = o;
        g->n_children = i + 1;
        ok = str_set(&o->repo, children[i].repo) && str_set(&o->digest, children[i].digest);
    }
    return append(b, op, ok);
}

int pt_command_add_put_user(struct pt_command_builder *b, const char *name,
                            const char *password_hash, const struct pt_command_grant *grants,
                            size_t n_grants, int disabled, int only_if_no_users)
{
    static const Portolan__PutUser init = PORTOLAN__PUT_USER__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_PUT_USER, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__PutUser *u = op->put_user;
    u->disabled = disabled != 0;
    u->only_if_no_users = only_if_no_users != 0;
    bool ok = str_set(&u->name, name) && str_set(&u->password_hash, password_hash) &&
              grants_set(&u->grants, &u->n_grants, grants, n_grants);
    return append(b, op, ok);
}

int pt_command_add_delete_user(struct pt_command_builder *b, const char *name)
{
    static const Portolan__DeleteUser init = PORTOLAN__DELETE_USER__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_DELETE_USER, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    return append(b, op, str_set(&op->delete_user->name, name));
}

int pt_command_add_put_token(struct pt_command_builder *b, const char *id, const char *secret_hash,
                             const struct pt_command_grant *grants, size_t n_grants,
                             int64_t expires_ms, int disabled, const char *description,
                             const char *owner)
{
    static const Portolan__PutToken init = PORTOLAN__PUT_TOKEN__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_PUT_TOKEN, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__PutToken *t = op->put_token;
    t->expires_ms = expires_ms;
    t->disabled = disabled != 0;
    bool ok = str_set(&t->id, id) && str_set(&t->secret_hash, secret_hash) &&
              grants_set(&t->grants, &t->n_grants, grants, n_grants) &&
              str_set(&t->description, description) && str_set(&t->owner, owner);
    return append(b, op, ok);
}

int pt_command_add_delete_token(struct pt_command_builder *b, const char *id)
{
    static const Portolan__DeleteToken init = PORTOLAN__DELETE_TOKEN__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_DELETE_TOKEN, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    return append(b, op, str_set(&op->delete_token->id, id));
}

int pt_command_add_put_anonymous(struct pt_command_builder *b, const char *pattern)
{
    static const Portolan__PutAnonymousRule init = PORTOLAN__PUT_ANONYMOUS_RULE__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_PUT_ANONYMOUS_RULE, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    return append(b, op, str_set(&op->put_anonymous_rule->pattern, pattern));
}

int pt_command_add_delete_anonymous(struct pt_command_builder *b, const char *pattern)
{
    static const Portolan__DeleteAnonymousRule init = PORTOLAN__DELETE_ANONYMOUS_RULE__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_DELETE_ANONYMOUS_RULE, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    return append(b, op, str_set(&op->delete_anonymous_rule->pattern, pattern));
}

int pt_command_add_put_signing_key(struct pt_command_builder *b, const char *kid,
                                   const char *region, const void *der, size_t der_len)
{
    static const Portolan__PutSigningKey init = PORTOLAN__PUT_SIGNING_KEY__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_PUT_SIGNING_KEY, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__PutSigningKey *k = op->put_signing_key;
    bool ok = str_set(&k->kid, kid) && str_set(&k->region, region) &&
              bytes_set(&k->public_key, der, der_len);
    return append(b, op, ok);
}

int pt_command_add_retire_signing_key(struct pt_command_builder *b, const char *kid,
                                      int64_t not_after_ms)
{
    static const Portolan__RetireSigningKey init = PORTOLAN__RETIRE_SIGNING_KEY__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_RETIRE_SIGNING_KEY, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    op->retire_signing_key->not_after_ms = not_after_ms;
    return append(b, op, str_set(&op->retire_signing_key->kid, kid));
}

int pt_command_add_revoke_jwt(struct pt_command_builder *b, const char *jti, int64_t expires_ms)
{
    static const Portolan__RevokeJwt init = PORTOLAN__REVOKE_JWT__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_REVOKE_JWT, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    op->revoke_jwt->expires_ms = expires_ms;
    return append(b, op, str_set(&op->revoke_jwt->jti, jti));
}

int pt_command_add_put_lock(struct pt_command_builder *b, const char *repo, const char *tag,
                            const char *digest, int write_enabled, int delete_enabled)
{
    static const Portolan__PutLock init = PORTOLAN__PUT_LOCK__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_PUT_LOCK, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__PutLock *l = op->put_lock;
    l->write_enabled = write_enabled != 0;
    l->delete_enabled = delete_enabled != 0;
    bool ok = str_set(&l->repo, repo) && str_set(&l->tag, tag) && str_set(&l->digest, digest);
    return append(b, op, ok);
}

int pt_command_add_tag_rule(struct pt_command_builder *b, const char *repo_pattern,
                            const char *tag_pattern, int put)
{
    static const Portolan__PutTagRule pinit = PORTOLAN__PUT_TAG_RULE__INIT;
    static const Portolan__DeleteTagRule dinit = PORTOLAN__DELETE_TAG_RULE__INIT;
    Portolan__Op *op = put ? op_new(PORTOLAN__OP__OP_PUT_TAG_RULE, &pinit, sizeof(pinit))
                           : op_new(PORTOLAN__OP__OP_DELETE_TAG_RULE, &dinit, sizeof(dinit));
    if (op == NULL)
        return PT_E_NOMEM;
    bool ok = put ? str_set(&op->put_tag_rule->repo_pattern, repo_pattern) &&
                        str_set(&op->put_tag_rule->tag_pattern, tag_pattern)
                  : str_set(&op->delete_tag_rule->repo_pattern, repo_pattern) &&
                        str_set(&op->delete_tag_rule->tag_pattern, tag_pattern);
    return append(b, op, ok);
}

int pt_command_add_put_retention(struct pt_command_builder *b, const char *repo_pattern,
                                 int64_t untagged_older_than_ms, uint32_t keep_last,
                                 const char *tag_pattern)
{
    static const Portolan__PutRetentionRule init = PORTOLAN__PUT_RETENTION_RULE__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_PUT_RETENTION_RULE, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__PutRetentionRule *r = op->put_retention_rule;
    r->untagged_older_than_ms = untagged_older_than_ms;
    r->keep_last = keep_last;
    bool ok = str_set(&r->repo_pattern, repo_pattern) && str_set(&r->tag_pattern, tag_pattern);
    return append(b, op, ok);
}

int pt_command_add_delete_retention(struct pt_command_builder *b, const char *repo_pattern)
{
    static const Portolan__DeleteRetentionRule init = PORTOLAN__DELETE_RETENTION_RULE__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_DELETE_RETENTION_RULE, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    return append(b, op, str_set(&op->delete_retention_rule->repo_pattern, repo_pattern));
}

int pt_command_add_retain(struct pt_command_builder *b, const struct pt_command_retain_tag *tags,
                          size_t n_tags, const struct pt_command_retain_manifest *mans,
                          size_t n_mans)
{
    if (n_tags > PT_COMMAND_RETAIN_MAX || n_mans > PT_COMMAND_RETAIN_MAX)
        return PT_E_TOO_LARGE;
    static const Portolan__Retain init = PORTOLAN__RETAIN__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_RETAIN, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__Retain *r = op->retain;
    bool ok = true;
    if (n_tags > 0) {
        r->tags = calloc(n_tags, sizeof(*r->tags));
        ok = r->tags != NULL;
    }
    for (size_t i = 0; ok && i < n_tags; i++) {
        static const Portolan__RetainTag tinit = PORTOLAN__RETAIN_TAG__INIT;
        Portolan__RetainTag *t = malloc(sizeof(*t));
        if (t == NULL) {
            ok = false;
            break;
        }
        *t = tinit;
        r->tags[r->n_tags++] = t;
        ok = str_set(&t->repo, tags[i].repo) && str_set(&t->tag, tags[i].tag) &&
             str_set(&t->digest, tags[i].digest);
    }
    if (ok && n_mans > 0) {
        r->manifests = calloc(n_mans, sizeof(*r->manifests));
        ok = r->manifests != NULL;
    }
    for (size_t i = 0; ok && i < n_mans; i++) {
        static const Portolan__RetainManifest minit = PORTOLAN__RETAIN_MANIFEST__INIT;
        Portolan__RetainManifest *m = malloc(sizeof(*m));
        if (m == NULL) {
            ok = false;
            break;
        }
        *m = minit;
        r->manifests[r->n_manifests++] = m;
        m->older_than_ms = mans[i].older_than_ms;
        ok = str_set(&m->repo, mans[i].repo) && str_set(&m->digest, mans[i].digest);
    }
    return append(b, op, ok);
}

/* ---- encode / decode ------------------------------------------------------------------- */

int pt_command_encode_with(const Portolan__Command *c, void *(*alloc)(size_t), void **buf,
                           size_t *len)
{
    *buf = NULL;
    *len = 0;
    size_t n = portolan__command__get_packed_size(c);
    if (n > PT_COMMAND_MAX_SIZE)
        return PT_E_TOO_LARGE;
    /* an empty Command packs to zero bytes; allocate at least one */
    uint8_t *p = alloc(n > 0 ? n : 1);
    if (p == NULL)
        return PT_E_NOMEM;
    /* packs exactly n bytes: both sizes come from the same descriptor walk */
    portolan__command__pack(c, p);
    *buf = p;
    *len = n;
    return 0;
}

int pt_command_encode(const Portolan__Command *c, void **buf, size_t *len)
{
    return pt_command_encode_with(c, malloc, buf, len);
}

int pt_command_builder_encode(const struct pt_command_builder *b, void **buf, size_t *len)
{
    return pt_command_encode(&b->msg, buf, len);
}

int pt_command_decode(const void *buf, size_t len, Portolan__Command **out)
{
    *out = NULL;
    if (len > PT_COMMAND_MAX_SIZE)
        return PT_E_CORRUPT;
    Portolan__Command *c = portolan__command__unpack(NULL, len, buf);
    if (c == NULL)
        return PT_E_CORRUPT;
    if (c->version != PT_COMMAND_VERSION || c->n_ops > PT_COMMAND_MAX_OPS ||
        c->write_id.len > PT_COMMAND_WRITE_ID_MAX)
        goto err;
    for (size_t i = 0; i < c->n_ops; i++) {
        Portolan__Op *op = c->ops[i];
        bool known =
            (op->op_case >= PORTOLAN__OP__OP_PUT_MANIFEST &&
             op->op_case <= PORTOLAN__OP__OP_REVOKE_JWT) ||
            op->op_case == PORTOLAN__OP__OP_COLLECT_BLOBS ||
            (op->op_case >= PORTOLAN__OP__OP_PUT_QUOTA &&
             op->op_case <= PORTOLAN__OP__OP_DELETE_THROTTLE) ||
            (op->op_case >= PORTOLAN__OP__OP_PUT_LOCK && op->op_case <= PORTOLAN__OP__OP_RETAIN);
        if (!known || op->put_manifest == NULL)
            goto err;
        if (op->op_case == PORTOLAN__OP__OP_COLLECT_BLOBS &&
            (op->collect_blobs->n_digests > PT_COMMAND_COLLECT_MAX ||
             op->collect_blobs->n_referrers > PT_COMMAND_COLLECT_MAX ||
             op->collect_blobs->n_children > PT_COMMAND_COLLECT_MAX))
            goto err;
        if (op->op_case == PORTOLAN__OP__OP_RETAIN &&
            (op->retain->n_tags > PT_COMMAND_RETAIN_MAX ||
             op->retain->n_manifests > PT_COMMAND_RETAIN_MAX))
            goto err;
    }
    *out = c;
    return 0;
err:
    portolan__command__free_unpacked(c, NULL);
    return PT_E_CORRUPT;
}

/* ---- storage quotas and throttling ----------------------------------------------------- */

int pt_command_add_put_quota(struct pt_command_builder *b, const char *pattern, uint64_t limit)
{
    static const Portolan__PutQuota init = PORTOLAN__PUT_QUOTA__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_PUT_QUOTA, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    op->put_quota->limit_bytes = limit;
    return append(b, op, str_set(&op->put_quota->pattern, pattern));
}

int pt_command_add_delete_quota(struct pt_command_builder *b, const char *pattern)
{
    static const Portolan__DeleteQuota init = PORTOLAN__DELETE_QUOTA__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_DELETE_QUOTA, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    return append(b, op, str_set(&op->delete_quota->pattern, pattern));
}

int pt_command_add_put_throttle(struct pt_command_builder *b, const struct pt_command_throttle *t)
{
    static const Portolan__PutThrottle init = PORTOLAN__PUT_THROTTLE__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_PUT_THROTTLE, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    Portolan__PutThrottle *p = op->put_throttle;
    p->tier = t->tier;
    p->reads_per_minute = t->reads_per_minute;
    p->writes_per_minute = t->writes_per_minute;
    p->read_bytes_per_second = t->read_bytes_per_second;
    p->write_bytes_per_second = t->write_bytes_per_second;
    return append(b, op, str_set(&p->subject, t->subject));
}

int pt_command_add_delete_throttle(struct pt_command_builder *b, const char *subject)
{
    static const Portolan__DeleteThrottle init = PORTOLAN__DELETE_THROTTLE__INIT;
    Portolan__Op *op = op_new(PORTOLAN__OP__OP_DELETE_THROTTLE, &init, sizeof(init));
    if (op == NULL)
        return PT_E_NOMEM;
    return append(b, op, str_set(&op->delete_throttle->subject, subject));
}

/* ---- write ids ------------------------------------------------------------------------- */

/* Field 5 (write_id), wire type 2 (length-delimited): (5 << 3) | 2. */
#define WRITE_ID_TAG 0x2a

int pt_command_write_id(const void *buf, size_t len, const uint8_t **id, size_t *id_len)
{
    const uint8_t *p = buf;
    /* PT_COMMAND_WRITE_ID_MAX < 128: the length is one varint byte */
    if (len < 2 || p[0] != WRITE_ID_TAG || p[1] == 0 || p[1] > PT_COMMAND_WRITE_ID_MAX ||
        (size_t)p[1] > len - 2)
        return 0;
    *id = p + 2;
    *id_len = p[1];
    return 1;
}

int pt_command_stamp(void **buf, size_t *len, const void *id, size_t id_len)
{
    if (id_len == 0 || id_len > PT_COMMAND_WRITE_ID_MAX)
        return PT_E_CONFIG;
    size_t extra = 2 + id_len;
    if (*len > PT_COMMAND_MAX_SIZE - extra)
        return PT_E_TOO_LARGE;
    uint8_t *p = realloc(*buf, *len + extra);
    if (p == NULL)
        return PT_E_NOMEM;
    memmove(p + extra, p, *len);
    p[0] = WRITE_ID_TAG;
    p[1] = (uint8_t)id_len;
    memcpy(p + 2, id, id_len);
    *buf = p;
    *len += extra;
    return 0;
}

void pt_command_decoded_free(Portolan__Command *c)
{
    if (c != NULL)
        portolan__command__free_unpacked(c, NULL);
}
