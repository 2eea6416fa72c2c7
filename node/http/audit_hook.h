/*
 * audit_hook.h - what the HTTP layer writes to the audit log (audit/audit.h), and when.
 *
 * Recorded: every write that finished (manifest put and delete, blob upload finished or
 * mounted, blob delete, tag delete), every admin change (any /admin/ request that is not a
 * read), failed and throttled logins (Basic on any route, /token), and refused requests (401
 * after credentials were given, 403). Successful Basic logins on /v2/ are not recorded per
 * request; /token issuances are.
 *
 * Each record carries the identity, the client address and the request id from the
 * request's struct pt_auth_ctx (auth_gate.h), so a handler passes only what it knows.
 * Threads: any worker loop.
 */
#ifndef PT_AUDIT_HOOK_H
#define PT_AUDIT_HOOK_H

#define H2O_USE_LIBUV 1
#include <h2o.h>

#include "router.h"

struct pt_worker;

/* Records one event for req: action ("push", "delete", "login", "denied", "admin.user.add"
 * ...), repo and ref (tag or digest; NULL when none), the HTTP status, and detail (free text
 * without secrets, e.g. the user name a failed login tried; NULL for none). All borrowed. No-op
 * when the audit log is off. */
void pt_http_audit(struct pt_worker *w, h2o_req_t *req, const char *action, const char *repo,
                   const char *ref, int status, const char *detail);

/* Called once a response is done (server.c's logger, rt the route as matched): records the
 * writes and admin changes listed above from the final status. */
void pt_http_audit_done(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);

#endif
