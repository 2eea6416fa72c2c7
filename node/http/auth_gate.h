/*
 * auth_gate.h - access control at the HTTP door: who a request acts as, and whether it may do
 * what its route and method ask (README "Access control").
 *
 * Role: the dispatcher (server.c) calls pt_auth_gate once per request, after routing and
 * before the handler. The gate reads the credentials (Authorization: Basic or Bearer), maps
 * route + method to the actions needed (pull, push, delete, admin), and either lets the
 * request through or answers it: 401 UNAUTHORIZED with a Bearer challenge when credentials
 * are missing (or a token lacks a scope the identity holds), 403 DENIED when the identity
 * lacks the action, 429 TOOMANYREQUESTS with Retry-After while failed logins back off or when
 * a registry request is over its identity's throttle (throttle.h).
 *
 * Design (follows CNCF Distribution's token authentication, docs/spec/auth/token.md):
 *   - Basic: pt_auth_dir_login under the login limiter (keys "u:<name>" and "a:<address>").
 *   - Bearer: ES256 JWTs from /token (api_token.c), verified once and then served from the
 *     token cache; the key comes from the directory by kid, falling back to the keys this
 *     process signs with (so a token works before its key's PutSigningKey is applied). The
 *     access a token carries is intersected with what the directory allows now, so a
 *     revocation or a grant change acts at once. Refresh tokens are not access tokens.
 *   - The identity and decision live in a struct pt_auth_ctx allocated from the request's
 *     pool and reachable from the request (pt_auth_ctx_of), so handlers, the admin endpoints
 *     and the audit hook read it without changing any handler's signature.
 *
 * Threads: struct pt_auth_service is created on the main thread before the workers start and
 * freed after they stopped; every other function runs on a worker loop. The directory, token
 * cache and limiter are thread-safe; the current signing key is swapped under key_lock, and
 * keys replaced by a rotation stay allocated until the service is freed, so a pointer taken
 * under the lock stays valid.
 * Secrets: passwords, token secrets and JWTs are never logged or stored here.
 */
#ifndef PT_AUTH_GATE_H
#define PT_AUTH_GATE_H

#include <pthread.h>
#include <stdint.h>
#define H2O_USE_LIBUV 1
#include <h2o.h>

#include "credentials.h"
#include "directory.h"
#include "jwt.h"
#include "router.h"

struct pt_worker;
struct pt_node;
struct pt_token_cache;
struct pt_limiter;

#define PT_AUTH_OLD_KEYS_MAX 16 /* key rotations one process remembers for verification */

/* The node's access-control services (NULL in struct pt_node when cfg.auth is off). */
struct pt_auth_service {
    struct pt_auth_dir *dir;
    struct pt_token_cache *cache;
    struct pt_limiter *limiter;
    pthread_mutex_t key_lock;
    struct pt_jwt_key *key; /* current signing key (owner: this service, under key_lock) */
    struct pt_jwt_key *old[PT_AUTH_OLD_KEYS_MAX]; /* replaced keys, freed with the service */
    size_t n_old;
    char key_path[4300];   /* <data-dir>/auth/signing-key.pem */
    char realm_base[1024]; /* public URL without trailing '/'; "" = from the request */
};

/* What one request acts as; allocated from the request's pool by pt_auth_gate. */
struct pt_auth_ctx {
    int enforced;                 /* 0: access control is off (every check passes) */
    int given;                    /* credentials were sent */
    int scheme;                   /* enum pt_auth_scheme of the accepted credentials */
    struct pt_identity id;        /* anonymous when no (accepted) credentials */
    struct pt_jwt_claims *claims; /* Bearer: the token's claims (pool), else NULL */
    char request_id[64];
    char client[64];           /* the peer's address */
    const char *denied_action; /* set when the gate refused: the action text for the audit */
};

/* Creates the service for node (its config and metastore must be set): opens the directory,
 * the token cache and the limiter, loads or creates the signing key. 0 or a PT_E_*, logged. */
int pt_auth_service_create(struct pt_node *node, struct pt_auth_service **out);
/* Frees s and every key it held (NULL is fine). After the workers stopped. */
void pt_auth_service_free(struct pt_auth_service *s);

