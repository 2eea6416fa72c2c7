/*
 * routes.h - the table from a matched route (router.h) to the handler of its resource
 * (api.h): the one place that says which file serves which path.
 */
#ifndef PT_ROUTES_H
#define PT_ROUTES_H

#define H2O_USE_LIBUV 1
#include <h2o.h>

#include "router.h"

struct pt_worker;

/* Hands req to the handler of rt->id (rt borrowed, valid for the call); a route without one
 * answers 404 NOT_FOUND. The handler answers req, now or later on w's loop. */
void pt_routes_dispatch(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);

#endif
