/*
 * fake_http.h - a canned HTTP/1.1 server on 127.0.0.1 for the unit tests of the command-line
 * clients (node/cli/), which talk to a region's admin API through libcurl; and a URL where
 * nothing listens.
 *
 * Design: one thread per server, one request per connection (every answer says
 * "Connection: close"). The thread polls the listening socket and a wake pipe;
 * pt_fake_http_stop writes to the pipe and joins it. A request is read whole (its head, then
 * Content-Length bytes of body, within 16 KiB) and answered from the route table: the last
 * route added whose method (any method for a route without one) and target (path and query,
 * compared exactly) match. Without a match the answer is 404 with a NOT_FOUND error body in
 * the registry's error format. Every answer is application/json with a Content-Length, and
 * carries a Location header when the route has one.
 *
 * Invariants: the routes and the record of the last request are guarded by the server's
 * lock, which the thread holds while it records and answers a request. A test reads the
 * record, or changes a route's fields in place, only while no request is on its way (the
 * client call it made has returned), when the thread waits in poll.
 *
 * Limits: PT_FAKE_HTTP_ROUTES_MAX routes; a route's body 4095 bytes (longer is cut), its
 * method 15 and target 511 bytes (longer fails the test); the recorded body 4095 bytes.
 */
#ifndef PT_TEST_FAKE_HTTP_H
#define PT_TEST_FAKE_HTTP_H

#include <pthread.h>
#include <stddef.h>

#define PT_FAKE_HTTP_ROUTES_MAX 8

/* One canned answer. */
struct pt_fake_http_route {
    char method[16];    /* "" answers any method */
    char target[512];   /* request target, query included */
    int status;         /* HTTP status code */
    char body[4096];    /* the answer's body */
    char location[256]; /* sent as Location when set */
};

/* A running server; returned owned by pt_fake_http_start, freed by pt_fake_http_stop. */
struct pt_fake_http {
    char url[64]; /* "http://127.0.0.1:PORT", no trailing slash */
    unsigned port;
    struct pt_fake_http_route routes[PT_FAKE_HTTP_ROUTES_MAX];
    size_t nroutes;
    /* The last request: its method, target, Authorization header value ("" without one) and
     * body (each cut to fit); how many were answered. */
    char method[16], target[512], authorization[512], body[4096];
    unsigned requests;
    /* The rest belongs to fake_http.c. */
    int fd, wake[2];
    pthread_t thread;
    pthread_mutex_t lock;
};

/* Starts a server on a free port of 127.0.0.1 with no routes (every request gets 404).
 * Returns it owned by the caller, who must pt_fake_http_stop it. Fails the test on error. */
struct pt_fake_http *pt_fake_http_start(void);

/* Stops f's thread, closes its sockets and frees f (owned; invalid afterwards). */
void pt_fake_http_stop(struct pt_fake_http *f);

/* Adds a route to f (borrowed): requests with method (borrowed, copied; NULL for any method)
 * and target (borrowed, copied) get status and the body formatted from fmt. A later route
 * for the same request wins. */
void pt_fake_http_route(struct pt_fake_http *f, const char *method, const char *target, int status,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Writes "http://127.0.0.1:PORT" into buf (caller's, len bytes) for a port that refuses
 * connections: bound to learn a free port, then closed without listening. */
void pt_fake_http_dead_url(char *buf, size_t len);

#endif
