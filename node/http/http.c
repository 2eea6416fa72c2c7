/*
 * http.c - response helpers (see http.h).
 *
 * Error bodies follow the OCI distribution-spec "Error Codes" section: a JSON object with an
 * "errors" array whose entries carry "code", "message" and optionally "detail".
 */
#include "http.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "diskspace.h"
#include "err.h"

static h2o_generator_t oneshot = {NULL, NULL};

const char *pt_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    case 507:
        return "Insufficient Storage";
    default:
        return status >= 500 ? "Internal Server Error" : "OK";
    }
}

int pt_http_is_head(const h2o_req_t *req)
{
    return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
}

int pt_http_method_is(const h2o_req_t *req, const char *method)
{
    return h2o_memis(req->method.base, req->method.len, method, strlen(method));
}

h2o_iovec_t pt_http_req_header(const h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return h2o_iovec_init(NULL, 0);
    return req->headers.entries[i].value;
}

h2o_iovec_t pt_http_query(const h2o_req_t *req)
{
    if (req->query_at == SIZE_MAX)
        return h2o_iovec_init("", 0);
    return h2o_iovec_init(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
}

void pt_http_header(h2o_req_t *req, const char *name, const char *value, size_t len)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value, len);
    size_t nlen = strlen(name);
    char *n = h2o_mem_alloc_pool(&req->pool, nlen);
    for (size_t i = 0; i < nlen; i++)
        n[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + ('a' - 'A') : name[i]);
    h2o_add_header_by_str(&req->pool, &req->res.headers, n, nlen, 1, name, v.base, v.len);
}

void pt_http_headerf(h2o_req_t *req, const char *name, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(buf))
        n = sizeof(buf) - 1;
    pt_http_header(req, name, buf, (size_t)n);
}

void pt_http_send(h2o_req_t *req, int status, const char *content_type, const void *body,
                  size_t len)
{
    req->res.status = status;
    req->res.reason = pt_http_reason(status);
    req->res.content_length = len;
    if (content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                       strlen(content_type));
    h2o_start_response(req, &oneshot);
    if (pt_http_is_head(req) || len == 0) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    h2o_iovec_t buf = h2o_strdup(&req->pool, body, len);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

void pt_http_send_empty(h2o_req_t *req, int status)
{
    pt_http_send(req, status, NULL, NULL, 0);
}

void pt_http_error(h2o_req_t *req, int err, const char *message, const char *detail)
{
    json_t *e = json_pack("{s:s,s:s}", "code", pt_err_code(err), "message",
                          message != NULL ? message : pt_err_message(err));
    if (e != NULL && detail != NULL)
        json_object_set_new(e, "detail", json_string(detail));
    json_t *root = json_pack("{s:[o]}", "errors", e);
    char *text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    int status = pt_err_status(err);
    if (err == PT_E_DISK_FULL) {
        pt_disk_refused();
        pt_http_headerf(req, "Retry-After", "%d", PT_DISK_RETRY_AFTER);
    } else if (err == PT_E_UNAVAILABLE) {
        pt_http_headerf(req, "Retry-After", "%d", PT_HTTP_UNAVAILABLE_RETRY_AFTER);
    }
    if (text == NULL) {
        static const char fallback[] =
            "{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"error\"}]}";
        pt_http_send(req, status, "application/json", fallback, sizeof(fallback) - 1);
    } else {
        pt_http_send(req, status, "application/json", text, strlen(text));
    }
    free(text);
    json_decref(root);
}