/* The current signing key (borrowed; valid until the service is freed). */
struct pt_jwt_key *pt_auth_service_key(struct pt_auth_service *s);
/* Makes k (owned, transferred) the current signing key; the previous one is kept for
 * verification. */
void pt_auth_service_set_key(struct pt_auth_service *s, struct pt_jwt_key *k);
/* pt_jwt_key_lookup over the directory with the fallback to this process's keys; arg is the
 * service. */
int pt_auth_key_lookup(void *arg, const char *kid, unsigned char *der, size_t *len);

/* What runs once the gate lets a request through (pt_routes_dispatch, or the manifest route's
 * bad-tag answer); rt may be the gate's copy. */
typedef void (*pt_auth_gate_cont)(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);

/*
 * Decides req (rt borrowed, the matched route, pointing into req->path; request_id borrowed,
 * copied): calls cont when the handler may run, now or later on w's loop (a Basic password
 * is checked in the thread pool), or answers req itself (401, 403, 429); never both. Always
 * attaches a struct pt_auth_ctx to req first, also with access control off.
 */
void pt_auth_gate(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                  const char *request_id, pt_auth_gate_cont cont);

/* The context pt_auth_gate attached to req, or NULL (a request that never went through it). */
struct pt_auth_ctx *pt_auth_ctx_of(h2o_req_t *req);

/* Action bits req's identity holds on repo[0..len) now (PT_ACTIONS_ALL with access control
 * off or no context). */
unsigned pt_auth_actions(struct pt_worker *w, h2o_req_t *req, const char *repo, size_t len);

/* Action bits req's identity holds on repo[0..len) by its grants alone, whatever scopes its
 * token carries (the catalog: a registry:catalog:* token lists what its identity may pull). */
unsigned pt_auth_identity_actions(struct pt_worker *w, h2o_req_t *req, const char *repo,
                                  size_t len);

/* 1 when req's identity is an active administrator (or access control is off). */
int pt_auth_is_admin(struct pt_worker *w, h2o_req_t *req);

/* Answers req with 401 UNAUTHORIZED and the Bearer challenge for scope (NULL: none;
 * error NULL or "insufficient_scope"). */
void pt_auth_challenge(struct pt_worker *w, h2o_req_t *req, const char *scope, const char *error);

/* The token realm's base URL for req (cfg public_url, the region's URL from the cluster file,
 * else scheme://Host of the request), into buf. */
void pt_auth_realm_base(struct pt_worker *w, h2o_req_t *req, char *buf, size_t size);

/* The outcome of pt_auth_login, on w's loop, only while req lives: status 0 (the identity
 * is in the caller's out), PT_E_UNAUTHORIZED, or PT_E_TOOMANYREQUESTS with retry_after
 * seconds. data points at pt_auth_login's copy. */
typedef void (*pt_auth_login_cb)(struct pt_worker *w, h2o_req_t *req, int status,
                                 unsigned retry_after, void *data);

/* Logs name/secret (borrowed, copied; the copy is wiped) in under the limiter for req's
 * client: the limiter is asked at once, the password checked in the thread pool. Counts
 * metrics, audits failures, then calls cb (at once when limited). out must live in req's pool
 * (or longer); data_size bytes at data are copied. Returns 0, or PT_E_NOMEM / PT_E_INTERNAL
 * (cb will not run). */
int pt_auth_login(struct pt_worker *w, h2o_req_t *req, const char *name, const char *secret,
                  struct pt_identity *out, pt_auth_login_cb cb, const void *data, size_t data_size);

/* The throttling key ("user:x", "token:x", "addr:<client>") and settings subject ("user:x",
 * "token:x", "anonymous") of ctx (NULL: anonymous) into key[klen] and subject[slen]. */
void pt_auth_throttle_key(const struct pt_auth_ctx *ctx, char *key, size_t klen, char *subject,
                          size_t slen);
/* "user:alice", "token:ci", "anonymous" into buf. */
const char *pt_auth_identity_text(const struct pt_identity *id, char *buf, size_t size);

#endif
