/*
 * api_quota.h - storage quotas and throttling at the HTTP door (api_quota.c): admin routes,
 * upload checks against the quotas, the refusal that names the quota, usage metrics.
 *
 * Threads: every function runs on a worker loop (metrics: the loop serving /metrics).
 */
#ifndef PT_API_QUOTA_H
#define PT_API_QUOTA_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <stdint.h>

#include "buf.h"
#include "router.h"

struct pt_worker;
struct pt_node;

/* The routes /admin/quotas, /admin/throttles and /admin/repos: 1 when rt is one of them (req
 * answered), 0 otherwise. */
int pt_api_quota_admin(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);

/* Whether size bytes of digest (NULL: not known yet) may still be added to repo (borrowed):
 * 0, or -1 after answering req (403 DENIED naming the quota, or the read's error). */
int pt_api_quota_check(struct pt_worker *w, h2o_req_t *req, const char *repo, const char *digest,
                       uint64_t size);

/* Answers req with 403 DENIED for a write the FSM refused with PT_E_QUOTA_EXCEEDED, naming the
 * quota (re-checked against the current state: size bytes of digest into repo). */
void pt_api_quota_refuse(struct pt_worker *w, h2o_req_t *req, const char *repo, const char *digest,
                         uint64_t size);

/* Appends the usage series (README "Metrics") to b. */
void pt_api_quota_metrics(struct pt_node *node, struct pt_buf *b);

#endif
