/*
 * api_common.h - pieces shared by the API handlers: proposing a command on behalf of a
 * request, and wall-clock time for commands.
 */
#ifndef PT_API_COMMON_H
#define PT_API_COMMON_H

#include <stdint.h>
#define H2O_USE_LIBUV 1
#include <h2o.h>

#include "command.pb-c.h"

struct pt_worker;

/* Called on the worker loop once the command is applied (status 0) or refused (a PT_E_*),
 * only if the request is still alive. data points at the copy made by pt_api_commit. */
typedef void (*pt_api_commit_cb)(h2o_req_t *req, int status, void *data);

/* Fills the envelope of cmd (version, time, region) and proposes it for req. cmd and its ops
 * are borrowed (encoded before returning); data_size bytes at data are copied and handed to
 * cb. Returns 0, or a PT_E_* (cb will not run) if encoding failed. */
int pt_api_commit(struct pt_worker *w, h2o_req_t *req, Portolan__Command *cmd, pt_api_commit_cb cb,
                  const void *data, size_t data_size);

int64_t pt_api_now_ms(void);

#endif
