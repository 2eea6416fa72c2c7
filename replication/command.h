/*
 * command.h - building, encoding and decoding portolan.Command (proto/command.proto), the
 * payload of every change to replicated state (DESIGN.md sections 4 and 6).
 *
 * Proposers (HTTP handlers, blob sync) collect operations in a struct pt_command_builder,
 * which copies every argument, then encode it into one owned buffer and hand that to the
 * committer or Raft. The FSM decodes with pt_command_decode, which refuses anything that is
 * not a well-formed Command of version PT_COMMAND_VERSION within the size limits.
 *
 * Builders carry the proposer's wall clock (time_ms) and region: the apply function has no
 * clock of its own, so every timestamp it stores comes from here.
 *
 * Threads: a builder belongs to the thread using it; the functions share no state.
 */
#ifndef PT_COMMAND_H
#define PT_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "command.pb-c.h"

#define PT_COMMAND_VERSION 1
/* Largest encoded Command accepted by encode and decode: one maximal (4 MiB) manifest with
 * room to spare. */
#define PT_COMMAND_MAX_SIZE (8u << 20)
/* Most operations in one Command. */
#define PT_COMMAND_MAX_OPS 1024
/* Longest write id (Command.write_id), in bytes; decode refuses a longer one. */
#define PT_COMMAND_WRITE_ID_MAX 32
/* Length of the write ids a cluster region stamps: region id, boot nonce, counter (8 each). */
#define PT_COMMAND_WRITE_ID_LEN 24
/* Most candidate digests of one CollectBlobs operation (a decoded one with more is refused). */
#define PT_COMMAND_COLLECT_MAX 1000

/* Arguments of a PutManifest operation. Everything is borrowed; a NULL string means "". */
struct pt_command_manifest {
    const char *repo;
    const char *digest;
    const char *media_type;
    const void *body; /* len bytes: the manifest exactly as received */
    size_t len;
    const char *const *tags; /* n_tags tags to point at digest */
    size_t n_tags;
    const char *subject;       /* digest of the subject manifest, or NULL/"" */
    const char *artifact_type; /* artifactType (or config mediaType), or NULL/"" */
    const void *annotations;   /* JSON object text of the annotations, or NULL */
    size_t annotations_len;
    const char *const *blobs; /* config and layer digests the manifest references */
    size_t n_blobs;
    const char *const *children; /* child manifest digests (image index / manifest list) */
    size_t n_children;
};

/* Accumulates operations. Embedded by its user; every pointer inside msg is owned by the
 * builder and released by pt_command_builder_free. */
struct pt_command_builder {
    Portolan__Command msg;
    size_t cap; /* allocated length of msg.ops */
};

/* Initializes b with the proposer's clock and region (borrowed, copied; NULL = ""). On
 * failure b holds nothing and needs no free. */
int pt_command_builder_init(struct pt_command_builder *b, int64_t time_ms, const char *region);
/* Frees everything b owns (b itself is the caller's). Safe to call twice. */
void pt_command_builder_free(struct pt_command_builder *b);

/* Each add function appends one operation, copying its arguments (borrowed; NULL string =
 * ""). PT_E_NOMEM, or PT_E_TOO_LARGE past PT_COMMAND_MAX_OPS; on failure b is unchanged. */
int pt_command_add_put_manifest(struct pt_command_builder *b, const struct pt_command_manifest *m);
int pt_command_add_put_tag(struct pt_command_builder *b, const char *repo, const char *tag,
                           const char *digest);
int pt_command_add_delete_tag(struct pt_command_builder *b, const char *repo, const char *tag);
int pt_command_add_delete_manifest(struct pt_command_builder *b, const char *repo,
                                   const char *digest);
int pt_command_add_link_blob(struct pt_command_builder *b, const char *repo, const char *digest,
                             uint64_t size);
int pt_command_add_unlink_blob(struct pt_command_builder *b, const char *repo, const char *digest);
int pt_command_add_blob_stored(struct pt_command_builder *b, const char *digest, uint64_t size,
                               const char *region);
/* BlobStored with replica set: a copy fetched from another region, recorded only while some
 * region still holds the blob (a collected blob is not brought back). */
int pt_command_add_blob_replica(struct pt_command_builder *b, const char *digest, uint64_t size,
                                const char *region);
