/*
 * api_auth_int.h - shared by the access-control admin endpoints (api_auth_admin.c,
 * api_auth_users.c, api_auth_common.c) and the quota and throttle endpoints (api_quota.c,
 * which proposes its changes with pt_admin_begin/pt_admin_commit); not for other files.
 */
#ifndef PT_API_AUTH_INT_H
#define PT_API_AUTH_INT_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <jansson.h>

struct pt_worker;
struct pt_command_builder;

/* Sends o (consumed; NULL answers 500) with status, Cache-Control: no-store; the text is wiped
 * after sending (it may hold a token secret). */
void pt_admin_send_json(h2o_req_t *req, int status, json_t *o);
/* The request body as a JSON object (owned by the caller), or NULL after answering 400/413. */
json_t *pt_admin_body(h2o_req_t *req);
/* Starts a command for w's region into b; answers 500 and returns -1 when it cannot. */
int pt_admin_begin(struct pt_worker *w, h2o_req_t *req, struct pt_command_builder *b);
/* Proposes b (freed; added is the last pt_command_add_* result) and, once applied, answers
 * status with body (consumed; NULL: no body) or the command's error. Answers at once when
 * nothing could be proposed. */
void pt_admin_commit(struct pt_worker *w, h2o_req_t *req, struct pt_command_builder *b, int added,
                     int status, json_t *body);

/* api_auth_users.c: each answers req. name / id borrowed (valid names checked by the caller's
 * route parsing). */
void pt_admin_user_add(struct pt_worker *w, h2o_req_t *req);
void pt_admin_users_list(struct pt_worker *w, h2o_req_t *req);
void pt_admin_user_delete(struct pt_worker *w, h2o_req_t *req, const char *name);
void pt_admin_user_password(struct pt_worker *w, h2o_req_t *req, const char *name);
void pt_admin_token_add(struct pt_worker *w, h2o_req_t *req);
void pt_admin_tokens_list(struct pt_worker *w, h2o_req_t *req);
void pt_admin_token_delete(struct pt_worker *w, h2o_req_t *req, const char *id);
void pt_admin_token_set_disabled(struct pt_worker *w, h2o_req_t *req, const char *id, int disabled);

#endif
