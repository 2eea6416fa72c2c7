/*
 * api_common.h - pieces shared by the API handlers: proposing a command on behalf of a
 * request, and wall-clock time for commands.
 */
#ifndef PT_API_COMMON_H
#define PT_API_COMMON_H

#include <stdint.h>
#define H2O_USE_LIBUV 1
#include <h2o.h>

struct pt_worker;
struct pt_command_builder;

/* Called on the worker loop once the command is applied (status 0) or refused (a PT_E_*),
 * only if the request is still alive. data points at the copy made by pt_api_commit. */
typedef void (*pt_api_commit_cb)(h2o_req_t *req, int status, void *data);

struct pt_proposal;
struct pt_route;

/* Called on the worker loop when a committer job is done, only if the request is still
 * alive; p's out fields (status, index, text) are valid during the call (text is freed
 * after it). data points at the copy made by pt_api_job. */
typedef void (*pt_api_job_cb)(h2o_req_t *req, struct pt_proposal *p, void *data);

/* Submits a committer job (committer.h) of kind for req. buf (PROPOSE only) is moved to the
 * committer; data_size bytes at data are copied. Returns 0, or PT_E_NOMEM (cb won't run). */
int pt_api_job(struct pt_worker *w, h2o_req_t *req, int kind, void *buf, size_t len,
               pt_api_job_cb cb, const void *data, size_t data_size);
/* The same with a target (a region's id, a blob's size: see the job kinds). */
int pt_api_job_target(struct pt_worker *w, h2o_req_t *req, int kind, void *buf, size_t len,
                      uint64_t target, pt_api_job_cb cb, const void *data, size_t data_size);
/* The same for membership jobs, which also name a region (target) and a role. buf (len bytes,
 * moved to the committer; may be NULL with len 0) is a binary record (ADD: a struct
 * pt_region_rec), so its length is given, never measured. */
int pt_api_job_member(struct pt_worker *w, h2o_req_t *req, int kind, void *buf, size_t len,
                      uint64_t target, int role, pt_api_job_cb cb);

/* Continuation of a read that resolves tags. */
typedef void (*pt_api_read_cb)(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);

/* Tag resolution is linearizable by default (DESIGN.md section 1): in a cluster this waits
 * for a read index first. When none can be had in time, it answers 503 or, with
 * stale_fallback, goes on with `Warning: 110 - "stale: no quorum"`. Single region or
 * tag_reads=local: calls cont at once. rt is copied. */
void pt_api_tag_read(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                     pt_api_read_cb cont);

/* A region's applied state may lag the leader by a few milliseconds, so a miss of something
 * addressed by digest (a manifest, a blob link) is not final in a cluster: this waits for a
 * read index (whatever its outcome), or less when digest (borrowed) arrives in rt's repository
 * first, as a blob link or a manifest (digest NULL: the read index only; for a miss of
 * several things at once), and then calls cont to look again. With digest NULL a miss is
 * only final once the leader's state confirms it: when that read index fails (no leader, no
 * quorum) the request is answered 503 UNAVAILABLE (with Retry-After) instead, never with the
 * miss. Returns 0 when it
 * did so (cont will run), -1 in a single region or when the job cannot be started (then the
 * miss stands and the caller answers it). */
int pt_api_catch_up(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                    const char *digest, pt_api_read_cb cont);

/* Starts a command on behalf of w's region: b (the caller's) gets the region and the wall
 * clock (replication/command.h). Returns 0, or PT_E_NOMEM (b then needs no free). */
int pt_api_command(struct pt_worker *w, struct pt_command_builder *b);

/* Proposes b's command for req and frees b in every case. added is the result of the last
 * pt_command_add_* call (the builder's functions leave b unchanged when they fail): when it is
 * not 0 nothing is proposed and it is returned. data_size bytes at data are copied and handed
 * to cb. Returns 0, or a PT_E_* (cb will not run) if adding or encoding failed, or
 * PT_E_DISK_FULL when free space is below the reserve (diskspace.h): nothing is proposed. */
int pt_api_commit(struct pt_worker *w, h2o_req_t *req, struct pt_command_builder *b, int added,
                  pt_api_commit_cb cb, const void *data, size_t data_size);

/* A background job's admin route (garbage collection, retention): GET or HEAD answers its
 * state (200); POST [?dry_run=true|false] asks start(job, dry_run) for a run, then answers the
 * state (202), or start's error with busy as the message (409 EXISTS while one runs). A
 * malformed dry_run gets 400 INVALID; another method 405. status(job) is the state as JSON,
 * owned (free()), NULL on allocation failure. job borrowed. */
void pt_api_job_route(h2o_req_t *req, void *job, int (*start)(void *job, int dry_run),
                      char *(*status)(void *job), const char *busy);

#endif
