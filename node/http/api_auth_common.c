/*
 * api_auth_common.c - what the access-control admin endpoints share (api_auth_int.h): JSON
 * bodies in and out, and proposing a change with the answer to send once it is applied.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "admin_api.h"
#include "api.h"
#include "api_common.h"
#include "async.h"
#include "auth_gate.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "http.h"
#include "metastore.h"
#include "password.h"
#include "query.h"
#include "worker.h"

#include "api_auth_int.h"

#define AUTH_BODY_MAX (64 * 1024)

void pt_admin_send_json(h2o_req_t *req, int status, json_t *o)
{
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    pt_http_header(req, "Cache-Control", "no-store", 8);
    pt_http_send(req, status, "application/json", text, strlen(text));
    OPENSSL_cleanse(text, strlen(text));
    free(text);
}

json_t *pt_admin_body(h2o_req_t *req)
{
    size_t len = req->entity.base != NULL ? req->entity.len : 0;
    if (len > AUTH_BODY_MAX) {
        pt_http_error(req, PT_E_TOO_LARGE, NULL, NULL);
        return NULL;
    }
    json_t *o =
        len > 0 ? json_loadb(req->entity.base, len, JSON_REJECT_DUPLICATES, NULL) : json_object();
    if (!json_is_object(o)) {
        json_decref(o);
        pt_http_error(req, PT_E_INVALID, "the body must be a JSON object", NULL);
        return NULL;
    }
    return o;
}

/* Commits ----------------------------------------------------------------------------------- */

/* What to answer once a change is applied: a status and an optional JSON text. */
struct reply {
    int status;
    char body[];
};

static void on_applied(h2o_req_t *req, int status, void *data)
{
    struct reply *r = data;
    if (status != 0) {
        pt_http_error(req, status,
                      status == PT_E_UNAVAILABLE ? "the change could not be committed: no leader"
                                                 : NULL,
                      NULL);
    } else if (r->body[0] != '\0') {
        pt_http_header(req, "Cache-Control", "no-store", 8);
        pt_http_send(req, r->status, "application/json", r->body, strlen(r->body));
    } else {
        pt_http_send_empty(req, r->status);
    }
    OPENSSL_cleanse(r->body, strlen(r->body));
}

/* Proposes b (freed) and answers status with body (JSON, consumed; NULL for none). */
void pt_admin_commit(struct pt_worker *w, h2o_req_t *req, struct pt_command_builder *b, int added,
                     int status, json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    size_t tl = text != NULL ? strlen(text) : 0;
    struct reply *r = malloc(sizeof(*r) + tl + 1);
    if (r == NULL || (body != NULL && text == NULL)) {
        free(r);
        free(text);
        pt_command_builder_free(b);
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    r->status = status;
    memcpy(r->body, text != NULL ? text : "", tl + 1);
    int rv = pt_api_commit(w, req, b, added, on_applied, r, sizeof(*r) + tl + 1);
    OPENSSL_cleanse(r->body, tl);
    free(r);
    if (text != NULL) {
        OPENSSL_cleanse(text, tl);
        free(text);
    }
    if (rv != 0)
        pt_http_error(req, rv, NULL, NULL);
}

int pt_admin_begin(struct pt_worker *w, h2o_req_t *req, struct pt_command_builder *b)
{
    if (pt_api_command(w, b) != 0) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return -1;
    }
    return 0;
}