/* CollectBlobs: digests[0..n) (borrowed, n <= PT_COMMAND_COLLECT_MAX, else PT_E_TOO_LARGE)
 * found unreferenced by a marking pass with grace_ms (fsm.h tells what apply re-checks). */
int pt_command_add_collect_blobs(struct pt_command_builder *b, const char *const *digests, size_t n,
                                 int64_t grace_ms);

/* A CollectBlobs that forgets the records of blobs collected at least forget_after_ms before
 * the command's time (>= PT_GC_FORGET_MIN_MS, checked at apply; fsm.h). */
int pt_command_add_forget_collected(struct pt_command_builder *b, int64_t forget_after_ms);

/* One referrer of a CollectBlobs: repo, subject and digest borrowed. */
struct pt_command_referrer {
    const char *repo, *subject, *digest;
};
/* CollectBlobs of referrers whose subject is gone (refs[0..n), n <= PT_COMMAND_COLLECT_MAX,
 * else PT_E_TOO_LARGE): see fsm.h. */
int pt_command_add_collect_referrers(struct pt_command_builder *b,
                                     const struct pt_command_referrer *refs, size_t n,
                                     int64_t grace_ms);

/* One orphan child of a CollectBlobs (a manifest that lost its last index): borrowed. */
struct pt_command_child {
    const char *repo, *digest;
};
/* CollectBlobs of orphan children (children[0..n), n <= PT_COMMAND_COLLECT_MAX, else
 * PT_E_TOO_LARGE): see fsm.h. */
int pt_command_add_collect_children(struct pt_command_builder *b,
                                    const struct pt_command_child *children, size_t n,
                                    int64_t grace_ms);

/* ---- access control (node/auth/; validated by the FSM at apply, not here) ---------------- */

/* One grant of a PutUser / PutToken: pattern borrowed, actions PT_ACTION_* bits. */
struct pt_command_grant {
    const char *pattern;
    unsigned actions;
};

/* Creates or replaces user name (password_hash from pt_password_hash). With only_if_no_users
 * the operation applies only while no user exists. grants: n_grants borrowed entries. */
int pt_command_add_put_user(struct pt_command_builder *b, const char *name,
                            const char *password_hash, const struct pt_command_grant *grants,
                            size_t n_grants, int disabled, int only_if_no_users);
int pt_command_add_delete_user(struct pt_command_builder *b, const char *name);
/* Creates or replaces token id (secret_hash from pt_secret_hash); expires_ms 0: never;
 * description and owner may be NULL. */
int pt_command_add_put_token(struct pt_command_builder *b, const char *id, const char *secret_hash,
                             const struct pt_command_grant *grants, size_t n_grants,
                             int64_t expires_ms, int disabled, const char *description,
                             const char *owner);
int pt_command_add_delete_token(struct pt_command_builder *b, const char *id);
/* Anonymous pull on the repositories matching pattern. */
int pt_command_add_put_anonymous(struct pt_command_builder *b, const char *pattern);
int pt_command_add_delete_anonymous(struct pt_command_builder *b, const char *pattern);
/* A region's signing public key: der[0..der_len) DER SubjectPublicKeyInfo (EC P-256). */
int pt_command_add_put_signing_key(struct pt_command_builder *b, const char *kid,
                                   const char *region, const void *der, size_t der_len);
/* Tokens signed with kid are refused after not_after_ms. */
int pt_command_add_retire_signing_key(struct pt_command_builder *b, const char *kid,
                                      int64_t not_after_ms);
/* Revokes the token id jti until expires_ms (then forgotten). */
int pt_command_add_revoke_jwt(struct pt_command_builder *b, const char *jti, int64_t expires_ms);

/* ---- storage quotas and throttling (validated by the FSM at apply, not here) ------------ */

/* The quota of pattern ("*" or a repository pattern): limit bytes of distinct blobs. */
int pt_command_add_put_quota(struct pt_command_builder *b, const char *pattern, uint64_t limit);
int pt_command_add_delete_quota(struct pt_command_builder *b, const char *pattern);
/* The limits of one subject (strings borrowed); 0 = no limit on that one. */
struct pt_command_throttle {
    const char *subject;
    unsigned tier;
    uint32_t reads_per_minute, writes_per_minute;
    uint64_t read_bytes_per_second, write_bytes_per_second;
};
int pt_command_add_put_throttle(struct pt_command_builder *b, const struct pt_command_throttle *t);
int pt_command_add_delete_throttle(struct pt_command_builder *b, const char *subject);
/* ---- repository locks, immutable tags, retention (validated by the FSM at apply) -------- */

