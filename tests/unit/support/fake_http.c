/*
 * fake_http.c - the canned HTTP/1.1 server of fake_http.h: a thread that accepts one
 * connection at a time, reads one request, records it and answers it from the route table
 * under the server's lock, then closes the connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_http.h"

/* Writes n bytes of p (borrowed) to fd, giving up quietly when the client has gone. */
static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Reads one request from connection c (borrowed; the caller closes it), records it in f and
 * answers it. A request that does not arrive whole or does not parse gets no answer. */
static void serve_one(struct pt_fake_http *f, int c)
{
    char buf[16384];
    size_t len = 0;
    char *end = NULL;
    long clen = 0;

    while (len < sizeof buf - 1) {
        ssize_t n = read(c, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            return;
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            clen = cl != NULL && cl < end ? strtol(cl + 17, NULL, 10) : 0;
            if ((size_t)(end + 4 - buf) + (size_t)clen <= len)
                break;
        }
    }
    if (end == NULL)
        return;

    char method[16] = "", target[512] = "";
    if (sscanf(buf, "%15s %511s", method, target) != 2)
        return;
    const struct pt_fake_http_route *r = NULL;
    pthread_mutex_lock(&f->lock);
    snprintf(f->method, sizeof f->method, "%s", method);
    snprintf(f->target, sizeof f->target, "%s", target);
    snprintf(f->body, sizeof f->body, "%.*s", (int)clen, end + 4);
    const char *auth = strcasestr(buf, "\r\nAuthorization:");
    f->authorization[0] = '\0';
    if (auth != NULL && auth < end) {
        auth += 16;
        while (*auth == ' ')
            auth++;
        snprintf(f->authorization, sizeof f->authorization, "%.*s", (int)strcspn(auth, "\r"), auth);
    }
    f->requests++;
    for (size_t i = 0; i < f->nroutes; i++) {
        const struct pt_fake_http_route *ri = &f->routes[i];
        if ((ri->method[0] == '\0' || strcmp(ri->method, method) == 0) &&
            strcmp(ri->target, target) == 0)
            r = ri;
    }
    char head[512];
    const char *body =
        r ? r->body : "{\"errors\":[{\"code\":\"NOT_FOUND\",\"message\":\"no such route\"}]}";
    int status = r ? r->status : 404;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "%s%s%sConnection: close\r\n\r\n",
                     status, strlen(body), r && r->location[0] ? "Location: " : "",
                     r && r->location[0] ? r->location : "", r && r->location[0] ? "\r\n" : "");
    write_all(c, head, (size_t)n);
    write_all(c, body, strlen(body));
    pthread_mutex_unlock(&f->lock);
}

/* The server thread: serves connections one at a time until the wake pipe is readable.
 * arg is the server (borrowed; outlives the thread, which pt_fake_http_stop joins). */
static void *fake_main(void *arg)
{
    struct pt_fake_http *f = arg;

    for (;;) {
        struct pollfd p[2] = {{.fd = f->fd, .events = POLLIN},
                              {.fd = f->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (p[0].revents & POLLIN) {
            int c = accept(f->fd, NULL, NULL);
            if (c < 0)
                continue;
            serve_one(f, c);
            close(c);
        }
    }
    return NULL;
}

struct pt_fake_http *pt_fake_http_start(void)
{
    struct pt_fake_http *f = calloc(1, sizeof *f);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;

    assert_non_null(f);
    f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->fd >= 0);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->fd, 16), 0);
    assert_int_equal(getsockname(f->fd, (struct sockaddr *)&a, &alen), 0);
    f->port = ntohs(a.sin_port);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u", f->port);
    assert_int_equal(pipe(f->wake), 0);
    pthread_mutex_init(&f->lock, NULL);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
    return f;
}

void pt_fake_http_stop(struct pt_fake_http *f)
{
    assert_int_equal(write(f->wake[1], "x", 1), 1);
    pthread_join(f->thread, NULL);
    close(f->fd);
    close(f->wake[0]);
    close(f->wake[1]);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void pt_fake_http_route(struct pt_fake_http *f, const char *method, const char *target, int status,
                        const char *fmt, ...)
{
    va_list ap;
    struct pt_fake_http_route *r;

    if (method == NULL)
        method = "";
    assert_true(strlen(method) < sizeof r->method);
    assert_true(strlen(target) < sizeof r->target);
    pthread_mutex_lock(&f->lock);
    assert_true(f->nroutes < PT_FAKE_HTTP_ROUTES_MAX);
    r = &f->routes[f->nroutes++];
    memcpy(r->method, method, strlen(method) + 1);
    memcpy(r->target, target, strlen(target) + 1);
    r->status = status;
    va_start(ap, fmt);
    vsnprintf(r->body, sizeof r->body, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&f->lock);
}

void pt_fake_http_dead_url(char *buf, size_t len)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    snprintf(buf, len, "http://127.0.0.1:%u", ntohs(a.sin_port));
}