/* Most tags and most manifests of one Retain operation (a decoded one with more is refused). */
#define PT_COMMAND_RETAIN_MAX 1000

/* The lock of repo (tag and digest NULL/""), of repo:tag or of repo@digest; both flags set
 * removes it. Strings borrowed. */
int pt_command_add_put_lock(struct pt_command_builder *b, const char *repo, const char *tag,
                            const char *digest, int write_enabled, int delete_enabled);
/* PutTagRule (put != 0) or DeleteTagRule of the immutable tags tag_pattern in repo_pattern. */
int pt_command_add_tag_rule(struct pt_command_builder *b, const char *repo_pattern,
                            const char *tag_pattern, int put);
/* Retention rule of repo_pattern (0 / 0: that part off; tag_pattern may be NULL = "*"). */
int pt_command_add_put_retention(struct pt_command_builder *b, const char *repo_pattern,
                                 int64_t untagged_older_than_ms, uint32_t keep_last,
                                 const char *tag_pattern);
int pt_command_add_delete_retention(struct pt_command_builder *b, const char *repo_pattern);

/* One tag / one manifest of a Retain operation; strings borrowed. */
struct pt_command_retain_tag {
    const char *repo, *tag, *digest;
};
struct pt_command_retain_manifest {
    const char *repo, *digest;
    int64_t older_than_ms;
};
/* Retain: what an evaluation decided to delete (each list at most PT_COMMAND_RETAIN_MAX,
 * else PT_E_TOO_LARGE); fsm.h tells what apply re-checks. */
int pt_command_add_retain(struct pt_command_builder *b, const struct pt_command_retain_tag *tags,
                          size_t n_tags, const struct pt_command_retain_manifest *mans,
                          size_t n_mans);

/* Encodes b's command: see pt_command_encode. b is unchanged and still needs freeing. */
int pt_command_builder_encode(const struct pt_command_builder *b, void **buf, size_t *len);

/* Encodes c (borrowed) into a buffer from malloc: *buf is owned by the caller (free()).
 * PT_E_TOO_LARGE beyond PT_COMMAND_MAX_SIZE, PT_E_NOMEM. */
int pt_command_encode(const Portolan__Command *c, void **buf, size_t *len);
/* Same, with the buffer from alloc (e.g. raft_malloc); *buf is released with the matching
 * free function. */
int pt_command_encode_with(const Portolan__Command *c, void *(*alloc)(size_t), void **buf,
                           size_t *len);

/*
 * Decodes buf (len bytes, borrowed). On success *out is owned by the caller and freed with
 * pt_command_decoded_free. PT_E_CORRUPT if buf is larger than PT_COMMAND_MAX_SIZE, is not a
 * Command, has a version other than PT_COMMAND_VERSION, more than PT_COMMAND_MAX_OPS
 * operations or an operation of unknown kind.
 */
int pt_command_decode(const void *buf, size_t len, Portolan__Command **out);
/* NULL is a no-op. */
void pt_command_decoded_free(Portolan__Command *c);

/*
 * Write ids (proto/command.proto). pt_command_stamp puts write_id id (id_len bytes, 1..
 * PT_COMMAND_WRITE_ID_MAX, borrowed) in front of the encoded command *buf (malloc'd, *len
 * bytes; reallocated in place, still owned by the caller). Protobuf reads fields in any
 * order, so the result decodes as the same Command with that id. Returns 0, PT_E_CONFIG
 * (bad id_len), PT_E_TOO_LARGE (past PT_COMMAND_MAX_SIZE) or PT_E_NOMEM; on error *buf and
 * *len are unchanged. Stamp a command that has no id only (pt_command_write_id).
 *
 * pt_command_write_id returns 1 with *id (borrowed from buf) and *id_len when the encoding
 * buf (len bytes, borrowed) leads with a write id (as pt_command_stamp leaves it), else 0.
 * It looks at the first field only: an id packed elsewhere by a protobuf encoder is not seen.
 */
int pt_command_stamp(void **buf, size_t *len, const void *id, size_t id_len);
int pt_command_write_id(const void *buf, size_t len, const uint8_t **id, size_t *id_len);

#endif
